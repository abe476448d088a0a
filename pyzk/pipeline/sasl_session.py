"""A session's SASL login (opcode sasl = 102) and the enforcement of authentication.

ZooKeeperServer.processSasl and AuthenticationHelper, without I/O:

* Each sasl packet carries a client token (GetSASLRequest); the connection's DIGEST-MD5
  server (made on the first packet) answers with a token (SetSASLResponse), OK. When the
  exchange completes, the connection holds ``sasl:<user>`` (and ``super`` for a user
  named in ``zookeeper.superUser``).
* A failed exchange is answered AUTHFAILED, or SESSIONCLOSEDREQUIRESASLAUTH when the
  server enforces sasl, and the connection is closed; with ``allowSaslFailedClients``
  (and sasl not enforced) the client keeps its connection, unauthenticated.
* Without a JAAS ``Server`` section there is no SASL server: OK with a null token, and
  the client's negotiation goes no further (as ZooKeeper answers then).
* With ``enforce.auth.enabled`` (or ``sessionRequireClientSASLAuth``), any other request
  from a connection that holds none of ``enforce.auth.schemes`` is answered
  SESSIONCLOSEDREQUIRESASLAUTH and the connection closed (the session lives on until it
  expires, as in ZooKeeper).

Tokens and passwords are never logged.
"""

from __future__ import annotations

import logging

from pyzk.jute.codes import Err
from pyzk.pipeline.acl import SUPER
from pyzk.pipeline.connection import ClientConnection
from pyzk.pipeline.wire import NULL, buffer, reply
from pyzk.security.digest_md5 import SaslError

log = logging.getLogger(__name__)


def step(conn: ClientConnection, xid: int, token: bytes | None) -> bool:
    """Answer one sasl packet; True when the connection must close."""
    security = conn.auth.security
    config = security.sasl
    if config is None or token is None:
        # No SASL server for this connection (or a null token, which ZooKeeper's server
        # trips over the same way): OK and a null token.
        conn.queue(reply(xid, 0, Err.OK, NULL))
        return False
    server = conn.sasl
    if server is None:
        server = conn.sasl = config.new_server()
    required = "sasl" in security.enforce_schemes
    try:
        answer = server.evaluate(token)
    except SaslError as e:
        log.warning("Client %s failed to SASL authenticate: %s", conn.peer, e)
        if config.allow_failed and not required:
            log.warning("Maintaining client connection despite SASL authentication failure.")
            conn.queue(reply(xid, 0, Err.OK, NULL))
            return False
        if required:
            log.warning(
                "Closing client connection due to server requires client SASL authentication,"
                " but client SASL authentication has failed"
            )
        else:
            log.warning("Closing client connection due to SASL authentication failure.")
        err = Err.SESSIONCLOSEDREQUIRESASLAUTH if required else Err.AUTHFAILED
        conn.queue(reply(xid, 0, err, NULL))
        return True
    if server.complete and server.authorization_id is not None:
        _authenticated(conn, server.authorization_id, server.username or "")
    conn.queue(reply(xid, 0, Err.OK, buffer(answer)))
    return False


def _authenticated(conn: ClientConnection, authz: str, user: str) -> None:
    config = conn.auth.security.sasl
    assert config is not None
    log.info("Successfully authenticated client: authenticationID=%s;  authorizationID=%s.",
             user, authz)  # fmt: skip
    log.info("Session 0x%x: adding SASL authorization for authorizationID: %s",
             conn.session_id, authz)  # fmt: skip
    conn.auth.add(("sasl", authz))
    if authz in config.super_users:
        conn.auth.add(SUPER)
        log.info("Session 0x%x: Authenticated Id '%s' as super user", conn.session_id, authz)


def admit(conn: ClientConnection, xid: int) -> bool:
    """May this request go on? If not, it is answered and the connection closes."""
    schemes = conn.auth.security.enforce_schemes
    if not schemes or any(s in schemes for s, _ in conn.auth.ids()):
        return True
    log.error(
        "Client authentication scheme(s) %s does not match with any of the expected "
        "authentication scheme %s, closing session.",
        [s for s, _ in conn.auth.ids()],
        sorted(schemes),
    )
    conn.queue(reply(xid, 0, Err.SESSIONCLOSEDREQUIRESASLAUTH))
    conn.closing = True
    return False
