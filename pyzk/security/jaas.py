"""The JAAS login configuration file, as ZooKeeper's servers read it for SASL.

    Server {
        org.apache.zookeeper.server.auth.DigestLoginModule required
        user_super="adminsecret"
        user_bob="bobsecret";
    };
    QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required
                   user_zk="quorum-secret"; };
    QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required
                    username="zk" password="quorum-secret"; };

A file is sections; a section is login modules, each ``class flag option=value ...;``.
Comments are ``//`` and ``/* */`` as in Java's ConfigFile (and ``#`` lines). Values may be
quoted. Only ``DigestLoginModule`` sections are usable here (DIGEST-MD5); a Kerberos
module (``Krb5LoginModule``) is refused at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DIGEST_MODULE = "org.apache.zookeeper.server.auth.DigestLoginModule"
USER_PREFIX = "user_"  # SaslServerCallbackHandler.USER_PREFIX


class JaasError(ValueError):
    """The file does not parse; the message says where (never a value)."""


@dataclass(frozen=True, slots=True)
class LoginModule:
    name: str
    flag: str
    options: dict[str, str] = field(repr=False)


_TOKEN = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/|\#[^\n]*
    |(?P<str>"(?:[^"\\]|\\.)*")
    |(?P<word>[A-Za-z0-9_.$\-/:@*+]+)
    |(?P<sym>[{};=])""",
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            line = text.count("\n", 0, pos) + 1
            raise JaasError(f"unexpected character at line {line}")
        pos = m.end()
        if m["str"] is not None:
            out.append("\0" + re.sub(r"\\(.)", r"\1", m["str"][1:-1]))  # \0: quoted
        elif m["word"] is not None or m["sym"] is not None:
            out.append(m[0])
    return out


def parse(text: str) -> dict[str, list[LoginModule]]:
    """Sections by name, each its login modules in order."""
    toks = _tokens(text)
    sections: dict[str, list[LoginModule]] = {}
    i = 0

    def expect(sym: str) -> None:
        nonlocal i
        if i >= len(toks) or toks[i] != sym:
            raise JaasError(f"expected {sym!r} in the JAAS file")
        i += 1

    while i < len(toks):
        name = toks[i].lstrip("\0")
        i += 1
        expect("{")
        modules: list[LoginModule] = []
        while i < len(toks) and toks[i] != "}":
            if i + 1 >= len(toks):
                raise JaasError(f"section {name}: a login module needs a class and a flag")
            cls, flag = toks[i], toks[i + 1].lower()
            i += 2
            options: dict[str, str] = {}
            while i < len(toks) and toks[i] != ";":
                if i + 2 >= len(toks) or toks[i + 1] != "=":
                    raise JaasError(f"section {name}: expected option=value")
                options[toks[i].lstrip("\0")] = toks[i + 2].lstrip("\0")
                i += 3
            expect(";")
            modules.append(LoginModule(cls, flag, options))
        expect("}")
        if i < len(toks) and toks[i] == ";":
            i += 1
        sections[name] = modules
    return sections


def digest_users(modules: list[LoginModule]) -> dict[str, str]:
    """user -> password from the ``user_NAME="password"`` options of a server section."""
    users: dict[str, str] = {}
    for m in modules:
        for key, value in m.options.items():
            if key.startswith(USER_PREFIX):
                users[key[len(USER_PREFIX) :]] = value
    return users


def digest_credentials(modules: list[LoginModule]) -> tuple[str, str] | None:
    """(username, password) of a learner section (DigestLoginModule's options)."""
    for m in modules:
        if "username" in m.options and "password" in m.options:
            return m.options["username"], m.options["password"]
    return None


def uses_only_digest(modules: list[LoginModule]) -> bool:
    return all(m.name == DIGEST_MODULE for m in modules)
