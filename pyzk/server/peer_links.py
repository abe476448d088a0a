"""TCP links between ensemble members: election (3888) and quorum (2888).

Theory of operation
-------------------
Every link carries length-prefixed frames. The side that connects first sends a hello,
``[version, "hello", sid]``; a connection from an id that is not in the configuration,
or whose first frame is not a hello, is closed with a log line. With quorum TLS or SASL
(:mod:`pyzk.server.peer_auth`) a link is used, and replaces an older one, only once the
peer has proved itself; until then it carries nothing but the authentication exchange.

*Who may connect.* Unless ``quorumListenOnAllIPs`` is set, every server listens on, and
dials from, the address its ``server.N`` line gives. So an inbound connection must come
from an address that a configured server's host resolves to, and its hello must name
that server: anything else (a stranger, a member claiming another's id) is dropped with
a log line before a frame of it is read. With ``quorumListenOnAllIPs=true`` the
configured addresses need not be the servers' own (NAT, Kubernetes Services), so the
check is off, as the option says. Either way nothing is buffered for a connection that
has not said hello beyond the few bytes a hello takes.

*Election links* (ZooKeeper's QuorumCnxManager): one connection per pair of servers, and
the server with the higher id keeps it. A lower-id server that wants to talk connects,
says hello, and waits: the higher one closes that connection and connects back. Votes
queued meanwhile go out once the link is up; losing some is fine, as the election
re-sends.

*Quorum links*: a learner connects to its leader's quorum port (when it sends
FOLLOWERINFO) and the leader answers on that connection; the leader never dials out.
When a quorum link closes, the consensus core is told (``on_lost``), as ZAB relies on
noticing a broken FIFO channel.

Unreachable peers (a Kubernetes pod not started yet, a host name that does not resolve)
are retried with exponential backoff; nothing here ever raises into the server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyzk.config import ServerSpec
from pyzk.server.peer_auth import (
    Exchange,
    PeerAuthError,
    PeerSecurity,
    certificate_matches,
    parse_hello,
)
from pyzk.server.peer_auth import hello as _hello
from pyzk.server.secure_port import SecureListener

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
# A snapshot can be large; anything beyond this is not a frame of ours.
MAX_FRAME = 1 << 31
# Before its hello a connection is nobody's: a hello is a few dozen bytes.
MAX_HELLO_FRAME = 1024
# How long resolved server addresses are trusted before they are looked up again (a
# restarted peer may come back with a new address under the same name).
RESOLVE_TTL_S = 5.0
# Backoff between connection attempts to an unreachable peer.
RETRY_MIN_S = 0.05
RETRY_MAX_S = 2.0
# Votes kept for a peer we cannot reach yet (the election re-sends anyway).
MAX_QUEUED = 64

ELECTION = "election"
QUORUM = "quorum"


def hello(sid: int) -> bytes:
    return _hello(sid, None)


class _Listener(Protocol):
    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class Link(asyncio.Protocol):
    """One TCP connection to a peer, framed."""

    def __init__(self, links: PeerLinks, kind: str, outbound_sid: int | None) -> None:
        self.links = links
        self.kind = kind
        self.sid = outbound_sid  # known at once for outbound links; from hello inbound
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.greeted = outbound_sid is not None
        self.out: list[bytes] = []  # frames queued until flush(): one write per batch
        self.inbound = False  # dialled by the peer (known once it said hello)
        self.exchange: Exchange | None = None  # authentication under way
        # Outbound: resolved once the link may be used (an exception if it may not).
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timer: asyncio.TimerHandle | None = None
        # Inbound, with the address check: the servers whose address this link has,
        # and whether we are still finding that out (nothing is parsed meanwhile).
        self.allowed: frozenset[int] | None = None
        self.vetting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        security = self.links.security
        self._timer = asyncio.get_running_loop().call_later(
            security.timeout_s, self._drop, "authentication timed out"
        )
        if self.sid is not None:
            self.write(_hello(self.links.my_sid, security.auth.mechanism))
            self._begin(security.auth.connector())
            self.flush()  # the hello goes out now, not with the next batch
        elif self.links.check_addresses and self.transport is not None:
            self.vetting = True
            self.transport.pause_reading()
            asyncio.get_running_loop().create_task(self._vet())

    async def _vet(self) -> None:
        """Inbound: which configured servers live at the connecting address?"""
        peer = self.transport.get_extra_info("peername") if self.transport else None
        ip = normal_ip(str(peer[0])) if peer else ""
        self.allowed = await self.links.servers_at(ip)
        if self.transport is None or self.transport.is_closing():
            return
        if not self.allowed:
            self._drop(f"{ip} is not the address of any configured server")
            return
        self.vetting = False
        self.transport.resume_reading()
        self._frames()  # what arrived before we knew

    def _begin(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self._flush_exchange()
        if exchange.done:
            self._authenticated()

    def _flush_exchange(self) -> None:
        assert self.exchange is not None
        for frame in self.exchange.send:
            self.write(frame)
        self.exchange.send.clear()
        self.flush()  # the exchange is a conversation: nothing waits for a batch

    def _step(self, frame: bytes) -> bool:
        """One frame of the authentication exchange; False if the link was dropped."""
        assert self.exchange is not None
        try:
            self.exchange.receive(frame)
        except PeerAuthError as e:
            self._flush_exchange()
            self._drop(f"authentication failed: {e}")
            return False
        self._flush_exchange()
        if self.exchange.done:
            self._authenticated()
        return True

    def _authenticated(self) -> None:
        assert self.exchange is not None
        if self.exchange.authenticated:
            log.debug("server %s authenticated on the %s link", self.sid, self.kind)
        self.exchange = None
        if self._timer is not None:
            self._timer.cancel()
        if self.outbound:
            if not self.ready.done():
                self.ready.set_result(None)
        else:
            self.links.accepted(self)

    @property
    def outbound(self) -> bool:
        return self.greeted and not self.inbound

    def write(self, payload: bytes) -> None:
        """Queue a frame; :meth:`PeerLinks.flush` writes what every link queued."""
        if not self.out:
            self.links.dirty.append(self)
        self.out.append(_LEN.pack(len(payload)))
        self.out.append(payload)

    def flush(self) -> None:
        out, self.out = self.out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.vetting:
            # Not a byte parsed before we know who this is (a transport may read once
            # before the pause in connection_made takes).
            if self.transport is not None:
                self.transport.pause_reading()
            return
        self._frames()

    def _frames(self) -> None:
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n > (MAX_FRAME if self.greeted else MAX_HELLO_FRAME):
                self._drop(f"frame of {n} bytes" + ("" if self.greeted else " before hello"))
                return
            if len(buf) - pos - 4 < n:
                break
            frame = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            if not self.greeted:
                if not self._greet(frame):
                    return
            elif self.exchange is not None:
                if not self._step(frame):
                    return
            elif self.sid is not None:
                self.links.received(self, frame)
        del buf[:pos]
        self.links.on_batch()

    def _greet(self, frame: bytes) -> bool:
        try:
            greeting = parse_hello(frame)
        except PeerAuthError as e:
            self._drop(str(e))
            return False
        if greeting is None:
            self._drop("no hello")
            return False
        sid, mechanism = greeting
        if sid not in self.links.servers or sid == self.links.my_sid:
            self._drop(f"server id {sid} is not in the configuration")
            return False
        if self.allowed is not None and sid not in self.allowed:
            others = ", ".join(str(s) for s in sorted(self.allowed))
            self._drop(
                f"it says it is server {sid}, but comes from the address of server {others}"
                " (quorumListenOnAllIPs=true turns this check off)"
            )
            return False
        if not self._certificate_names(self.links.servers[sid].host):
            self._drop(f"its certificate is not made out to server {sid}'s host")
            return False
        try:
            exchange = self.links.security.auth.acceptor(mechanism)
        except PeerAuthError as e:
            self._drop(f"server {sid}: {e}")
            return False
        self.sid, self.greeted, self.inbound = sid, True, True
        self._begin(exchange)
        return True

    def _certificate_names(self, host: str) -> bool:
        """With quorum TLS and hostname verification: is the peer's certificate for host?"""
        security = self.links.security
        if security.tls is None or not security.verify_hosts or self.transport is None:
            return True
        ssl_object: Any = self.transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        peer = self.transport.get_extra_info("peername") or ("", 0)
        return certificate_matches(der, host, peer[0])

    def _drop(self, why: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        peer = self.transport.get_extra_info("peername")
        direction = f"to server {self.sid}" if self.outbound else f"from {peer}"
        log.warning("dropping %s connection %s: %s", self.kind, direction, why)
        self._fail_ready(PeerAuthError(why))
        self.transport.abort()

    def _fail_ready(self, exc: Exception) -> None:
        """Tell ``_connect`` (outbound links only: nobody waits on an inbound one)."""
        if self.ready.done():
            return
        if self.outbound:
            self.ready.set_exception(exc)
        else:
            self.ready.cancel()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._fail_ready(ConnectionError("the connection closed"))
        self.links.lost(self)


@dataclass
class _Peer:
    election: Link | None = None
    quorum: Link | None = None
    queued: list[bytes] = field(default_factory=list)  # votes waiting for a link
    connecting: bool = False
    backoff_s: float = RETRY_MIN_S


class PeerLinks:
    def __init__(
        self,
        my_sid: int,
        servers: dict[int, ServerSpec],
        listen_all: bool,
        on_election: Callable[[int, bytes], None],
        on_quorum: Callable[[int, bytes], None],
        on_lost: Callable[[int], None],
        security: PeerSecurity | None = None,
        on_batch: Callable[[], None] = lambda: None,
    ) -> None:
        self.my_sid = my_sid
        self.security = security or PeerSecurity()
        self.servers = servers
        self.listen_all = listen_all
        self.on_election = on_election
        self.on_quorum = on_quorum
        self.on_lost = on_lost
        self.on_batch = on_batch  # after all frames of one read were handed over
        self.dirty: list[Link] = []  # links with queued frames
        self.peers = {sid: _Peer() for sid in servers if sid != my_sid}
        self._listeners: list[_Listener] = []
        self._closing = False
        # Listening on the configured address means dialing from it too: then a peer's
        # address tells who it is (see the module docstring).
        self.check_addresses = not listen_all
        self._addresses: dict[int, frozenset[str]] = {}
        self._resolved_at = float("-inf")
        self._resolving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        me = self.servers[self.my_sid]
        host = "0.0.0.0" if self.listen_all else me.host
        loop = asyncio.get_running_loop()
        tls = self.security.tls
        for kind, port in ((ELECTION, me.election_port), (QUORUM, me.quorum_port)):
            if tls is not None:
                secure = SecureListener(self._factory(kind), tls[0], self.security.timeout_s)
                await secure.start(host, port)
                self._listeners.append(secure)
                continue
            srv = await loop.create_server(self._factory(kind), host, port, reuse_address=True)
            self._listeners.append(srv)
        log.info(
            "listening for peers on %s:%d (quorum) and %s:%d (election)",
            host,
            me.quorum_port,
            host,
            me.election_port,
        )

    def _factory(self, kind: str) -> Callable[[], Link]:
        return lambda: Link(self, kind, None)

    async def servers_at(self, ip: str) -> frozenset[int]:
        """The configured servers (other than us) whose host resolves to ``ip``."""
        loop = asyncio.get_running_loop()
        if self._resolving is None and loop.time() - self._resolved_at > RESOLVE_TTL_S:
            self._resolving = loop.create_task(self._resolve_all())
        if self._resolving is not None:
            await asyncio.shield(self._resolving)
        return frozenset(
            sid for sid, ips in self._addresses.items() if ip in ips and sid != self.my_sid
        )

    async def _resolve_all(self) -> None:
        try:
            found = {sid: await _resolve(spec.host) for sid, spec in self.servers.items()}
            self._addresses, self._resolved_at = found, asyncio.get_running_loop().time()
        finally:
            self._resolving = None

    async def stop(self) -> None:
        self._closing = True
        for srv in self._listeners:
            srv.close()
        for p in self.peers.values():
            for link in (p.election, p.quorum):
                if link is not None:
                    link.close()
        for srv in self._listeners:
            await srv.wait_closed()

    # --- sending ----------------------------------------------------------------------

    def send_election(self, sid: int, payload: bytes) -> None:
        p = self.peers.get(sid)
        if p is None:
            return
        if p.election is not None:
            p.election.write(payload)
            return
        if len(p.queued) < MAX_QUEUED:
            p.queued.append(payload)
        self._dial(sid, ELECTION)

    def send_quorum(self, sid: int, payload: bytes, dial: bool = False) -> None:
        """Send on the quorum link; only a learner saying hello to its leader dials."""
        p = self.peers.get(sid)
        if p is None:
            return
        if p.quorum is not None:
            p.quorum.write(payload)
        elif dial:
            self._dial(sid, QUORUM, first=payload)

    def close_quorum(self, sid: int) -> None:
        p = self.peers.get(sid)
        if p is not None and p.quorum is not None:
            p.quorum.close()

    # --- connections ------------------------------------------------------------------

    def flush(self) -> None:
        """Write every link's queued frames, one write per link."""
        dirty, self.dirty = self.dirty, []
        for link in dirty:
            link.flush()

    def _dial(self, sid: int, kind: str, first: bytes | None = None) -> None:
        p = self.peers[sid]
        if p.connecting or self._closing:
            return
        p.connecting = True
        asyncio.get_running_loop().create_task(self._connect(sid, kind, first))

    async def _connect(self, sid: int, kind: str, first: bytes | None) -> None:
        spec, p = self.servers[sid], self.peers[sid]
        port = spec.election_port if kind == ELECTION else spec.quorum_port
        loop = asyncio.get_running_loop()
        tls = self.security.tls
        # From our own configured address, where the peer will look for us.
        local = (self.servers[self.my_sid].host, 0) if self.check_addresses else None
        try:
            _, link = await loop.create_connection(
                lambda: Link(self, kind, sid),
                spec.host,
                port,
                local_addr=local,
                ssl=tls[1] if tls is not None else None,
                server_hostname=spec.host if tls is not None else None,
                ssl_handshake_timeout=self.security.timeout_s if tls is not None else None,
            )
            await link.ready  # authenticated (at once when there is nothing to prove)
        except (OSError, PeerAuthError, TimeoutError) as e:
            # refused, unreachable, a name that does not resolve yet, or a peer that
            # failed to prove itself (logged where it was found out)
            level = logging.WARNING if isinstance(e, ssl.SSLError) else logging.DEBUG
            log.log(level, "cannot reach server %d at %s:%d: %s", sid, spec.host, port, e)
            p.connecting = False
            if kind == ELECTION and p.queued and not self._closing:
                delay, p.backoff_s = p.backoff_s, min(p.backoff_s * 2, RETRY_MAX_S)
                loop.call_later(delay, self._dial, sid, ELECTION)
            return
        p.connecting = False
        p.backoff_s = RETRY_MIN_S
        if kind == ELECTION:
            if self.my_sid > sid:
                self._install(link)
            # else: the higher id closes this one and dials back; queued votes wait.
        else:
            self._install(link)
            if first is not None:
                link.write(first)
            self.flush()

    def accepted(self, link: Link) -> None:
        """An inbound link said hello."""
        assert link.sid is not None
        if link.kind == ELECTION and link.sid < self.my_sid:
            link.close()  # the higher id keeps the connection: dial back
            self._dial(link.sid, ELECTION)
            return
        self._install(link)

    def _install(self, link: Link) -> None:
        assert link.sid is not None
        p = self.peers[link.sid]
        old = p.election if link.kind == ELECTION else p.quorum
        if link.kind == ELECTION:
            p.election = link
            queued, p.queued = p.queued, []
            for payload in queued:
                link.write(payload)
            self.flush()
        else:
            p.quorum = link
        if old is not None and old is not link:
            old.close()

    def received(self, link: Link, frame: bytes) -> None:
        assert link.sid is not None
        if link.kind == ELECTION:
            self.on_election(link.sid, frame)
        else:
            self.on_quorum(link.sid, frame)

    def lost(self, link: Link) -> None:
        if link.sid is None:
            return
        p = self.peers.get(link.sid)
        if p is None:
            return
        if link.kind == ELECTION and p.election is link:
            p.election = None
        elif link.kind == QUORUM and p.quorum is link:
            p.quorum = None
            if not self._closing:
                self.on_lost(link.sid)


def normal_ip(ip: str) -> str:
    """An address as the resolver writes it (IPv4-mapped IPv6 as IPv4, no zone)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


async def _resolve(host: str) -> frozenset[str]:
    """Every address ``host`` resolves to (none if it does not resolve now)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return frozenset()
    return frozenset(normal_ip(str(info[4][0])) for info in infos)
