"""The secure client port (``secureClientPort``): the client protocol inside TLS.

ZooKeeper's NettyServerCnxnFactory with an SslHandler: the listener wraps every accepted
connection in TLS (the standard library's ``ssl`` through asyncio), then the connection
is an ordinary client connection. After the handshake (ZooKeeper's CertificateVerifier):

* ``ssl.clientAuth=need``: a client without a certificate, or with one the trust store
  does not vouch for (unknown CA, expired), fails the handshake and is closed;
* ``want``: a client without a certificate is let in with no x509 id;
* a verified certificate gives the connection the id ``x509:<subject>`` (the subject as
  Java prints it, see :mod:`pyzk.security.x500`), and ``super`` when it is
  ``X509AuthenticationProvider.superUser``.

A client speaking plain text to this port fails the handshake; a handshake that has not
finished within ``ssl.handshakeDetectionTimeoutMillis`` is abandoned. Each failure is one
log line ("Unsuccessful TLS handshake from ...: reason"), and nothing else is disturbed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from pyzk.pipeline.connection import ClientConnection
from pyzk.security import x500
from pyzk.security.settings import SecuritySettings

log = logging.getLogger(__name__)


def add_certificate_ids(
    conn: ClientConnection, transport: asyncio.BaseTransport, s: SecuritySettings
) -> None:
    """The x509 id of a verified client certificate, if the client presented one."""
    ssl_object: Any = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return  # clientAuth none, or want and the client sent none
    subject = x500.subject_id(der)
    if subject == s.x509_super_user:
        conn.auth.add(("super", subject))
        log.info("Authenticated Id '%s' as super user", subject)
    conn.auth.add((s.ssl_auth_provider, subject))
    log.info("Authenticated Id '%s' for Scheme '%s'", subject, s.ssl_auth_provider)


# Connections accepted but not yet through their handshake, queued by the kernel.
LISTEN_BACKLOG = 128
# After an accept() error (out of file descriptors, say), wait before trying again.
ACCEPT_RETRY_S = 0.1


class SecureListener:
    """Accepts on the secure port; each connection is handed over once its handshake is done.

    ``connect_accepted_socket`` runs the handshake (bounded by
    ``ssl.handshakeDetectionTimeoutMillis``) and only then gives the TLS transport to a
    new client protocol; a failed handshake raises here, so it is logged in one line and
    that socket is closed.
    """

    def __init__(
        self,
        make_protocol: Callable[[], asyncio.Protocol],
        context: ssl.SSLContext,
        timeout_s: float,
    ) -> None:
        self._make_protocol = make_protocol
        self._context = context
        self._timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        """Bind and listen (OSError if the port cannot be bound), then accept."""
        self._sock = socket.create_server((host, port), backlog=LISTEN_BACKLOG)
        self._sock.setblocking(False)
        self._accepting = asyncio.get_running_loop().create_task(self._accept())

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            try:
                sock, addr = await loop.sock_accept(self._sock)
            except OSError as e:
                log.warning("cannot accept on the secure client port: %s", e.strerror or e)
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            task = loop.create_task(self._handshake(sock, addr))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                self._make_protocol,
                sock,
                ssl=self._context,
                ssl_handshake_timeout=self._timeout_s,
            )
        except asyncio.CancelledError:
            sock.close()
            raise
        except Exception as e:  # SSLError, a reset, a timeout: the client's doing
            reason = (
                getattr(e, "verify_message", None)
                or getattr(e, "reason", None)
                or str(e)
                or type(e).__name__
            )
            log.warning("Unsuccessful TLS handshake from %s:%s: %s", addr[0], addr[1], reason)
            sock.close()

    def close(self) -> None:
        """Stop accepting; handshakes under way are abandoned."""
        if self._accepting is not None:
            self._accepting.cancel()
        for task in list(self._handshakes):
            task.cancel()
        if self._sock is not None:
            self._sock.close()

    async def wait_closed(self) -> None:
        tasks = [t for t in (self._accepting, *self._handshakes) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
