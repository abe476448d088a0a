"""Data, exist and child watches: one-shot, in order, before the reply that shows them."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.protocol.states import EventType, WatchedEvent

from pyzk.jute.codes import OpCode, Xid
from pyzk.jute.records import (
    PathRequest,
    PathWatchRequest,
    RequestHeader,
    SetDataRequest,
    WatcherEvent,
)
from tests.rawclient import RawClient
from tests.servers import ServerProcess

WAIT_S = 10.0


class Recorder:
    """Collects watch events; ``wait(n)`` blocks until n have arrived (bounded)."""

    def __init__(self) -> None:
        self.events: list[WatchedEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: WatchedEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, n: int = 1) -> list[WatchedEvent]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.events) >= n, WAIT_S), self.events
            return list(self.events)

    def kinds(self) -> list[tuple[str, str]]:
        return [(e.type, e.path) for e in self.events]


def test_data_watch_fires_once_on_change(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    rec = Recorder()
    zk.create(f"{root}/d", b"1")
    zk.get(f"{root}/d", watch=rec)
    writer = zk_factory()
    writer.set(f"{root}/d", b"2")
    writer.set(f"{root}/d", b"3")
    assert rec.wait(1)[0].type == EventType.CHANGED
    zk.sync(root)  # any second event would have arrived before this reply
    assert rec.kinds() == [(EventType.CHANGED, f"{root}/d")]


def test_exists_watch_on_missing_node_fires_on_create(zk: KazooClient, root: str) -> None:
    rec = Recorder()
    assert zk.exists(f"{root}/later", watch=rec) is None
    zk.create(f"{root}/later")
    assert rec.wait(1)[0].type == EventType.CREATED


def test_get_data_on_missing_node_sets_no_watch(zk: KazooClient, root: str) -> None:
    rec = Recorder()
    with pytest.raises(NoNodeError):
        zk.get(f"{root}/none", watch=rec)
    zk.create(f"{root}/none")
    zk.sync(root)
    assert rec.events == []


def test_child_watch_fires_on_create_and_delete(zk: KazooClient, root: str) -> None:
    rec = Recorder()
    zk.get_children(root, watch=rec)
    zk.create(f"{root}/c1")
    assert rec.wait(1)[0].type == EventType.CHILD
    rec2 = Recorder()
    zk.get_children(root, watch=rec2)
    zk.delete(f"{root}/c1")
    assert rec2.wait(1)[0].type == EventType.CHILD


def test_delete_sends_one_event_for_data_and_child_watch(
    server: ServerProcess, zk: KazooClient, root: str
) -> None:
    # kazoo hands one event to both its data and child watchers, so look at the wire.
    zk.create(f"{root}/n")
    raw = RawClient(server.host, server.port)
    raw.connect()
    raw.request(1, OpCode.getData, PathWatchRequest(f"{root}/n", True).encode())
    raw.request(2, OpCode.getChildren, PathWatchRequest(f"{root}/n", True).encode())
    zk.delete(f"{root}/n")
    hdr, body = raw.reply()
    assert hdr.xid == Xid.NOTIFICATION and hdr.zxid == -1
    event = WatcherEvent.from_bytes(body)
    assert (event.type, event.state, event.path) == (2, 3, f"{root}/n")
    hdr, _ = raw.request(3, OpCode.sync, PathRequest(root).encode())
    assert hdr.xid == 3  # no second notification came before the sync reply
    raw.close()


def test_watch_event_arrives_before_the_reply_showing_the_change(
    server: ServerProcess, zk: KazooClient, root: str
) -> None:
    zk.create(f"{root}/o", b"a")
    raw = RawClient(server.host, server.port)
    raw.connect()
    raw.request(1, OpCode.getData, PathWatchRequest(f"{root}/o", True).encode())
    raw.send_frame(
        RequestHeader(2, OpCode.setData).encode() + SetDataRequest(f"{root}/o", b"b", -1).encode()
    )
    first, _ = raw.reply()
    second, _ = raw.reply()
    assert (first.xid, second.xid) == (Xid.NOTIFICATION, 2)
    raw.close()


def test_watches_of_many_sessions_all_fire(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    zk.create(f"{root}/fan")
    recs = []
    for _ in range(5):
        c = zk_factory()
        r = Recorder()
        c.get(f"{root}/fan", watch=r)
        recs.append(r)
    zk.set(f"{root}/fan", b"go")
    for r in recs:
        assert r.wait(1)[0].type == EventType.CHANGED
