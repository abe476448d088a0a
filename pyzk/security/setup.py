"""Start-up: read the files the security settings name, once, before serving.

The JAAS file gives the SASL users (section ``Server``, or ``sasl.serverconfig``) and the
quorum's credentials (``QuorumServer`` / ``QuorumLearner``); key and trust stores give the
TLS contexts (:mod:`pyzk.security.tls`). Every problem is a SecurityConfigError naming
the key, which stops start-up with one line (exit status 2), never a secret.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from pyzk.security import jaas
from pyzk.security.sasl import SaslConfig
from pyzk.security.settings import SecurityConfigError, SecuritySettings

log = logging.getLogger(__name__)

JAAS_KEY = "java.security.auth.login.config"


def read_jaas(path: Path) -> dict[str, list[jaas.LoginModule]]:
    try:
        text = path.read_text()
    except OSError as e:
        raise SecurityConfigError(f"{JAAS_KEY}: cannot read {path}: {e.strerror}") from None
    try:
        return jaas.parse(text)
    except jaas.JaasError as e:
        raise SecurityConfigError(f"{JAAS_KEY}: {path}: {e}") from None


def _digest_section(
    sections: dict[str, list[jaas.LoginModule]], name: str, path: Path
) -> list[jaas.LoginModule] | None:
    modules = sections.get(name)
    if modules is not None and not jaas.uses_only_digest(modules):
        raise SecurityConfigError(
            f"{JAAS_KEY}: section {name} of {path} uses "
            f"{', '.join(m.name for m in modules)}; pyzk has DIGEST-MD5 only "
            f"({jaas.DIGEST_MODULE})"
        )
    return modules


def sasl_config(s: SecuritySettings) -> SaslConfig | None:
    """The client port's SASL logins, None when the JAAS file has no server section."""
    if s.jaas_file is None:
        if s.server_section_set:
            raise SecurityConfigError(
                f"sasl.serverconfig: is set, but {JAAS_KEY} names no JAAS file"
            )
        return None
    sections = read_jaas(s.jaas_file)
    modules = _digest_section(sections, s.server_section, s.jaas_file)
    if modules is None:
        log.info("no JAAS section %s in %s: SASL is off", s.server_section, s.jaas_file)
        return None
    users = jaas.digest_users(modules)
    log.info("SASL DIGEST-MD5 on with %d users from section %s of %s",
             len(users), s.server_section, s.jaas_file)  # fmt: skip
    return SaslConfig(
        users=users,
        super_users=s.sasl_super_users,
        super_password=s.sasl_super_password,
        allow_failed=s.allow_sasl_failed,
        remove_host=s.remove_host,
        remove_realm=s.remove_realm,
    )


@dataclass(frozen=True, slots=True)
class QuorumCredentials:
    """DIGEST-MD5 between ensemble members (quorum.auth.*): whom we accept, who we are."""

    users: dict[str, str] = field(repr=False)  # QuorumServer's user_NAME="password"
    login: tuple[str, str] | None = field(repr=False)  # QuorumLearner's username/password
    server_require: bool  # refuse peers that do not authenticate
    learner_require: bool  # refuse servers that do not authenticate back


def quorum_credentials(s: SecuritySettings) -> QuorumCredentials | None:
    if not s.quorum_sasl:
        return None
    if s.jaas_file is None:
        raise SecurityConfigError(
            f"quorum.auth.enableSasl: is true, but {JAAS_KEY} names no JAAS file"
        )
    sections = read_jaas(s.jaas_file)
    server = _digest_section(sections, s.quorum_server_section, s.jaas_file)
    learner = _digest_section(sections, s.quorum_learner_section, s.jaas_file)
    if server is None or learner is None:
        missing = s.quorum_server_section if server is None else s.quorum_learner_section
        raise SecurityConfigError(
            f"quorum.auth.enableSasl: no JAAS section {missing} in {s.jaas_file}"
        )
    login = jaas.digest_credentials(learner)
    if login is None:
        raise SecurityConfigError(
            f"{JAAS_KEY}: section {s.quorum_learner_section} needs username and password"
        )
    return QuorumCredentials(
        jaas.digest_users(server), login, s.quorum_server_require, s.quorum_learner_require
    )


def client_tls(s: SecuritySettings, secure_port: int) -> ssl.SSLContext | None:
    if secure_port <= 0:
        return None
    from pyzk.security import tls  # cryptography loads in ~100 ms: only when TLS is on

    return tls.server_context(s.client_tls)


def quorum_tls(s: SecuritySettings) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """(server side, client side) contexts for sslQuorum, None without it."""
    if not s.ssl_quorum:
        return None
    t = s.quorum_tls
    if t.keystore is None:
        raise SecurityConfigError(f"{t.key('keyStore.location')}: sslQuorum needs a key store")
    from pyzk.security import tls

    return tls.server_context(t), tls.client_context(t)
