"""Authenticating ensemble members on the quorum (2888) and election (3888) ports.

Theory of operation
-------------------
Two layers, each configured as in ZooKeeper 3.8, either or both:

* **Mutual TLS** (``sslQuorum=true`` and ``ssl.quorum.*``): every peer link runs inside
  TLS; each side presents the certificate of its ``ssl.quorum.keyStore`` and accepts only
  certificates its ``ssl.quorum.trustStore`` vouches for. With
  ``ssl.quorum.hostnameVerification`` (the default) the connecting side checks the
  server's certificate against the host in its ``server.N`` line, and the accepting side
  checks the connecting peer's certificate against the host of the ``server.N`` it says
  it is (or its address), so one member's certificate cannot pose as another.
* **DIGEST-MD5 in the hello** (``quorum.auth.enableSasl=true``, users in the JAAS file's
  ``QuorumServer`` section, our own login in ``QuorumLearner``): a shared secret, never
  sent, proves each side to the other. The connector's hello names the mechanism; the
  acceptor answers with a challenge (RFC 2831), the connector with its response, the
  acceptor with ``rspauth`` (its own proof), and only then is the link used.
  ``quorum.auth.serverRequireSasl`` refuses peers that do not authenticate,
  ``quorum.auth.learnerRequireSasl`` refuses servers that do not prove themselves;
  without them an unauthenticated peer is still let in (ZooKeeper's rolling upgrade).

Frames (msgpack, after the length prefix of :mod:`pyzk.server.peer_links`)::

    hello        [version, "hello", sid]               no SASL from this side
                 [version, "hello", sid, "DIGEST-MD5"] SASL follows
    sasl         [version, "sasl", token]              a SASL token (None: no SASL here)
    sasl-failed  [version, "sasl-failed"]              refused; the link closes

Nothing is delivered to the consensus core, and no existing link is replaced, before a
link is authenticated; an exchange must finish within the link timeout. A refused peer
is one log line.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

import msgpack
from cryptography import x509

from pyzk.security.digest_md5 import DigestMD5Client, DigestMD5Server, SaslError
from pyzk.security.settings import SecuritySettings
from pyzk.security.setup import QuorumCredentials, quorum_credentials, quorum_tls
from pyzk.zab.messages import WIRE_VERSION

log = logging.getLogger(__name__)

MECHANISM = "DIGEST-MD5"


class PeerAuthError(Exception):
    """The peer is not who it says, or would not prove it; close the link."""


def hello(sid: int, mechanism: str | None) -> bytes:
    msg: list[Any] = [WIRE_VERSION, "hello", sid]
    if mechanism is not None:
        msg.append(mechanism)
    return msgpack.packb(msg)  # type: ignore[no-any-return]


def parse_hello(frame: bytes) -> tuple[int, str | None] | None:
    """(sid, mechanism) of a hello frame, None if it is not one.

    PeerAuthError for the hello of another version of the quorum protocol: a member
    running an incompatible pyzk (during an upgrade, say) is told apart from noise.
    """
    try:
        msg = msgpack.unpackb(frame, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(msg, list) or len(msg) not in (3, 4):
        return None
    if msg[1] != "hello" or not isinstance(msg[2], int):
        return None
    if msg[0] != WIRE_VERSION:
        raise PeerAuthError(
            f"server {msg[2]} speaks version {msg[0]!r} of the quorum protocol and this "
            f"server version {WIRE_VERSION}: the members of an ensemble must run pyzk "
            "releases that speak the same version"
        )
    mechanism = msg[3] if len(msg) == 4 else None
    if mechanism is not None and not isinstance(mechanism, str):
        return None
    return msg[2], mechanism


def _sasl(token: bytes | None) -> bytes:
    return msgpack.packb([WIRE_VERSION, "sasl", token])  # type: ignore[no-any-return]


_FAILED: bytes = msgpack.packb([WIRE_VERSION, "sasl-failed"])


def _token(frame: bytes) -> bytes | None:
    """The token of a sasl frame; PeerAuthError for a refusal or anything else."""
    try:
        msg = msgpack.unpackb(frame, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise PeerAuthError("not a SASL frame") from None
    if msg == [WIRE_VERSION, "sasl-failed"]:
        raise PeerAuthError("the peer refused our credentials")
    if not (isinstance(msg, list) and len(msg) == 3 and msg[:2] == [WIRE_VERSION, "sasl"]):
        raise PeerAuthError("not a SASL frame")
    token = msg[2]
    if token is not None and not isinstance(token, bytes):
        raise PeerAuthError("not a SASL token")
    return token


class Exchange:
    """One side of a link's authentication: frames in, frames out, until done.

    ``send`` collects the frames to write; ``done`` turns true once the link may be used
    (``authenticated`` says whether the peer proved itself). PeerAuthError ends it.
    """

    def __init__(self) -> None:
        self.send: list[bytes] = []
        self.done = False
        self.authenticated = False

    def receive(self, frame: bytes) -> None:
        raise NotImplementedError


class _Acceptor(Exchange):
    """The accepting side runs the DIGEST-MD5 server: challenge, check, rspauth."""

    def __init__(self, users: dict[str, str]) -> None:
        super().__init__()
        self._server = DigestMD5Server(users.get)
        self.send.append(_sasl(self._server.evaluate(b"")))

    def receive(self, frame: bytes) -> None:
        token = _token(frame)
        try:
            rspauth = self._server.evaluate(token or b"")
        except SaslError as e:
            self.send.append(_FAILED)
            raise PeerAuthError(str(e)) from None
        self.send.append(_sasl(rspauth))
        self.done = self.authenticated = True


class _Connector(Exchange):
    """The connecting side answers the challenge, then checks the acceptor's rspauth."""

    def __init__(self, login: tuple[str, str], require: bool) -> None:
        super().__init__()
        self._client = DigestMD5Client(*login)
        self._require = require
        self._answered = False

    def receive(self, frame: bytes) -> None:
        token = _token(frame)
        if token is None:  # the acceptor has no quorum SASL
            if self._require:
                raise PeerAuthError("the server did not authenticate itself "
                                    "(quorum.auth.learnerRequireSasl)")  # fmt: skip
            self.done = True
            return
        try:
            answer = self._client.evaluate(token)
        except SaslError as e:
            raise PeerAuthError(str(e)) from None
        if self._answered:
            self.done = self.authenticated = True
            return
        self._answered = True
        self.send.append(_sasl(answer))


class _Done(Exchange):
    def __init__(self, send: list[bytes] | None = None) -> None:
        super().__init__()
        self.send = send or []
        self.done = True


class QuorumAuth:
    """What this server asks of peers and offers them (None credentials: SASL off)."""

    def __init__(self, credentials: QuorumCredentials | None) -> None:
        self.credentials = credentials

    @property
    def mechanism(self) -> str | None:
        return MECHANISM if self.credentials is not None else None

    def connector(self) -> Exchange:
        """For a link we dial: done at once without SASL."""
        c = self.credentials
        if c is None or c.login is None:
            return _Done()
        return _Connector(c.login, c.learner_require)

    def acceptor(self, mechanism: str | None) -> Exchange:
        """For a link a peer dialled, once its hello named ``mechanism`` (or none)."""
        c = self.credentials
        if c is None:
            # No quorum SASL here: say so, so that a peer that asked does not wait.
            return _Done([_sasl(None)] if mechanism is not None else [])
        if mechanism is None:
            if c.server_require:
                raise PeerAuthError("the peer did not authenticate (quorum.auth.serverRequireSasl)")
            return _Done()
        if mechanism != MECHANISM:
            raise PeerAuthError(f"mechanism {mechanism} is not {MECHANISM}")
        return _Acceptor(c.users)


# --- certificates of TLS peers ----------------------------------------------------------------


def certificate_matches(der: bytes | None, host: str, address: str) -> bool:
    """Is the certificate made out to ``host`` (a name or an address) or to ``address``?

    Subject alternative names first (DNS, with a leading ``*.`` wildcard, and IP); the
    subject's CN only when there are no DNS names, as Java's hostname verifier does.
    """
    if not der:
        return False
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names, ips = [], []
    if not names:
        names = [str(a.value).lower() for a in cert.subject.get_attributes_for_oid(
            x509.NameOID.COMMON_NAME)]  # fmt: skip
    for candidate in (host, address):
        if not candidate:
            continue
        if _is_ip(candidate):
            if str(ipaddress.ip_address(candidate)) in ips:
                return True
        elif any(_dns_match(n, candidate.lower()) for n in names):
            return True
    return False


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


def _dns_match(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


# --- what a server's links use ------------------------------------------------------------------


@dataclass(frozen=True)
class PeerSecurity:
    """How this server's peer links authenticate (both layers off by default)."""

    auth: QuorumAuth = field(default_factory=lambda: QuorumAuth(None))
    tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None  # (accepting, dialling) side
    verify_hosts: bool = True  # ssl.quorum.hostnameVerification
    timeout_s: float = 10.0  # a handshake and an exchange must each finish within this

    @classmethod
    def from_settings(cls, s: SecuritySettings, timeout_s: float) -> PeerSecurity:
        """Reads the JAAS file and the quorum key stores (SecurityConfigError if bad)."""
        return cls(
            QuorumAuth(quorum_credentials(s)),
            quorum_tls(s),
            s.quorum_tls.hostname_verification,
            timeout_s,
        )
