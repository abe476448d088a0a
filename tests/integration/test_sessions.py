"""Sessions: negotiation, reconnect with id and password, expiry, close, setWatches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from pyzk.jute.codes import EventType, OpCode, Xid
from pyzk.jute.records import (
    ACL,
    CreateRequest,
    Id,
    PathRequest,
    PathWatchRequest,
    SetWatches,
    WatcherEvent,
)
from tests.conftest import TARGETS
from tests.rawclient import RawClient
from tests.servers import ServerProcess, make_server

OPEN = [ACL(31, Id("world", "anyone"))]
TICK_MS = 100  # a fast tick so expiry takes a fraction of a second


@pytest.fixture(scope="module", params=TARGETS)
def fast(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server with tickTime=100: sessions may time out after 200 ms."""
    srv = make_server(
        request.param,
        Path(tmp_path_factory.mktemp(request.param)),
        extra={"tickTime": str(TICK_MS)},
    )
    srv.start()
    yield srv
    srv.stop()


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_timeout_is_clamped_to_min_and_max(server: ServerProcess) -> None:
    for asked, got in ((1, 4000), (10000, 10000), (10**6, 40000)):
        c = RawClient(server.host, server.port)
        assert c.connect(timeout_ms=asked).timeOut == got
        c.close()


def test_connect_response_has_readonly_byte_only_if_sent(server: ServerProcess) -> None:
    old = RawClient(server.host, server.port)
    old.connect(readonly=None)
    assert len(old.last_connect_raw) == 36
    new = RawClient(server.host, server.port)
    new.connect(readonly=False)
    assert len(new.last_connect_raw) == 37 and new.last_connect_raw[-1] == 0
    old.close()
    new.close()


def test_reconnect_with_id_and_password_keeps_the_session(server: ServerProcess) -> None:
    a = RawClient(server.host, server.port)
    resp = a.connect()
    assert resp.passwd is not None
    b = RawClient(server.host, server.port)
    again = b.connect(session_id=resp.sessionId, passwd=resp.passwd)
    assert (again.sessionId, again.passwd) == (resp.sessionId, resp.passwd)
    # A session has one connection: the old one is closed.
    with pytest.raises((ConnectionError, OSError)):
        a.request(1, OpCode.ping)
    hdr, _ = b.request(Xid.PING, OpCode.ping)
    assert hdr.err == 0
    b.close()


def test_wrong_password_looks_like_expiry(server: ServerProcess) -> None:
    a = RawClient(server.host, server.port)
    resp = a.connect()
    b = RawClient(server.host, server.port)
    bad = b.connect(session_id=resp.sessionId, passwd=b"x" * 16)
    assert (bad.timeOut, bad.sessionId, bad.passwd) == (0, 0, b"\0" * 16)
    with pytest.raises((ConnectionError, OSError)):
        b.recv_frame()
    a.close()


def test_unknown_session_looks_like_expiry(server: ServerProcess) -> None:
    c = RawClient(server.host, server.port)
    resp = c.connect(session_id=0x0123456789, passwd=b"\0" * 16)
    assert (resp.timeOut, resp.sessionId) == (0, 0)


def test_client_ahead_of_server_is_refused(server: ServerProcess) -> None:
    c = RawClient(server.host, server.port)
    with pytest.raises((ConnectionError, OSError)):
        c.connect(last_zxid=1 << 60)


def test_close_session_removes_ephemerals(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    other = zk_factory()
    other.create(f"{root}/eph", ephemeral=True)
    other.stop()
    assert zk.exists(f"{root}/eph") is None


def test_expired_session_loses_its_ephemerals(fast: ServerProcess) -> None:
    raw = RawClient(fast.host, fast.port)
    resp = raw.connect(timeout_ms=200)
    assert resp.timeOut == 2 * TICK_MS
    assert resp.passwd is not None
    path = f"/exp-{time.monotonic_ns()}"
    hdr, _ = raw.request(1, OpCode.create, CreateRequest(path, b"", OPEN, 1).encode())
    assert hdr.err == 0
    raw.sock.close()  # vanish without closing the session
    watcher = KazooClient(hosts=fast.hosts)
    watcher.start(timeout=15)
    try:
        assert watcher.exists(path) is not None
        assert wait_until(lambda: watcher.exists(path) is None)
        # The expired session cannot come back.
        again = RawClient(fast.host, fast.port)
        resp2 = again.connect(session_id=resp.sessionId, passwd=resp.passwd)
        assert resp2.sessionId == 0 and resp2.timeOut == 0
    finally:
        watcher.stop()
        watcher.close()


def test_pings_keep_a_session_alive(fast: ServerProcess) -> None:
    raw = RawClient(fast.host, fast.port)
    resp = raw.connect(timeout_ms=400)
    path = f"/alive-{time.monotonic_ns()}"
    raw.request(1, OpCode.create, CreateRequest(path, b"", OPEN, 1).encode())
    for _ in range(10):  # 1 s in all, well past the timeout
        time.sleep(0.1)
        hdr, _ = raw.request(Xid.PING, OpCode.ping)
        assert hdr.xid == Xid.PING and hdr.err == 0
    hdr, _body = raw.request(2, OpCode.exists, PathWatchRequest(path, False).encode())
    assert hdr.err == 0
    assert resp.sessionId != 0
    raw.close()


def test_set_watches_fires_for_changes_missed_while_away(
    server: ServerProcess, zk: KazooClient, root: str
) -> None:
    zk.create(f"{root}/changed", b"1")
    zk.create(f"{root}/deleted")
    zk.create(f"{root}/kids")
    zk.create(f"{root}/same", b"s")
    seen = zk.exists(f"{root}/same").mzxid  # the client's last seen zxid
    seen = max(seen, zk.exists(f"{root}/kids").pzxid)
    zk.set(f"{root}/changed", b"2")
    zk.delete(f"{root}/deleted")
    zk.create(f"{root}/kids/k")
    zk.create(f"{root}/born")
    raw = RawClient(server.host, server.port)
    raw.connect()
    sw = SetWatches(
        seen,
        [f"{root}/changed", f"{root}/deleted", f"{root}/same"],
        [f"{root}/born", f"{root}/unborn"],
        [f"{root}/kids"],
    )
    raw.send_frame(b"\xff\xff\xff\xf8" + OpCode.setWatches.to_bytes(4, "big") + sw.encode())
    events = []
    while True:
        hdr, body = raw.reply()
        if hdr.xid != Xid.NOTIFICATION:
            break
        ev = WatcherEvent.from_bytes(body)
        events.append((ev.type, ev.path))
    assert hdr.xid == Xid.SET_WATCHES and hdr.err == 0
    assert sorted(events) == sorted(
        [
            (EventType.NodeDataChanged, f"{root}/changed"),
            (EventType.NodeDeleted, f"{root}/deleted"),
            (EventType.NodeCreated, f"{root}/born"),
            (EventType.NodeChildrenChanged, f"{root}/kids"),
        ]
    )
    # The watches that did not fire are registered: they fire on the next change.
    zk.set(f"{root}/same", b"t")
    hdr, body = raw.reply()
    assert hdr.xid == Xid.NOTIFICATION
    assert WatcherEvent.from_bytes(body).path == f"{root}/same"
    zk.create(f"{root}/unborn")
    hdr, body = raw.reply()
    ev = WatcherEvent.from_bytes(body)
    assert (ev.type, ev.path) == (EventType.NodeCreated, f"{root}/unborn")
    raw.request(9, OpCode.sync, PathRequest(root).encode())
    raw.close()


def test_kazoo_resumes_a_session_by_id(server: ServerProcess, zk: KazooClient, root: str) -> None:
    raw = RawClient(server.host, server.port)
    resp = raw.connect(timeout_ms=30000)
    raw.request(1, OpCode.create, CreateRequest(f"{root}/mine", b"", OPEN, 1).encode())
    raw.sock.close()  # the session lives on without a connection
    resumed = KazooClient(hosts=server.hosts, client_id=(resp.sessionId, resp.passwd))
    resumed.start(timeout=15)
    try:
        assert resumed.client_id[0] == resp.sessionId
        assert zk.exists(f"{root}/mine").ephemeralOwner == resp.sessionId
    finally:
        resumed.stop()
        resumed.close()
    assert zk.exists(f"{root}/mine") is None
