"""TCP links between ensemble members: election (3888) and quorum (2888).

Theory of operation
-------------------
Every link carries length-prefixed frames. The side that connects first sends a hello,
``[version, "hello", sid]``; a connection from an id that is not in the configuration,
or whose first frame is not a hello, is closed with a log line.

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
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack

from pyzk.config import ServerSpec
from pyzk.zab.messages import WIRE_VERSION

log = logging.getLogger(__name__)

_LEN = struct.Struct(">I")
# A snapshot can be large; anything beyond this is not a frame of ours.
MAX_FRAME = 1 << 31
# Before its hello a connection is nobody's: a hello is a dozen bytes.
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
    return msgpack.packb([WIRE_VERSION, "hello", sid])  # type: ignore[no-any-return]


class Link(asyncio.Protocol):
    """One TCP connection to a peer, framed."""

    def __init__(self, links: PeerLinks, kind: str, outbound_sid: int | None) -> None:
        self.links = links
        self.kind = kind
        self.sid = outbound_sid  # known at once for outbound links; from hello inbound
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.greeted = outbound_sid is not None
        # Inbound, with the address check: the servers whose address this link has,
        # and whether we are still finding that out (nothing is parsed meanwhile).
        self.allowed: frozenset[int] | None = None
        self.vetting = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.sid is not None:
            self.write(hello(self.links.my_sid))
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

    def write(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_LEN.pack(len(payload)) + payload)

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
            elif self.sid is not None:
                self.links.received(self, frame)
        del buf[:pos]

    def _greet(self, frame: bytes) -> bool:
        try:
            version, word, sid = msgpack.unpackb(frame, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            self._drop("no hello")
            return False
        if version != WIRE_VERSION or word != "hello" or not isinstance(sid, int):
            self._drop("bad hello")
            return False
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
        self.sid, self.greeted = sid, True
        self.links.accepted(self)
        return True

    def _drop(self, why: str) -> None:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        log.warning("dropping %s connection from %s: %s", self.kind, peer, why)
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
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
    ) -> None:
        self.my_sid = my_sid
        self.servers = servers
        self.listen_all = listen_all
        self.on_election = on_election
        self.on_quorum = on_quorum
        self.on_lost = on_lost
        self.peers = {sid: _Peer() for sid in servers if sid != my_sid}
        self._listeners: list[asyncio.Server] = []
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
        for kind, port in ((ELECTION, me.election_port), (QUORUM, me.quorum_port)):
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
        # From our own configured address, where the peer will look for us.
        local = (self.servers[self.my_sid].host, 0) if self.check_addresses else None
        try:
            _, link = await loop.create_connection(
                lambda: Link(self, kind, sid), spec.host, port, local_addr=local
            )
        except OSError as e:  # refused, unreachable, or the name does not resolve yet
            log.debug("cannot reach server %d at %s:%d: %s", sid, spec.host, port, e)
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
