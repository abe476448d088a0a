"""Snapshots: consistent copy-on-write views, checksums, recovery with the log."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from pyzk.storage.nogc import gc_paused
from pyzk.storage.recovery import recover
from pyzk.storage.snapshot import (
    SnapshotEncoder,
    SnapshotError,
    read_snapshot,
    snapshot_files,
    write_snapshot,
)
from pyzk.storage.wal import TxnLog
from pyzk.tree.datatree import DataTree
from pyzk.tree.node import creates
from pyzk.tree.txn import (
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    encode_txn,
)

OPEN = ((31, "world", "anyone"),)
SID = 0x1234


class Writer:
    """Builds txns with consecutive zxids, applies them, and optionally logs them."""

    def __init__(self, tree: DataTree, wal: TxnLog | None = None) -> None:
        self.tree, self.wal, self.zxid = tree, wal, tree.last_zxid

    def __call__(self, body: object) -> None:
        self.zxid += 1
        txn = Txn(SID, 0, self.zxid, 1000 + self.zxid, body)  # type: ignore[arg-type]
        self.tree.apply(txn)
        if self.wal is not None:
            self.wal.append([(txn.zxid, encode_txn(txn))])

    def create(self, path: str, data: bytes | None = b"", owner: int = 0) -> None:
        parent = self.tree.nodes[path.rsplit("/", 1)[0] or "/"]
        self(CreateTxn(path, data, OPEN, owner, creates(parent) + 1))


def state(tree: DataTree) -> dict[str, tuple[object, ...]]:
    """Every node's fields (ACLs by value: ids may differ between trees) and children."""
    return {
        p: (
            tree.data(p),
            tree.stat(p),
            tree.acl(p),
            tree.owner_of(p, rec),
            sorted(tree.child_names(p)),
        )
        for p, rec in tree.nodes.items()
    }


def build(tree: DataTree, w: Writer) -> None:
    w(CreateSessionTxn(30000))
    w.create("/a", b"1")
    w.create("/a/b", b"2")
    w.create("/a/e", b"eph", owner=SID)
    w.create("/c", None)
    w(SetDataTxn("/a", b"11", 1))
    w(SetACLTxn("/c", ((1, "world", "anyone"),), 1))


def finish(data_dir: Path, enc: SnapshotEncoder, chunks: list[bytes]) -> Path:
    """Encode the rest of a snapshot begun with ``chunks``, close its view, write it."""
    while (c := enc.next_chunk()) is not None:
        chunks.append(c)
    chunks.append(enc.footer())
    enc.view.close()
    f = data_dir / f"snapshot.{enc.view.zxid:016x}"
    f.write_bytes(b"".join(chunks))
    return f


def test_snapshot_round_trip(tmp_path: Path) -> None:
    tree = DataTree()
    build(tree, Writer(tree))
    path = write_snapshot(tree, tmp_path)
    loaded = read_snapshot(path)
    assert loaded.zxid == tree.last_zxid
    assert state(loaded.tree) == state(tree)
    assert loaded.tree.ephemerals == {SID: {"/a/e": None}}
    assert loaded.tree.sessions == {SID: 30000}
    assert loaded.tree.data_size == tree.data_size


def test_view_is_the_tree_at_its_zxid_while_the_tree_changes(tmp_path: Path) -> None:
    tree = DataTree()
    w = Writer(tree)
    build(tree, w)
    before = state(tree)
    view = tree.begin_snapshot()
    enc = SnapshotEncoder(view)
    first = enc.next_chunk()  # part of the body is already out...
    w(SetDataTxn("/a", b"changed", 2))  # ...when the tree keeps changing
    w(DeleteTxn("/a/b"))
    w(DeleteTxn("/a/e"))  # an ephemeral: its owner comes from the saved copy
    w.create("/new", owner=SID)
    w(SetDataTxn("/c", b"x", 1))
    chunks = [enc.header(), first or b""]
    f = finish(tmp_path, enc, chunks)
    loaded = read_snapshot(f).tree
    assert state(loaded) == before
    assert loaded.ephemerals == {SID: {"/a/e": None}}


def test_damaged_snapshot_is_refused(tmp_path: Path) -> None:
    tree = DataTree()
    build(tree, Writer(tree))
    path = write_snapshot(tree, tmp_path)
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError):
        read_snapshot(path)


def test_damage_that_still_decodes_is_refused(tmp_path: Path) -> None:
    """The body is decoded as it is read and checksummed on the way: a flipped byte in a
    znode's data decodes, and the checksum at the end refuses the file all the same."""
    tree = DataTree()
    w = Writer(tree)
    w(CreateTxn("/n", b"0123456789" * 10, OPEN, 0, 1))
    path = write_snapshot(tree, tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b"0123456789")
    data[at] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum"):
        read_snapshot(path)


def test_any_failure_to_decode_an_unchecked_body_is_a_damaged_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body is decoded before its checksum is known, so whatever damaged bytes make
    the decoder raise means a damaged snapshot (recovery then tries an older one), not a
    crash at start-up."""
    from pyzk.storage import snapshot as s

    tree = DataTree()
    build(tree, Writer(tree))
    path = write_snapshot(tree, tmp_path)

    def garbage(*args: object) -> DataTree:
        raise AttributeError("'int' object has no attribute 'startswith'")

    monkeypatch.setattr(s, "tree_from_families", garbage)
    with pytest.raises(SnapshotError, match="undecodable"):
        read_snapshot(path)


@pytest.mark.parametrize(
    "items",
    [[], [["s", [], []]], [["a", []], ["k", "", ["/"]]], [["a", []], ["x"]]],
    ids=["empty", "no-acl-table", "short-family", "unknown-item"],
)
def test_a_body_that_checks_out_but_does_not_decode_is_refused(
    tmp_path: Path, items: list[list[object]]
) -> None:
    """Right header, footer and checksum around a body that is not a tree."""
    import google_crc32c
    import msgpack

    from pyzk.storage import snapshot as s

    body = b"".join(msgpack.packb(i) for i in items)
    path = tmp_path / s.snapshot_name(5)
    footer = s.FOOTER.pack(len(items), google_crc32c.value(body), s.END_MAGIC)
    path.write_bytes(s.HEADER.pack(s.MAGIC, s.VERSION, 0, 5) + body + footer)
    with pytest.raises(SnapshotError):
        read_snapshot(path)


def snapshot_then_log(tmp_path: Path) -> tuple[DataTree, TxnLog, Writer]:
    """A tree built, snapshotted into ``tmp_path``, and a log to write what follows."""
    tree = DataTree()
    wal = TxnLog(tmp_path, 64 * 1024)
    w = Writer(tree, wal)
    build(tree, w)
    write_snapshot(tree, tmp_path)
    wal.roll()
    return tree, wal, w


def test_recovery_replays_the_log_after_the_snapshot(tmp_path: Path) -> None:
    tree, wal, w = snapshot_then_log(tmp_path)
    w.create("/after", b"z")
    w(DeleteTxn("/a/e"))
    wal.close()
    rec = recover(tmp_path, tmp_path)
    assert rec.snapshot_zxid == 7 and rec.replayed == 2
    assert state(rec.tree) == state(tree)
    assert rec.tree.last_zxid == tree.last_zxid


def test_recovery_falls_back_to_an_older_snapshot(tmp_path: Path) -> None:
    tree = DataTree()
    wal = TxnLog(tmp_path, 64 * 1024)
    w = Writer(tree, wal)
    build(tree, w)
    write_snapshot(tree, tmp_path)
    w.create("/later")
    newest = write_snapshot(tree, tmp_path)
    wal.close()
    newest.write_bytes(newest.read_bytes()[:-3])  # damaged
    rec = recover(tmp_path, tmp_path)
    assert rec.snapshot_zxid == 7
    assert state(rec.tree) == state(tree)
    assert len(snapshot_files(tmp_path)) == 2


def test_recovery_without_anything_is_an_empty_tree(tmp_path: Path) -> None:
    rec = recover(tmp_path / "data", tmp_path / "log")
    assert rec.tree.last_zxid == 0 and "/zookeeper" in rec.tree.nodes


def test_containers_and_ttl_nodes_survive_snapshot_and_log(tmp_path: Path) -> None:
    from pyzk.tree.node import CONTAINER_OWNER, ttl_owner
    from pyzk.tree.txn import decode_txn

    tree = DataTree()
    w = Writer(tree)
    w.create("/box", b"", owner=CONTAINER_OWNER)
    w.create("/tmp", b"t", owner=ttl_owner(5000))
    w.create("/box/x")
    w(DeleteTxn("/box/x"))
    loaded = read_snapshot(write_snapshot(tree, tmp_path)).tree
    assert (loaded.containers, loaded.ttls) == ({"/box": None}, {"/tmp": ttl_owner(5000)})
    assert loaded.ephemerals == {}
    # The creates round-trip through the log's encoding with their owners.
    txn = Txn(SID, 1, 99, 5, CreateTxn("/t2", b"", OPEN, ttl_owner(7), 1))
    assert decode_txn(encode_txn(txn)) == txn
    assert loaded.reap_candidates(wall_ms=1000 + w.zxid + 10) == ["/box"]
    assert loaded.reap_candidates(wall_ms=1000 + w.zxid + 6000) == ["/box", "/tmp"]


def test_quota_roots_and_usage_are_rebuilt_from_a_snapshot(tmp_path: Path) -> None:
    tree = DataTree()
    w = Writer(tree)
    w.create("/app", b"1234")
    w.create("/app/a", b"56")
    w.create("/zookeeper/quota/app")
    w.create("/zookeeper/quota/app/zookeeper_limits", b"count=-1,bytes=-1=;countHardLimit=9")
    w.create("/zookeeper/quota/app/zookeeper_stats", b"count=0,bytes=0")
    assert tree.data("/zookeeper/quota/app/zookeeper_stats") == b"count=2,bytes=6"
    w.create("/app/b", b"7")
    loaded = read_snapshot(write_snapshot(tree, tmp_path)).tree
    assert loaded.quotas.roots == {"/app"}
    assert loaded.data("/zookeeper/quota/app/zookeeper_stats") == b"count=3,bytes=7"
    assert state(loaded) == state(tree)


def test_children_come_back_reinserted_in_listing_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in ZooKeeper: a snapshot lists each node's children in listing order and loading
    re-inserts them so, into a set sized for what is left. Exact while the tree changes
    between chunks, children added and removed under a node not yet written included."""
    from pyzk.storage import snapshot as snapshot_module
    from pyzk.tree.java_order import grown, java_hash, ordered

    monkeypatch.setattr(snapshot_module, "CHUNK_ITEMS", 3)
    tree = DataTree()
    w = Writer(tree)
    w.create("/a")
    w.create("/p")
    names = [f"n{i:03d}-{chr(97 + i % 26)}" for i in range(40)]
    for n in names:
        w.create(f"/p/{n}")
    for n in names[::3] + names[1::3]:
        w(DeleteTxn(f"/p/{n}"))
    listed = tree.child_names("/p")
    before = state(tree)
    view = tree.begin_snapshot()
    enc = SnapshotEncoder(view)
    # The ACL table, the root, then "/zookeeper", "/a", "/p": their children are next.
    chunks = [enc.header(), *(enc.next_chunk() or b"" for _ in range(3))]
    w(DeleteTxn(f"/p/{listed[-1]}"))
    w.create("/p/late")
    w.create("/a/late")
    f = finish(tmp_path, enc, chunks)
    loaded = read_snapshot(f).tree
    assert state(loaded) == before
    expected = ordered({n: java_hash(n) for n in listed}, grown(0, len(listed)))
    assert loaded.child_names("/p") == expected != listed  # a smaller table


def test_a_format_2_snapshot_still_loads(tmp_path: Path) -> None:
    """data/snapshot-format2 was written by the build before packed records (5fa8036),
    of the tree below: a server upgraded over it must come back with the same state."""
    from pyzk.tree.node import CONTAINER_OWNER, ttl_owner
    from pyzk.tree.txn import SetDataTxn

    tree = DataTree()
    w = Writer(tree)
    w.zxid = 0
    w(CreateSessionTxn(30000))
    w(CreateTxn("/a", b"1", OPEN, 0, 1))
    w(CreateTxn("/a/b", None, ((1, "digest", "u:x"),), 0, 1))
    w(CreateTxn("/a/e", b"eph", OPEN, SID, 2))
    w(CreateTxn("/box", b"", OPEN, CONTAINER_OWNER, 2))
    w(CreateTxn("/ttl", b"t", OPEN, ttl_owner(5000), 3))
    w(SetDataTxn("/a", b"22", 1))
    for i in range(12):
        w(CreateTxn(f"/box/k{i}", b"", OPEN, 0, i + 1))
    old = read_snapshot(Path(__file__).parent / "data" / "snapshot-format2")
    assert old.zxid == tree.last_zxid == 0x13
    assert state(old.tree) == state(tree)
    assert (old.tree.ephemerals, old.tree.sessions) == (tree.ephemerals, tree.sessions)
    assert (old.tree.containers, old.tree.ttls) == (tree.containers, tree.ttls)
    # Re-inserted in the order they were listed, as the format-3 round trip does.
    again = read_snapshot(write_snapshot(tree, tmp_path)).tree
    assert old.tree.child_names("/box") == again.child_names("/box")
    assert old.tree.data_size == tree.data_size


def test_gc_paused_restores_the_collector_only_where_it_turned_it_off() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            pass
        assert not gc.isenabled()  # the inner block left it off
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_snapshots_load_and_the_log_replays_with_the_collector_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyzk.storage import snapshot as s
    from pyzk.tree.snapshot_view import tree_from_families

    _, wal, w = snapshot_then_log(tmp_path)
    w.create("/after", b"z")
    wal.close()
    seen: list[tuple[str, bool]] = []
    apply, rebuild = DataTree.apply, tree_from_families

    def applying(self: DataTree, txn: Txn) -> object:
        seen.append(("apply", gc.isenabled()))
        return apply(self, txn)

    def rebuilding(*args: Any) -> DataTree:
        seen.append(("load", gc.isenabled()))
        return rebuild(*args)

    monkeypatch.setattr(DataTree, "apply", applying)
    monkeypatch.setattr(s, "tree_from_families", rebuilding)
    rec = recover(tmp_path, tmp_path)
    assert rec.replayed == 1 and seen == [("load", False), ("apply", False)]
    seen.clear()
    read_snapshot(snapshot_files(tmp_path)[0][1])  # as a learner installs its leader's
    assert seen == [("load", False)] and gc.isenabled()
