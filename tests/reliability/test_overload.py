"""Overload: more than a server can take at once, from clients that behave badly or not.

Each test runs against pyzk and Apache ZooKeeper alike, with a well-behaved kazoo client
(the bystander) working next to the abuse: it must see no error. The server must push
back (stop reading a connection) rather than grow its memory.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from pyzk.jute import records as r
from pyzk.jute.codes import OpCode
from tests.conftest import TARGETS, configured_server
from tests.rawclient import RawClient
from tests.reliability.conftest import LONG, Figures
from tests.reliability.probes import bystander, connection_stats, peak_rss_bytes
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


@pytest.fixture(scope="module", params=TARGETS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
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
    finally:
        setup.stop()
    # 1 MB replies asked for by the thousand; behind a write, a commit answers them all.
    chunk = _get_data(1, "/overload/big") * 1000
    if pattern == "reads-behind-a-write":
        chunk = _set_data(2, "/overload/bystander-noread") + chunk
    with bystander(server, "/overload/bystander-noread") as b:
        before = peak_rss_bytes(server)
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
    assert stats is not None
    _, received = stats
    assert received < requests, "the server kept reading a client that never reads"
    assert growth < MAX_GROWTH_BYTES, (
        f"memory grew by {growth // 2**20} MiB while a client asked for "
        f"{received} MB of replies it never read"
    )
