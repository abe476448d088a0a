"""Overload: more than a server can take at once, from clients that behave badly or not.

Each test runs against pyzk and Apache ZooKeeper alike, with a well-behaved kazoo client
(the bystander) working next to the abuse: it must see no error. The server must push
back (stop reading a connection) rather than grow its memory.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from pyzk.jute import records as r
from pyzk.jute.codes import OpCode
from tests.conftest import TARGETS, configured_server
from tests.rawclient import RawClient
from tests.reliability.conftest import LONG, Figures
from tests.reliability.probes import (
    bystander,
    connection_stats,
    peak_rss_bytes,
    raise_fd_limit,
    reset_peak_rss,
    rss_bytes,
)
from tests.servers import ServerProcess

MB = 1_000_000
# How much more memory the server may take while one client asks for gigabytes of
# replies it never reads: its write buffer's high-water mark and a batch of replies,
# with room to spare, and far below what it asked for.
MAX_GROWTH_BYTES = 256 * 1024 * 1024
# What the non-reading client pushes at most: beyond what the kernel buffers for a
# connection on loopback (tcp_rmem max 32 MB + tcp_wmem max 4 MB), so a server that
# kept reading would take it all.
NO_READ_CAP_BYTES = (200 if LONG else 64) * 1024 * 1024
STALLED_S = 2.0  # no byte accepted for this long: the server has stopped reading
# Memory an idle connection with a session may take on the server (buffers, protocol
# and session state); pyzk needs a few kilobytes.
MAX_BYTES_PER_CONNECTION = 64 * 1024


CONNECTIONS = 10_000
BURST = 100_000
BIG_NODES = 16 if not LONG else 64
# File descriptors: the connections, on both ends when the server is a child, and spare.
FDS_NEEDED = CONNECTIONS + 1000


@pytest.fixture(scope="module", params=TARGETS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    raise_fd_limit(FDS_NEEDED)  # before the server starts: it inherits the limit
    yield from configured_server(request, tmp_path_factory, {"maxClientCnxns": "0"})


def _client(srv: ServerProcess) -> KazooClient:
    zk = KazooClient(hosts=srv.hosts, timeout=10.0)
    zk.start(timeout=15)
    return zk


def _get_data(xid: int, path: str) -> bytes:
    body = r.RequestHeader(xid, OpCode.getData).encode() + r.PathWatchRequest(path, False).encode()
    return struct.pack(">i", len(body)) + body


def _push_until_stalled(sock: socket.socket, chunk: bytes, cap: int) -> int:
    """Send ``chunk`` over and over until ``cap`` bytes went or the peer stopped taking
    them for STALLED_S; returns the bytes sent."""
    sock.setblocking(False)
    sent, view, last = 0, memoryview(chunk), time.monotonic()
    pos = 0
    while sent < cap and time.monotonic() - last < STALLED_S:
        _, writable, _ = select.select([], [sock], [], 0.1)
        if not writable:
            continue
        try:
            n = sock.send(view[pos:])
        except BlockingIOError:
            continue
        sent, pos, last = sent + n, (pos + n) % len(chunk), time.monotonic()
    return sent


def _set_data(xid: int, path: str) -> bytes:
    body = r.RequestHeader(xid, OpCode.setData).encode() + r.SetDataRequest(path, b"w", -1).encode()
    return struct.pack(">i", len(body)) + body


# Apache ZooKeeper keeps reading such a client (1.6 million requests taken in a trial,
# its heap, -Xmx, is what bounds it): this is pyzk's own guarantee.
@pytest.mark.parametrize("server", ["pyzk"], indirect=True)
@pytest.mark.parametrize("pattern", ["reads", "reads-behind-a-write"])
def test_a_client_that_never_reads_its_replies_is_paused_not_buffered(
    server: ServerProcess, figures: Figures, pattern: str
) -> None:
    setup = _client(server)
    try:
        setup.ensure_path("/overload")
        if not setup.exists("/overload/big"):
            setup.create("/overload/big", b"x" * MB)
        setup.ensure_path("/overload/hog")
    finally:
        setup.stop()
    # 1 MB replies asked for by the thousand; behind a write, a commit answers them all.
    # (The chunk is sent over and over: the hog writes a node of its own, not the
    # bystander's, which would see the hog's value between its own write and read.)
    chunk = _get_data(1, "/overload/big") * 1000
    if pattern == "reads-behind-a-write":
        chunk = _set_data(2, "/overload/hog") + chunk
    with bystander(server, "/overload/bystander-noread") as b:
        before = reset_peak_rss(server)
        hog = RawClient(server.host, server.port)
        hog.connect()
        hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent = _push_until_stalled(hog.sock, chunk, NO_READ_CAP_BYTES)
        stats = connection_stats(server, hog.sock.getsockname()[1])
        b.wait_ops(20)  # served while the hog sits there
        growth = peak_rss_bytes(server) - before
        hog.close()
        b.wait_ops(20)
    requests = sent * 1000 // len(chunk)
    figures.add("overload", requests=requests)
    figures.note(
        "overload",
        f"{server.kind}, a client never reading ({pattern}): memory +{growth // 2**20} MiB",
    )
    assert stats is not None
    _, received = stats
    assert received < requests, "the server kept reading a client that never reads"
    assert growth < MAX_GROWTH_BYTES, (
        f"memory grew by {growth // 2**20} MiB while a client asked for "
        f"{received} MB of replies it never read"
    )


# --- many connections -------------------------------------------------------------


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (n,) = struct.unpack(">i", await reader.readexactly(4))
    return await reader.readexactly(n)


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


async def _many_sessions(srv: ServerProcess, n: int, measure: list[int]) -> None:
    """Open ``n`` connections, each with a session; ping each once all are open; close
    each session. ``measure`` gets the server's RSS with all of them open."""
    handshake = _frame(r.ConnectRequest(0, 0, 30000, 0, b"\0" * 16).encode())
    gate = asyncio.Semaphore(200)  # connects in flight (the listen backlog is finite)
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def one() -> None:
        async with gate:
            reader, writer = await asyncio.open_connection(srv.host, srv.port)
            writer.write(handshake)
            resp = r.ConnectResponse.from_bytes(await _read_frame(reader))
            assert resp.sessionId != 0
            conns.append((reader, writer))

    async def ping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_frame(r.RequestHeader(-2, OpCode.ping).encode()))
        hdr, _ = r.ReplyHeader.decode(await _read_frame(reader))
        assert (hdr.xid, hdr.err) == (-2, 0)

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with gate:
            writer.write(_frame(r.RequestHeader(1, OpCode.closeSession).encode()))
            hdr, _ = r.ReplyHeader.decode(await _read_frame(reader))
            assert (hdr.xid, hdr.err) == (1, 0)
            writer.close()

    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), 300)
        measure.append(rss_bytes(srv))
        await asyncio.wait_for(asyncio.gather(*(ping(*c) for c in conns)), 300)
        await asyncio.wait_for(asyncio.gather(*(close(*c) for c in conns)), 300)
    finally:
        for _, writer in conns:
            writer.close()


def test_ten_thousand_connections_each_with_a_session(
    server: ServerProcess, figures: Figures
) -> None:
    assert raise_fd_limit(FDS_NEEDED) >= FDS_NEEDED, "cannot raise the open files limit"
    setup = _client(server)
    setup.ensure_path("/overload")
    setup.stop()
    with bystander(server, "/overload/bystander-conns") as b:
        before = rss_bytes(server)
        measure: list[int] = []
        asyncio.run(_many_sessions(server, CONNECTIONS, measure))
        b.wait_ops(20)
    figures.add("overload", requests=3 * CONNECTIONS)
    per_conn = (measure[0] - before) // CONNECTIONS
    figures.note("overload", f"{server.kind}: {CONNECTIONS} sessions, {per_conn} bytes each")
    assert per_conn < MAX_BYTES_PER_CONNECTION, f"{per_conn} bytes per connection"


# --- a burst of pipelined requests --------------------------------------------------


def test_a_burst_of_pipelined_requests_is_answered_in_order_and_nothing_acked_is_lost(
    server: ServerProcess, figures: Figures
) -> None:
    root = f"/burst-{time.monotonic_ns()}"
    setup = _client(server)
    try:
        setup.create(root, b"")
        setup.create(f"{root}/r", b"small")
    finally:
        setup.stop()
    # One in five a create (kept: they must survive a kill -9), the rest reads.
    frames, creates = [], []
    for i in range(BURST):
        xid = i + 1
        if i % 5 == 0:
            path = f"{root}/w{i}"
            creates.append(path)
            body = r.RequestHeader(xid, OpCode.create).encode()
            body += r.CreateRequest(path, b"v", [r.ACL(31, r.Id("world", "anyone"))], 0).encode()
        else:
            op = OpCode.getData if i % 2 else OpCode.exists
            body = r.RequestHeader(xid, op).encode()
            body += r.PathWatchRequest(f"{root}/r", False).encode()
        frames.append(_frame(body))
    with bystander(server, "/overload/bystander-burst") as b:
        c = RawClient(server.host, server.port, timeout=60)
        c.connect()
        sender = threading.Thread(target=c.sock.sendall, args=(b"".join(frames),))
        sender.start()
        bad = []
        for i in range(BURST):
            hdr, _ = c.reply()
            if hdr.xid != i + 1 or hdr.err != 0:
                bad.append((i + 1, hdr.xid, hdr.err))
        sender.join()
        c.close()
        b.wait_ops(10)
    figures.add("overload", requests=BURST)
    assert not bad, f"{len(bad)} replies out of order or failed, first {bad[:5]}"
    # Every create was acknowledged: all of them survive kill -9 and a restart.
    server.kill()
    server.start()
    check = _client(server)
    try:
        children = set(check.get_children(root))
    finally:
        check.stop()
    missing = [p for p in creates if p.rsplit("/", 1)[1] not in children]
    assert not missing, f"{len(missing)} acknowledged creates lost, first {missing[:5]}"


# --- 1 MB znodes ---------------------------------------------------------------------


def test_one_megabyte_znodes_written_and_read_by_many_clients(
    server: ServerProcess, figures: Figures
) -> None:
    root = f"/big-{time.monotonic_ns()}"
    blobs = {f"{root}/n{i}": bytes([i % 251]) * MB for i in range(BIG_NODES)}
    writer = _client(server)
    readers = [_client(server) for _ in range(4)]
    try:
        with bystander(server, "/overload/bystander-big") as b:
            writer.create(root, b"")
            for path, blob in blobs.items():
                writer.create(path, blob)
            for rnd in range(3):
                pending = [(p, c.get_async(p)) for c in readers for p in blobs]
                for path, res in pending:
                    assert res.get(timeout=60)[0] == blobs[path]
                for path in blobs:  # rewrite each with new content
                    blobs[path] = bytes([(rnd + 7) % 251]) + blobs[path][1:]
                    writer.set(path, blobs[path])
            b.wait_ops(10)
        figures.add("overload", requests=len(blobs) * (1 + 3 * (len(readers) + 1)))
    finally:
        for c in (writer, *readers):
            c.stop()
