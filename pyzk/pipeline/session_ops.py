"""Packets a connection's session answers itself: auth (addauth) and sasl.

ZooKeeper handles these in ``ZooKeeperServer.processPacket``, before the request
pipeline: the reply goes out at once, even ahead of replies still in flight.

* **auth** (opcode 100, xid -4 by convention): the scheme's provider adds the ids the
  packet proves to the connection; the reply is ``ReplyHeader(xid, 0, 0)``. An unknown
  scheme gets AUTHFAILED and the connection is closed.
* **sasl** (opcode 102): one step of the connection's SASL login
  (:mod:`pyzk.pipeline.sasl_session`); without a JAAS ``Server`` section, OK with a null
  token, as ZooKeeper answers when no SASL login is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyzk.jute import records as r
from pyzk.jute.codes import Err, OpCode
from pyzk.pipeline import sasl_session
from pyzk.pipeline.connection import ClientConnection
from pyzk.pipeline.wire import reply

log = logging.getLogger(__name__)


def auth(conn: ClientConnection, xid: int, frame: bytes) -> bool:
    """Handle an auth packet; True when the connection must close."""
    packet = r.AuthPacket.decode(frame, 8)[0]
    if _x509_again(conn, packet.scheme) or conn.auth.authenticate(
        packet.scheme, packet.auth or b"", conn.ip
    ):
        log.info(
            "Session 0x%x: auth success for scheme %s and address %s",
            conn.session_id,
            packet.scheme,
            conn.peer,
        )
        conn.queue(reply(xid, 0, Err.OK))
        return False
    log.warning("No authentication provider for scheme: %s has ip digest", packet.scheme)
    conn.queue(reply(xid, 0, Err.AUTHFAILED))
    return True


def _x509_again(conn: ClientConnection, scheme: str) -> bool:
    """addauth x509: OK when the connection's TLS client certificate already gave the id.

    (X509AuthenticationProvider.handleAuthentication checks the connection's certificate
    chain, which the TLS handshake verified; without one it is AUTHFAILED.)
    """
    security = conn.auth.security
    return (
        security.provider(scheme) is not None
        and scheme == "x509"
        and any(s == scheme for s, _ in conn.auth.ids())
    )


def sasl(conn: ClientConnection, xid: int, frame: bytes) -> bool:
    """One SASL token in, one out; an undecodable packet closes the connection."""
    token = r.GetSASLRequest.decode(frame, 8)[0].token
    return sasl_session.step(conn, xid, token)


SESSION_OPS: dict[int, Callable[[ClientConnection, int, bytes], bool]] = {
    OpCode.auth: auth,
    OpCode.sasl: sasl,
}
