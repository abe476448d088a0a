"""SASL DIGEST-MD5 (RFC 2831), both sides, as ZooKeeper's JDK mechanism speaks it.

Theory of operation
-------------------
No well-kept Python library implements the *server* side, so this module does, and only
what ZooKeeper uses: authentication without a security layer (``qop=auth``), the realm
and server name ``zk-sasl-md5``, service ``zookeeper``, ``algorithm=md5-sess``.

Server (the JDK's ``DigestMD5Server``), three steps:

1. The client sends an empty token (the JDK ignores a non-empty one, and so does this);
   the server answers the *digest-challenge*
   ``realm="zk-sasl-md5",nonce="…",charset=utf-8,algorithm=md5-sess`` (RFC 2831 §2.1.1;
   no qop directive: ``auth``, the default) with a fresh random nonce of 30 bytes.
2. The client sends the *digest-response* (§2.1.2): username, realm, nonce, cnonce,
   nc=00000001, qop, digest-uri ``zookeeper/zk-sasl-md5`` and ``response``, a hash over
   the password. The server checks every directive as the JDK does and recomputes
   ``response`` from the user's password; any mismatch is a :class:`SaslError` (the
   caller answers AUTHFAILED and closes the connection).
3. It answers ``rspauth=…`` (§2.1.3), proving it knows the password too, and is complete:
   :attr:`DigestMD5Server.authorization_id` names the user.

The client side (:class:`DigestMD5Client`) is what a quorum learner uses to prove itself
to the server it connects to, and to check that server's ``rspauth`` in turn.

Hashes (§2.1.2.1): ``A1 = MD5(user:realm:password) ":" nonce ":" cnonce [":" authzid]``,
``A2 = "AUTHENTICATE:" digest-uri`` (``":" digest-uri`` for rspauth), and
``response = HEX(MD5(HEX(MD5(A1)) ":" nonce ":" nc ":" cnonce ":" qop ":" HEX(MD5(A2))))``.
Comparisons are constant-time. MD5 is the mechanism's; nothing else here is crypto.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

PROTOCOL = "zookeeper"
SERVER_NAME = "zk-sasl-md5"  # ZooKeeperSaslServer's serverName and the realm
QOP = "auth"
NONCE_COUNT = 1
_RAW_NONCE_BYTES = 30  # DigestMD5Base.RAW_NONCE_SIZE
# A digest-response is a few hundred bytes; anything much larger is not one.
MAX_TOKEN_BYTES = 4096


class SaslError(Exception):
    """The exchange failed; the message is the JDK's (never a password or a hash)."""


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _hex_md5(data: bytes) -> bytes:
    return _md5(data).hex().encode()


def _text(s: str) -> bytes:
    """RFC 2831 §2.1.2.1: ISO 8859-1 when the string fits, else UTF-8."""
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8")


def parse_directives(token: bytes) -> dict[str, bytes]:
    """``key=value`` or ``key="quoted value"`` pairs, comma-separated (§7.1)."""
    out: dict[str, bytes] = {}
    i, n = 0, len(token)
    while i < n:
        while i < n and token[i : i + 1] in (b" ", b"\t", b",", b"\r", b"\n"):
            i += 1
        eq = token.find(b"=", i)
        if eq < 0:
            if token[i:].strip():
                raise SaslError("DIGEST-MD5: digest response format violation.")
            break
        key = token[i:eq].strip().decode("ascii", "replace").lower()
        i = eq + 1
        if token[i : i + 1] == b'"':
            value, i = _quoted(token, i + 1)
        else:
            end = token.find(b",", i)
            end = n if end < 0 else end
            value, i = token[i:end].strip(), end
        if key in out:
            raise SaslError(f"DIGEST-MD5: digest response format violation. Duplicate {key}.")
        out[key] = value
    return out


def _quoted(token: bytes, i: int) -> tuple[bytes, int]:
    value = bytearray()
    while i < len(token):
        c = token[i]
        if c == 0x5C and i + 1 < len(token):  # backslash
            value.append(token[i + 1])
            i += 2
        elif c == 0x22:  # closing quote
            return bytes(value), i + 1
        else:
            value.append(c)
            i += 1
    raise SaslError("DIGEST-MD5: digest response format violation. Unterminated quote.")


def _response_value(
    a2_prefix: bytes,
    user: str,
    realm: str,
    password: str,
    nonce: bytes,
    cnonce: bytes,
    digest_uri: bytes,
    authzid: bytes | None,
) -> bytes:
    a1 = _md5(_text(user) + b":" + _text(realm) + b":" + _text(password))
    a1 += b":" + nonce + b":" + cnonce
    if authzid:
        a1 += b":" + authzid
    a2 = a2_prefix + b":" + digest_uri
    nc = b"%08x" % NONCE_COUNT
    kd = _hex_md5(a1) + b":" + nonce + b":" + nc + b":" + cnonce + b":" + QOP.encode()
    return _hex_md5(kd + b":" + _hex_md5(a2))


def _quote(value: bytes) -> bytes:
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class DigestMD5Server:
    """One server-side exchange; see the module docstring for the steps."""

    def __init__(
        self,
        password_of: Callable[[str], str | None],
        authorize: Callable[[str, str], str] = lambda user, authzid: user,
        nonce: bytes | None = None,
    ) -> None:
        self._password_of = password_of  # the user's password, None for an unknown user
        self._authorize = authorize  # (username, authzid) -> the id the session gets
        self._nonce = nonce or base64.b64encode(secrets.token_bytes(_RAW_NONCE_BYTES))
        self._step = 0
        self.complete = False
        self.authorization_id: str | None = None
        self.username: str | None = None

    def evaluate(self, token: bytes) -> bytes:
        """The server's answer to a client token; SaslError when authentication fails."""
        if self._step == 0:
            self._step = 1
            return self.challenge()  # a first token is not looked at (JDK 17)
        if self._step == 1:
            self._step = 2
            if len(token) > MAX_TOKEN_BYTES:
                raise SaslError("DIGEST-MD5: digest response format violation.")
            rspauth = self._validate(parse_directives(token))
            self.complete = True
            return b"rspauth=" + rspauth
        raise SaslError("DIGEST-MD5 authentication already complete")

    def challenge(self) -> bytes:
        return (
            b'realm="' + SERVER_NAME.encode() + b'",nonce="' + self._nonce
            + b'",charset=utf-8,algorithm=md5-sess'
        )  # fmt: skip

    def _validate(self, d: dict[str, bytes]) -> bytes:
        """DigestMD5Server.validateClientResponse, in its order; the rspauth value."""
        violation = "DIGEST-MD5: digest response format violation. "
        if "charset" in d and d["charset"].lower() != b"utf-8":
            raise SaslError(violation + "Incompatible charset value")
        if "username" not in d:
            raise SaslError(violation + "Missing username.")
        user = d["username"].decode("utf-8", "replace")
        realm = d.get("realm", b"").decode("utf-8", "replace")
        if realm != SERVER_NAME:
            raise SaslError(violation + f"Nonexistent realm: {realm}")
        if "nonce" not in d:
            raise SaslError(violation + "Missing nonce.")
        if not hmac.compare_digest(d["nonce"], self._nonce):
            raise SaslError(violation + "Mismatched nonce.")
        cnonce = d.get("cnonce")
        if not cnonce:
            raise SaslError(violation + "Missing cnonce.")
        if "nc" in d and _hex_int(d["nc"]) != NONCE_COUNT:
            raise SaslError(violation + "Nonce count does not match")
        if d.get("qop", b"auth") != b"auth":
            raise SaslError("DIGEST-MD5: server does not support qop: " + d["qop"].decode())
        uri = d.get("digest-uri")
        if uri is None:
            raise SaslError(violation + "Missing digest-uri.")
        parts = uri.decode("utf-8", "replace").split("/")
        if len(parts) < 2 or parts[0].lower() != PROTOCOL or parts[1].lower() != SERVER_NAME:
            raise SaslError(violation + "Mismatched URI")
        response = d.get("response")
        if response is None:
            raise SaslError(violation + "Missing response.")
        password = self._password_of(user)
        if password is None:
            raise SaslError(f"DIGEST-MD5: cannot acquire password for {user} in realm : {realm}")
        authzid = d.get("authzid")
        expected = _response_value(
            b"AUTHENTICATE", user, realm, password, self._nonce, cnonce, uri, authzid
        )
        if not hmac.compare_digest(response.lower(), expected):
            raise SaslError(violation + "Mismatched response.")
        self.username = user
        self.authorization_id = self._authorize(
            user, authzid.decode("utf-8", "replace") if authzid else user
        )
        return _response_value(b"", user, realm, password, self._nonce, cnonce, uri, authzid)


def _hex_int(value: bytes) -> int:
    try:
        return int(value, 16)
    except ValueError:
        return -1


class DigestMD5Client:
    """The client side: an empty first token, the digest-response, then check rspauth."""

    def __init__(self, username: str, password: str, cnonce: bytes | None = None) -> None:
        self._user = username
        self._password = password
        self._cnonce = cnonce or base64.b64encode(secrets.token_bytes(_RAW_NONCE_BYTES))
        self._expected_rspauth: bytes | None = None
        self.complete = False

    def initial(self) -> bytes:
        return b""

    def evaluate(self, challenge: bytes) -> bytes:
        """The response to a server token; SaslError if the server is not who it says."""
        d = parse_directives(challenge)
        if self._expected_rspauth is not None:
            got = d.get("rspauth", b"")
            if not hmac.compare_digest(got.lower(), self._expected_rspauth):
                raise SaslError("DIGEST-MD5: server's rspauth does not match")
            self.complete = True
            return b""
        nonce = d.get("nonce")
        if not nonce or b"auth" not in d.get("qop", b"auth").split(b","):
            raise SaslError("DIGEST-MD5: bad challenge")
        realm = d.get("realm", SERVER_NAME.encode()).decode("utf-8", "replace")
        uri = f"{PROTOCOL}/{SERVER_NAME}".encode()
        args = (self._user, realm, self._password, nonce, self._cnonce, uri, None)
        response = _response_value(b"AUTHENTICATE", *args)
        self._expected_rspauth = _response_value(b"", *args)
        return b",".join(
            [
                b"charset=utf-8",
                b"username=" + _quote(self._user.encode()),
                b"realm=" + _quote(realm.encode()),
                b"nonce=" + _quote(nonce),
                b"nc=%08x" % NONCE_COUNT,
                b"cnonce=" + _quote(self._cnonce),
                b"digest-uri=" + _quote(uri),
                b"maxbuf=65536",
                b"response=" + response,
                b"qop=auth",
            ]
        )
