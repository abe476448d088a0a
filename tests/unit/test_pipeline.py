"""The request pipeline without sockets: prepare, log, apply, reply, session order."""

from __future__ import annotations

import struct

from pyzk.jute import records as r
from pyzk.jute.codec import Record
from pyzk.jute.codes import Err, EventType, OpCode, Xid
from pyzk.pipeline.connection import CONNECT, ClientConnection
from pyzk.pipeline.processor import Processor, Settings
from pyzk.tree.datatree import DataTree
from pyzk.tree.txn import (
    CreateTxn,
    DeleteTxn,
    MultiTxn,
    SetACLTxn,
    Txn,
    decode_txn,
    encode_txn,
)

OPEN = [r.ACL(31, r.Id("world", "anyone"))]


class Harness:
    """A processor, clients that speak frames, and a log stage the test controls."""

    def __init__(self) -> None:
        self.tree = DataTree()
        self.proc = Processor(self.tree, Settings(tick_ms=100), start_wall_ms=1_000_000)
        self.logged: list[Txn] = []

    def client(self, timeout_ms: int = 1000) -> ClientConnection:
        conn = ClientConnection()
        frame = r.ConnectRequest(0, 0, timeout_ms, 0, b"\0" * 16).encode()
        (event,) = conn.receive_data(struct.pack(">i", len(frame)) + frame)
        assert event[0] == CONNECT
        self.proc.connect(conn, event[1])
        self.flush_log()
        r.ConnectResponse.from_bytes(self.take(conn)[0][4:])
        return conn

    def send(self, conn: ClientConnection, xid: int, op: int, rec: Record | bytes) -> None:
        body = rec if isinstance(rec, bytes) else rec.encode()
        frame = struct.pack(">ii", xid, op) + body
        for ev in conn.receive_data(struct.pack(">i", len(frame)) + frame):
            self.proc.request(conn, ev[1], ev[2], ev[3])

    def flush_log(self) -> None:
        txns = self.proc.take_to_log()
        self.logged += txns
        self.proc.commit(txns)

    def take(self, conn: ClientConnection) -> list[bytes]:
        out, conn.outbox[:] = list(conn.outbox), []
        return out

    def replies(self, conn: ClientConnection) -> list[tuple[int, int, bytes]]:
        """(xid, err, body) of each queued frame."""
        out = []
        for f in self.take(conn):
            _, xid, _, err = struct.unpack_from(">iiqi", f)
            out.append((xid, err, f[20:]))
        return out


def create(path: str, data: bytes = b"", flags: int = 0) -> r.CreateRequest:
    return r.CreateRequest(path, data, OPEN, flags)


def test_pipelined_writes_see_each_other_before_apply() -> None:
    h = Harness()
    c = h.client()
    h.send(c, 1, OpCode.create, create("/a"))
    h.send(c, 2, OpCode.create, create("/a/b"))
    h.send(c, 3, OpCode.create, create("/a/s", flags=2))
    h.send(c, 4, OpCode.delete, r.DeleteRequest("/a", -1))
    assert c.outbox == []  # nothing answered before the log stage ran
    h.flush_log()
    got = [(xid, err) for xid, err, _ in h.replies(c)]
    assert got == [(1, 0), (2, 0), (3, 0), (4, Err.NOTEMPTY)]
    assert sorted(h.tree.child_names("/a")) == ["b", "s0000000001"]


def test_a_read_waits_for_its_sessions_write() -> None:
    h = Harness()
    c, other = h.client(), h.client()
    h.send(c, 1, OpCode.create, create("/x", b"1"))
    h.send(c, 2, OpCode.getData, r.PathWatchRequest("/x", False))
    h.send(other, 7, OpCode.exists, r.PathWatchRequest("/x", False))
    assert [(x, e) for x, e, _ in h.replies(other)] == [(7, Err.NONODE)]  # not held
    assert c.outbox == []
    h.flush_log()
    (w, rd) = h.replies(c)
    assert (w[0], w[1], rd[0], rd[1]) == (1, 0, 2, 0)
    assert rd[2][:5] == b"\x00\x00\x00\x011"  # the read saw the write


def test_failed_multi_leaves_no_pending_changes() -> None:
    h = Harness()
    c = h.client()
    ops = (
        r.MultiHeader(OpCode.create, False, -1).encode()
        + create("/m").encode()
        + r.MultiHeader(OpCode.delete, False, -1).encode()
        + r.DeleteRequest("/no", -1).encode()
        + r.MultiHeader(-1, True, -1).encode()
    )
    h.send(c, 1, OpCode.multi, ops)
    h.send(c, 2, OpCode.create, create("/m"))  # must not see the rolled-back create
    h.flush_log()
    replies = h.replies(c)
    assert [(x, e) for x, e, _ in replies] == [(1, 0), (2, 0)]
    assert "/m" in h.tree.nodes


def test_session_expiry_deletes_ephemerals_and_fires_watches() -> None:
    h = Harness()
    owner, watcher = h.client(timeout_ms=200), h.client(timeout_ms=10_000)
    h.send(owner, 1, OpCode.create, create("/e", flags=1))
    h.flush_log()
    h.send(watcher, 1, OpCode.exists, r.PathWatchRequest("/e", True))
    h.take(watcher)
    h.proc.now_ms = 10_000  # far past the owner's deadline; the watcher's too
    h.proc.sessions.touch(watcher.session_id, h.proc.now_ms)
    h.proc.tick()
    h.flush_log()
    assert "/e" not in h.tree.nodes
    assert owner.closing
    (event,) = h.take(watcher)
    _, xid, zxid, _, etype, _state = struct.unpack_from(">iiqiii", event)
    assert (xid, zxid, etype) == (Xid.NOTIFICATION, -1, EventType.NodeDeleted)
    assert owner.session_id not in h.tree.sessions


def test_close_session_takes_ephemerals_created_in_the_same_batch() -> None:
    h = Harness()
    c = h.client()
    h.send(c, 1, OpCode.create, create("/p"))
    h.flush_log()
    h.take(c)
    h.send(c, 2, OpCode.create, create("/p/e", flags=1))
    h.send(c, 3, OpCode.closeSession, b"")
    h.flush_log()
    assert [(x, e) for x, e, _ in h.replies(c)] == [(2, 0), (3, 0)]
    assert "/p/e" not in h.tree.nodes
    assert c.closing


def test_replaying_the_log_rebuilds_the_same_tree() -> None:
    h = Harness()
    a, b = h.client(), h.client()
    h.send(a, 1, OpCode.create, create("/r", b"x"))
    h.send(a, 2, OpCode.create, create("/r/s", flags=2))
    h.send(b, 1, OpCode.create, create("/r/e", flags=3))
    h.send(b, 2, OpCode.setData, r.SetDataRequest("/r", b"yy", -1))
    h.send(a, 3, OpCode.delete, r.DeleteRequest("/r/s0000000000", -1))
    h.flush_log()
    replayed = DataTree()
    for txn in h.logged:
        replayed.apply(decode_txn(encode_txn(txn)))
    assert replayed.last_zxid == h.tree.last_zxid
    assert replayed.nodes == h.tree.nodes and replayed.acls == h.tree.acls
    assert replayed.ephemerals == h.tree.ephemerals
    assert replayed.sessions == h.tree.sessions


def test_txn_bytes_in_the_log_stay_the_same() -> None:
    # Logs outlive builds: a txn written by an earlier build (here 116fb4c) must still
    # decode, so the encoding may not drift even where msgpack would accept both forms.
    acl = ((31, "world", "anyone"), (1, "digest", "u:h"))
    body = MultiTxn(
        (CreateTxn("/a", b"x", acl, 0, 3), SetACLTxn("/a", ((5, "ip", "10.0.0.1"),), 2),
         DeleteTxn("/b"))
    )  # fmt: skip
    txn = Txn(0x1234, 7, 0x100000005, 1_700_000_000_000, body)
    written = bytes.fromhex(
        "95cd123407cf0000000100000005cf0000018bcfe56800920e939601a22f61c4017892931fa5776f726c"
        "64a6616e796f6e659301a6646967657374a3753a6800039407a22f61919305a26970a831302e302e30"
        "2e31029202a22f62"
    )
    assert encode_txn(txn) == written
    assert decode_txn(written) == txn


def test_container_reaper_deletes_through_the_pipeline() -> None:
    h = Harness()
    c = h.client()
    h.send(c, 1, OpCode.createContainer, create("/box", flags=4))
    h.send(c, 2, OpCode.create, create("/box/a"))
    h.send(c, 3, OpCode.delete, r.DeleteRequest("/box/a", -1))
    h.flush_log()
    before = len(h.logged)
    assert h.proc.check_containers(interval_ms=1000) == 1
    assert "/box" in h.tree.nodes  # prepared, not applied: the log comes first
    h.flush_log()
    assert "/box" not in h.tree.nodes
    reaped = h.logged[before:]
    assert [type(t.body).__name__ for t in reaped] == ["DeleteTxn"]
    assert reaped[0].session_id == 0
    assert h.proc.check_containers(interval_ms=1000) == 0


def test_reaper_honours_max_per_minute() -> None:
    h = Harness()
    h.proc.settings.container_max_per_minute = 60  # one a second
    c = h.client()
    for i in range(3):
        h.send(c, 1, OpCode.createContainer, create(f"/b{i}", flags=4))
        h.send(c, 2, OpCode.create, create(f"/b{i}/x"))
        h.send(c, 3, OpCode.delete, r.DeleteRequest(f"/b{i}/x", -1))
    h.flush_log()
    assert h.proc.check_containers(interval_ms=1000) == 1
