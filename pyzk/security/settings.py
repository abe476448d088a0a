"""The security settings, read from ZooKeeper's keys (zoo.cfg or ``-Dzookeeper.`` flags).

ZooKeeper reads these as Java system properties: a zoo.cfg key it does not know becomes
``zookeeper.<key>`` (QuorumPeerConfig.parseProperties), and its TLS, SASL and auth code
reads those properties. So every key here works both in zoo.cfg and as a ``-D`` flag in
``SERVER_JVMFLAGS`` (with or without the ``zookeeper.`` prefix), the file winning. The
JAAS file is the exception: ``-Djava.security.auth.login.config`` (the JVM's own property);
pyzk also accepts it as a zoo.cfg key.

Nothing here opens a socket; files named by the settings (key stores, JAAS, password
files) are read when the server builds its TLS contexts and SASL users, at start-up.

TLS keys come in two sets, ZooKeeper's ``ClientX509Util`` (prefix ``ssl.``) for the secure
client port and ``QuorumX509Util`` (prefix ``ssl.quorum.``) for ``sslQuorum``:
``keyStore.location|type|password|passwordPath``, ``trustStore.*`` likewise, ``protocol``
(TLSv1.2), ``enabledProtocols`` (default: the protocol), ``ciphersuites`` (ZooKeeper's
list), ``clientAuth`` (none/want/need, default need), ``hostnameVerification`` (true),
``handshakeDetectionTimeoutMillis`` (5000).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pyzk.security import ciphers


class SecurityConfigError(ValueError):
    """An invalid security setting; the message names the key (never a secret value)."""


CLIENT_PREFIX = "ssl."
QUORUM_PREFIX = "ssl.quorum."

# X509Util.DEFAULT_PROTOCOL and DEFAULT_HANDSHAKE_DETECTION_TIMEOUT_MILLIS in 3.8.
DEFAULT_PROTOCOL = "TLSv1.2"
DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000

_TLS_KEYS = (
    "protocol", "enabledProtocols", "ciphersuites", "clientAuth", "hostnameVerification",
    "crl", "ocsp", "handshakeDetectionTimeoutMillis", "context.supplier.class",
    "keyStore.location", "keyStore.type", "keyStore.password", "keyStore.passwordPath",
    "trustStore.location", "trustStore.type", "trustStore.password",
    "trustStore.passwordPath",
)  # fmt: skip

# Keys outside the ssl.* families that belong to authentication.
_AUTH_KEYS = frozenset(
    {
        "secureClientPortAddress",
        "serverCnxnFactory",
        "sslQuorum",
        "sslQuorumReloadCertFiles",
        "client.portUnification",
        "portUnification",
        "ssl.authProvider",
        "X509AuthenticationProvider.superUser",
        "SASLAuthenticationProvider.superPassword",
        "superUser",
        "allowSaslFailedClients",
        "sessionRequireClientSASLAuth",
        "enforce.auth.enabled",
        "enforce.auth.schemes",
        "sasl.serverconfig",
        "java.security.auth.login.config",
        "kerberos.removeHostFromPrincipal",
        "kerberos.removeRealmFromPrincipal",
        "quorum.auth.enableSasl",
        "quorum.auth.learnerRequireSasl",
        "quorum.auth.serverRequireSasl",
        "quorum.auth.learner.saslLoginContext",
        "quorum.auth.server.saslLoginContext",
        "quorum.auth.kerberos.servicePrincipal",
    }
)

# Switches pyzk accepts but does not implement: logged as ignored when turned on.
_NOT_IMPLEMENTED = (
    "client.portUnification", "portUnification", "sslQuorumReloadCertFiles",
    "ssl.crl", "ssl.ocsp", "ssl.quorum.crl", "ssl.quorum.ocsp",
)  # fmt: skip

NETTY_FACTORY = "org.apache.zookeeper.server.NettyServerCnxnFactory"
NIO_FACTORY = "org.apache.zookeeper.server.NIOServerCnxnFactory"

# authProvider.N class names pyzk implements, by the scheme each registers.
PROVIDER_CLASSES = {
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider": "x509",
    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider": "sasl",
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider": "digest",
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider": "ip",
}

_SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"

# ZooKeeperSaslServer.DEFAULT_LOGIN_CONTEXT_NAME and QuorumAuth's defaults.
DEFAULT_SERVER_SECTION = "Server"
DEFAULT_QUORUM_SERVER_SECTION = "QuorumServer"
DEFAULT_QUORUM_LEARNER_SECTION = "QuorumLearner"


def is_security_key(key: str) -> bool:
    """Is this (``zookeeper.``-less) key one of the settings read here?"""
    return key in _AUTH_KEYS or key.startswith(("ssl.", "authProvider.", "superUser."))


_SECRET = re.compile(r"password|secret|superdigest|passwd", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Does this key hold a secret (a password, a digest), never to be shown or logged?"""
    return bool(_SECRET.search(key)) and not key.endswith("passwordPath")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """One X509Util's settings (``ssl.`` for clients, ``ssl.quorum.`` for the quorum)."""

    prefix: str
    keystore: Path | None = None
    keystore_type: str | None = None  # PEM or PKCS12 once resolved
    keystore_password: str = field(default="", repr=False)
    keystore_password_path: Path | None = None
    truststore: Path | None = None
    truststore_type: str | None = None
    truststore_password: str = field(default="", repr=False)
    truststore_password_path: Path | None = None
    protocol: str = DEFAULT_PROTOCOL
    enabled_protocols: tuple[str, ...] = ()  # empty: just ``protocol``
    ciphersuites: tuple[str, ...] = ciphers.ZK_DEFAULT_SUITES
    client_auth: str = "need"  # none, want, need (X509Util.ClientAuth, default NEED)
    hostname_verification: bool = True
    handshake_timeout_ms: int = DEFAULT_HANDSHAKE_TIMEOUT_MS

    def key(self, name: str) -> str:
        return self.prefix + name


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Everything about TLS, SASL and authentication a server was configured with."""

    client_tls: TlsSettings = field(default_factory=lambda: TlsSettings(CLIENT_PREFIX))
    quorum_tls: TlsSettings = field(default_factory=lambda: TlsSettings(QUORUM_PREFIX))
    secure_client_address: str | None = None  # secureClientPortAddress (default 0.0.0.0)
    ssl_quorum: bool = False
    ssl_auth_provider: str = "x509"  # ssl.authProvider: the scheme TLS clients get ids in
    providers: frozenset[str] = frozenset()  # extra schemes from authProvider.N
    x509_super_user: str | None = None
    sasl_super_users: frozenset[str] = frozenset()  # superUser, superUser.N
    sasl_super_password: str | None = field(default=None, repr=False)
    allow_sasl_failed: bool = False
    enforce_schemes: frozenset[str] = frozenset()  # empty: enforcement off
    jaas_file: Path | None = None
    server_section: str = DEFAULT_SERVER_SECTION
    server_section_set: bool = False  # sasl.serverconfig given: the section must exist
    remove_host: bool = False
    remove_realm: bool = False
    quorum_sasl: bool = False  # quorum.auth.enableSasl
    quorum_learner_require: bool = False
    quorum_server_require: bool = False
    quorum_server_section: str = DEFAULT_QUORUM_SERVER_SECTION
    quorum_learner_section: str = DEFAULT_QUORUM_LEARNER_SECTION


# --- parsing ------------------------------------------------------------------------------


def _bool(key: str, v: str) -> bool:
    """Java's Boolean.parseBoolean: "true" in any case, anything else is false."""
    return v.strip().lower() == "true"


def _strict_bool(key: str, v: str) -> bool:
    """QuorumPeerConfig.parseBoolean: only true or false."""
    s = v.strip().lower()
    if s not in ("true", "false"):
        raise SecurityConfigError(f"{key}: {v.strip()!r} is not true or false")
    return s == "true"


_STORE_TYPES = {".pem": "PEM", ".p12": "PKCS12", ".pfx": "PKCS12", ".jks": "JKS"}


def store_type(key: str, location: Path, declared: str | None) -> str:
    """KeyStoreFileType.fromPropertyValueOrFileName, limited to the types pyzk reads."""
    if declared:
        t = declared.strip().upper()
        if t not in ("PEM", "PKCS12", "JKS", "BCFKS"):
            raise SecurityConfigError(f"{key}: {declared.strip()!r} is not PEM, PKCS12 or JKS")
    else:
        t = _STORE_TYPES.get(location.suffix.lower(), "")
        if not t:
            raise SecurityConfigError(
                f"{key}: unable to auto-detect store file type from file name {location};"
                " set it to PEM or PKCS12"
            )
    if t in ("JKS", "BCFKS"):
        raise SecurityConfigError(
            f"{key}: {t} stores are not supported by pyzk; convert with `keytool "
            "-importkeystore -deststoretype PKCS12` or use PEM"
        )
    return t


def _tls(props: Mapping[str, str], prefix: str) -> TlsSettings:
    def get(name: str) -> str | None:
        v = props.get(prefix + name)
        return v.strip() if v is not None else None

    if get("context.supplier.class"):
        raise SecurityConfigError(f"{prefix}context.supplier.class: not supported by pyzk")
    client_auth = (get("clientAuth") or "need").lower()
    if client_auth not in ("none", "want", "need"):
        raise SecurityConfigError(f"{prefix}clientAuth: {client_auth!r} is not none, want or need")
    timeout = get("handshakeDetectionTimeoutMillis")
    try:
        timeout_ms = int(timeout) if timeout else DEFAULT_HANDSHAKE_TIMEOUT_MS
    except ValueError:
        raise SecurityConfigError(
            f"{prefix}handshakeDetectionTimeoutMillis: {timeout!r} is not a number"
        ) from None
    suites = get("ciphersuites")
    protocols = get("enabledProtocols")
    keystore, truststore = get("keyStore.location"), get("trustStore.location")
    kpath, tpath = get("keyStore.passwordPath"), get("trustStore.passwordPath")
    return TlsSettings(
        prefix=prefix,
        keystore=Path(keystore) if keystore else None,
        keystore_type=get("keyStore.type"),
        keystore_password=props.get(prefix + "keyStore.password", ""),
        keystore_password_path=Path(kpath) if kpath else None,
        truststore=Path(truststore) if truststore else None,
        truststore_type=get("trustStore.type"),
        truststore_password=props.get(prefix + "trustStore.password", ""),
        truststore_password_path=Path(tpath) if tpath else None,
        protocol=get("protocol") or DEFAULT_PROTOCOL,
        enabled_protocols=tuple(p.strip() for p in protocols.split(",")) if protocols else (),
        ciphersuites=tuple(s.strip() for s in suites.split(","))
        if suites
        else (ciphers.ZK_DEFAULT_SUITES),
        client_auth=client_auth,
        hostname_verification=(get("hostnameVerification") or "true").lower() != "false",
        handshake_timeout_ms=max(1, timeout_ms),
    )


def _providers(props: Mapping[str, str], warn: Callable[[str], None]) -> frozenset[str]:
    schemes = set()
    for key, cls in props.items():
        if key.startswith("authProvider."):
            scheme = PROVIDER_CLASSES.get(cls.strip())
            if scheme is None:
                warn(f"{key}: problems loading {cls.strip()}: not a provider pyzk has")
            else:
                schemes.add(scheme)
    return frozenset(schemes)


def _enforce(props: Mapping[str, str], providers: frozenset[str]) -> frozenset[str]:
    """AuthenticationHelper.initConfigurations: the schemes a session must have."""
    if _bool("sessionRequireClientSASLAuth", props.get("sessionRequireClientSASLAuth", "")):
        schemes = frozenset({"sasl"})
    elif not _bool("enforce.auth.enabled", props.get("enforce.auth.enabled", "")):
        return frozenset()
    else:
        schemes = frozenset(
            s.strip() for s in props.get("enforce.auth.schemes", "").split(",") if s.strip()
        )
    if not schemes:
        raise SecurityConfigError(
            "enforce.auth.enabled: is true, so enforce.auth.schemes must be configured"
        )
    for scheme in sorted(schemes):  # validateConfiguredProperties
        if scheme not in providers | {"digest", "ip"}:
            hint = " (set authProvider.sasl=" + _SASL_PROVIDER + ")" if scheme == "sasl" else ""
            raise SecurityConfigError(
                f"enforce.auth.schemes: Authentication scheme {scheme} is not available{hint}"
            )
    return schemes


def parse(
    props: Mapping[str, str],
    secure_port: bool,
    warn: Callable[[str], None] = lambda _: None,
) -> SecuritySettings:
    """Validated settings from the security keys (``zookeeper.`` prefix removed)."""
    _warn_unused(props, warn)
    providers, ssl_provider = _schemes(props, secure_port, warn)
    enforce = _enforce(props, providers)
    quorum_sasl, learner_req, server_req = _quorum_switches(props)
    jaas = props.get("java.security.auth.login.config", "").strip()
    supers = frozenset(
        v.strip() for k, v in props.items() if k == "superUser" or k.startswith("superUser.")
    )
    return SecuritySettings(
        client_tls=_tls(props, CLIENT_PREFIX),
        quorum_tls=_tls(props, QUORUM_PREFIX),
        secure_client_address=(props.get("secureClientPortAddress") or "").strip() or None,
        ssl_quorum=_strict_bool("sslQuorum", props.get("sslQuorum", "false")),
        ssl_auth_provider=ssl_provider,
        providers=providers,
        x509_super_user=props.get("X509AuthenticationProvider.superUser"),
        sasl_super_users=supers,
        sasl_super_password=props.get("SASLAuthenticationProvider.superPassword"),
        allow_sasl_failed=_bool("allowSaslFailedClients", props.get("allowSaslFailedClients", "")),
        enforce_schemes=enforce,
        jaas_file=Path(jaas) if jaas else None,
        server_section=props.get("sasl.serverconfig", DEFAULT_SERVER_SECTION).strip(),
        server_section_set="sasl.serverconfig" in props,
        remove_host=_bool("", props.get("kerberos.removeHostFromPrincipal", "")),
        remove_realm=_bool("", props.get("kerberos.removeRealmFromPrincipal", "")),
        quorum_sasl=quorum_sasl,
        quorum_learner_require=learner_req,
        quorum_server_require=server_req,
        quorum_server_section=props.get(
            "quorum.auth.server.saslLoginContext", DEFAULT_QUORUM_SERVER_SECTION
        ).strip(),
        quorum_learner_section=props.get(
            "quorum.auth.learner.saslLoginContext", DEFAULT_QUORUM_LEARNER_SECTION
        ).strip(),
    )


def _warn_unused(props: Mapping[str, str], warn: Callable[[str], None]) -> None:
    factory = props.get("serverCnxnFactory", NETTY_FACTORY).strip()
    if factory not in (NETTY_FACTORY, NIO_FACTORY):
        warn(f"serverCnxnFactory: {factory} is not a ZooKeeper factory; pyzk uses its own")
    for key in _NOT_IMPLEMENTED:
        if _bool(key, props.get(key, "")):
            warn(f"{key}: not implemented by pyzk")


def _schemes(
    props: Mapping[str, str], secure_port: bool, warn: Callable[[str], None]
) -> tuple[frozenset[str], str]:
    """(the schemes beyond digest and ip, the scheme TLS clients' ids are in)."""
    providers = set(_providers(props, warn))
    ssl_provider = props.get("ssl.authProvider", "x509").strip() or "x509"
    if secure_port:
        # QuorumPeerConfig.configureSSLAuth: the x509 provider comes with a secure port.
        if ssl_provider != "x509" and ssl_provider not in providers:
            raise SecurityConfigError(
                f"ssl.authProvider: no auth provider configured for the SSL authentication "
                f"scheme '{ssl_provider}'"
            )
        providers.add(ssl_provider)
    return frozenset(providers), ssl_provider


def _quorum_switches(props: Mapping[str, str]) -> tuple[bool, bool, bool]:
    """quorum.auth.enableSasl, learnerRequireSasl, serverRequireSasl, checked."""
    enabled, learner_req, server_req = (
        _strict_bool(key, props.get(key, "false"))
        for key in (
            "quorum.auth.enableSasl",
            "quorum.auth.learnerRequireSasl",
            "quorum.auth.serverRequireSasl",
        )
    )
    _check_quorum_sasl(enabled, learner_req, server_req)
    return enabled, learner_req, server_req


def _check_quorum_sasl(enabled: bool, learner_require: bool, server_require: bool) -> None:
    """QuorumPeerConfig's checks of the quorum.auth.* switches, in its order."""
    if not enabled and server_require:
        raise SecurityConfigError(
            "quorum.auth.serverRequireSasl: quorum.auth.enableSasl is disabled, so cannot "
            "enable quorum.auth.serverRequireSasl"
        )
    if not enabled and learner_require:
        raise SecurityConfigError(
            "quorum.auth.learnerRequireSasl: quorum.auth.enableSasl is disabled, so cannot "
            "enable quorum.auth.learnerRequireSasl"
        )
    if not learner_require and server_require:
        raise SecurityConfigError(
            "quorum.auth.serverRequireSasl: quorum.auth.learnerRequireSasl is disabled, so "
            "cannot enable quorum.auth.serverRequireSasl"
        )


def read_password(key: str, value: str, path: Path | None) -> str:
    """X509Util.getPasswordFromConfigPropertyOrFile: the file, when named, wins."""
    if path is None:
        return value
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as e:
        raise SecurityConfigError(f"{key}Path: cannot read {path}: {e.strerror}") from None
