"""addWatch (persistent and recursive), removeWatches, checkWatches and setWatches2.

kazoo has no API for these, so they are driven by a raw client. Events are collected by
a round trip on the watching connection: a reply comes after every event queued before
it, so once the writer's change is acknowledged, one request flushes its events.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyzk.jute import records as r
from pyzk.jute.codes import AddWatchMode, Err, EventType, OpCode, WatcherType, Xid
from tests.rawclient import RawClient
from tests.servers import ServerProcess

OPEN = [r.ACL(31, r.Id("world", "anyone"))]
E = EventType


class Client(RawClient):
    """A raw client that sets aside the watch events that arrive before a reply."""

    def __init__(self, srv: ServerProcess) -> None:
        super().__init__(srv.host, srv.port)
        self.events: list[tuple[int, str]] = []
        self.xid = 0
        self.session = self.connect(timeout_ms=30000)

    def call(self, op: int, body: bytes = b"", xid: int | None = None) -> tuple[int, bytes]:
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.send_frame(r.RequestHeader(xid, op).encode() + body)
        while True:
            hdr, payload = self.reply()
            if hdr.xid == Xid.NOTIFICATION:
                ev = r.WatcherEvent.from_bytes(payload)
                self.events.append((ev.type, ev.path))
                continue
            assert hdr.xid == xid, (hdr, xid)
            return hdr.err, payload

    def take_events(self) -> list[tuple[int, str]]:
        self.call(OpCode.exists, r.PathWatchRequest("/", False).encode())  # flushes events
        out, self.events = self.events, []
        return out

    def add_watch(self, path: str, mode: int) -> int:
        err, body = self.call(OpCode.addWatch, r.AddWatchRequest(path, mode).encode())
        assert err or body == b"\0\0\0\0"  # ErrorResponse(0)
        return err

    def create(self, path: str, data: bytes = b"", flags: int = 0) -> int:
        return self.call(OpCode.create, r.CreateRequest(path, data, OPEN, flags).encode())[0]

    def set(self, path: str, data: bytes) -> int:
        return self.call(OpCode.setData, r.SetDataRequest(path, data, -1).encode())[0]

    def delete(self, path: str) -> int:
        return self.call(OpCode.delete, r.DeleteRequest(path, -1).encode())[0]

    def get(self, path: str, watch: bool = True) -> int:
        return self.call(OpCode.getData, r.PathWatchRequest(path, watch).encode())[0]

    def check(self, path: str, kind: int) -> int:
        return self.call(OpCode.checkWatches, r.WatchesRequest(path, kind).encode())[0]

    def remove(self, path: str, kind: int) -> int:
        return self.call(OpCode.removeWatches, r.WatchesRequest(path, kind).encode())[0]


@pytest.fixture
def pair(server: ServerProcess, root: str) -> Iterator[tuple[Client, Client, str]]:
    watcher, writer = Client(server), Client(server)
    assert writer.create(root) == 0
    yield watcher, writer, root
    for c in (watcher, writer):
        c.close()


def test_persistent_watch_fires_for_its_node_every_time(pair: tuple[Client, Client, str]) -> None:
    watcher, writer, root = pair
    p = f"{root}/p"
    assert watcher.add_watch(p, AddWatchMode.PERSISTENT) == 0
    writer.create(p)
    writer.set(p, b"1")
    writer.set(p, b"2")
    writer.create(f"{p}/c")
    writer.set(f"{p}/c", b"x")  # below the node: a plain persistent watch ignores it
    writer.delete(f"{p}/c")
    writer.delete(p)
    writer.create(p)
    assert watcher.take_events() == [
        (E.NodeCreated, p),
        (E.NodeDataChanged, p),
        (E.NodeDataChanged, p),
        (E.NodeChildrenChanged, p),
        (E.NodeChildrenChanged, p),
        (E.NodeDeleted, p),
        (E.NodeCreated, p),
    ]


def test_recursive_watch_sees_the_whole_subtree_but_no_child_lists(
    pair: tuple[Client, Client, str],
) -> None:
    watcher, writer, root = pair
    assert watcher.add_watch(root, AddWatchMode.PERSISTENT_RECURSIVE) == 0
    writer.create(f"{root}/a")
    writer.create(f"{root}/a/b", b"1")
    writer.set(f"{root}/a/b", b"2")
    writer.delete(f"{root}/a/b")
    writer.set(root, b"top")
    assert watcher.take_events() == [
        (E.NodeCreated, f"{root}/a"),
        (E.NodeCreated, f"{root}/a/b"),
        (E.NodeDataChanged, f"{root}/a/b"),
        (E.NodeDeleted, f"{root}/a/b"),
        (E.NodeDataChanged, root),
    ]


def test_a_connection_hears_of_a_change_once_however_many_watches_match(
    pair: tuple[Client, Client, str],
) -> None:
    watcher, writer, root = pair
    writer.create(f"{root}/x")
    watcher.add_watch(root, AddWatchMode.PERSISTENT_RECURSIVE)
    watcher.add_watch(f"{root}/x", AddWatchMode.PERSISTENT)
    assert watcher.get(f"{root}/x") == 0  # a one-shot data watch too
    writer.set(f"{root}/x", b"1")
    writer.delete(f"{root}/x")
    assert watcher.take_events() == [(E.NodeDataChanged, f"{root}/x"), (E.NodeDeleted, f"{root}/x")]


def test_a_standard_watch_replaces_a_persistent_one_on_the_same_path(
    pair: tuple[Client, Client, str],
) -> None:
    # ZooKeeper 3.8 keeps one mode per (connection, path) in each table (ZOOKEEPER-4466).
    watcher, writer, root = pair
    p = f"{root}/q"
    writer.create(p)
    watcher.add_watch(p, AddWatchMode.PERSISTENT)
    assert watcher.get(p) == 0
    writer.set(p, b"1")
    writer.set(p, b"2")  # the data table's watch is one-shot now
    writer.create(f"{p}/c")  # the child table's is still persistent
    writer.create(f"{p}/d")
    assert watcher.take_events() == [
        (E.NodeDataChanged, p),
        (E.NodeChildrenChanged, p),
        (E.NodeChildrenChanged, p),
    ]


def test_remove_watches_by_type(pair: tuple[Client, Client, str]) -> None:
    watcher, writer, root = pair
    p = f"{root}/r"
    writer.create(p)
    watcher.add_watch(p, AddWatchMode.PERSISTENT)
    assert watcher.remove(p, WatcherType.Data) == 0
    assert watcher.remove(p, WatcherType.Data) == Err.NOWATCHER
    writer.set(p, b"1")  # no data watch left
    writer.create(f"{p}/c")  # the child side still persists
    assert watcher.take_events() == [(E.NodeChildrenChanged, p)]
    assert watcher.remove(p, WatcherType.Any) == 0
    assert watcher.remove(p, WatcherType.Any) == Err.NOWATCHER
    writer.create(f"{p}/d")
    assert watcher.take_events() == []


def test_check_watches_and_its_errors(pair: tuple[Client, Client, str]) -> None:
    watcher, writer, root = pair
    p = f"{root}/c"
    writer.create(p)
    assert watcher.check(p, WatcherType.Data) == Err.NOWATCHER
    assert watcher.get(p) == 0
    assert watcher.check(p, WatcherType.Data) == 0
    assert watcher.check(p, WatcherType.Any) == 0
    assert watcher.check(p, WatcherType.Children) == Err.NOWATCHER
    # 3.8.0 answers for any connection's watch on the path, not only the asker's.
    assert writer.check(p, WatcherType.Data) == 0
    assert writer.remove(p, WatcherType.Data) == Err.NOWATCHER
    assert watcher.check(p, 9) == Err.MARSHALLINGERROR
    assert watcher.remove(p, 0) == Err.MARSHALLINGERROR
    assert watcher.add_watch(p, 2) == Err.MARSHALLINGERROR
    # 3.8.0 works out the parent of each path it walks: a path without a "/" has none,
    # and the request fails; the walk goes past the path itself only once a recursive
    # watch exists, and then a relative path fails too.
    for kind in (WatcherType.Data, WatcherType.Children, WatcherType.Any):
        for bad in ("c", "..", " "):
            assert watcher.check(bad, kind) == Err.MARSHALLINGERROR
        for relative in ("a/b", "c/", ""):
            assert watcher.check(relative, kind) == Err.NOWATCHER
    watcher.add_watch(root, AddWatchMode.PERSISTENT_RECURSIVE)
    assert watcher.check(f"{root}/deep/below", WatcherType.Data) == Err.NOWATCHER
    for kind in (WatcherType.Data, WatcherType.Children, WatcherType.Any):
        assert watcher.check("a/b", kind) == Err.MARSHALLINGERROR
        assert watcher.check("", kind) == Err.NOWATCHER


def test_set_watches2_restores_persistent_watches_on_reconnect(
    server: ServerProcess, root: str
) -> None:
    first, writer = Client(server), Client(server)
    try:
        writer.create(root)
        sid, passwd = first.session.sessionId, first.session.passwd
        first.close()
        again = RawClient(server.host, server.port)
        resp = again.connect(timeout_ms=30000, session_id=sid, passwd=passwd or b"")
        assert resp.sessionId == sid
        sw = r.SetWatches2(0, [], [], [], [f"{root}/p"], [root])
        hdr, body = again.request(Xid.SET_WATCHES, OpCode.setWatches2, sw.encode())
        assert (hdr.xid, hdr.err, body) == (Xid.SET_WATCHES, 0, b"")
        writer.create(f"{root}/p")
        writer.create(f"{root}/p/q")
        hdr, body = again.reply()
        assert hdr.xid == Xid.NOTIFICATION
        assert r.WatcherEvent.from_bytes(body).path == f"{root}/p"
        events = set()
        for _ in range(2):  # the persistent and the recursive watch, one event each
            hdr, body = again.reply()
            ev = r.WatcherEvent.from_bytes(body)
            events.add((ev.type, ev.path))
        assert events == {(E.NodeChildrenChanged, f"{root}/p"), (E.NodeCreated, f"{root}/p/q")}
        again.close()
    finally:
        writer.close()
