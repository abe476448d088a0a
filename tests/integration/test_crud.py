"""Create, read, update, delete through kazoo, against pyzk and Apache ZooKeeper alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)


def test_system_nodes_look_like_zookeepers(zk: KazooClient) -> None:
    assert "zookeeper" in zk.get_children("/")
    assert sorted(zk.get_children("/zookeeper")) == ["config", "quota"]
    data, stat = zk.get("/zookeeper")
    assert data == b""
    assert (stat.czxid, stat.version, stat.numChildren) == (0, 0, 2)
    assert stat.cversion == -2
    assert zk.get("/zookeeper/config")[1].aversion == -1


def test_create_get_set_delete_round_trip(zk: KazooClient, root: str) -> None:
    path = zk.create(f"{root}/a", b"hello")
    assert path == f"{root}/a"
    data, stat = zk.get(path)
    assert data == b"hello"
    assert stat.version == 0 and stat.dataLength == 5 and stat.numChildren == 0
    assert stat.czxid == stat.mzxid == stat.pzxid
    assert stat.ctime == stat.mtime
    stat2 = zk.set(path, b"world!")
    assert stat2.version == 1 and stat2.dataLength == 6
    assert stat2.mzxid > stat.mzxid and stat2.czxid == stat.czxid
    assert zk.get(path)[0] == b"world!"
    zk.delete(path)
    assert zk.exists(path) is None


def test_create_returns_stat_with_create2(zk: KazooClient, root: str) -> None:
    path, stat = zk.create(f"{root}/c2", b"x", include_data=True)
    assert path == f"{root}/c2"
    assert stat.dataLength == 1 and stat.version == 0


def test_parent_stat_tracks_children(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/p")
    zk.create(f"{root}/p/a")
    s1 = zk.exists(f"{root}/p")
    assert (s1.numChildren, s1.cversion) == (1, 1)
    zk.delete(f"{root}/p/a")
    s2 = zk.exists(f"{root}/p")
    # cversion counts creates and deletes; pzxid moves with each child change.
    assert (s2.numChildren, s2.cversion) == (0, 2)
    assert s2.pzxid > s1.pzxid


def test_sequential_suffix_counts_creates_only(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/p")
    zk.create(f"{root}/p/x")
    zk.delete(f"{root}/p/x")
    first = zk.create(f"{root}/p/s-", sequence=True)
    second = zk.create(f"{root}/p/s-", sequence=True)
    assert first == f"{root}/p/s-0000000001"
    assert second == f"{root}/p/s-0000000002"
    assert zk.exists(f"{root}/p").cversion == 4


def test_sequential_with_trailing_slash_names_the_child(zk: KazooClient, root: str) -> None:
    name = zk.create(f"{root}/", sequence=True)
    assert name == f"{root}/0000000000"


def test_ephemeral_nodes_belong_to_their_session(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    other = zk_factory()
    path = other.create(f"{root}/e", b"x", ephemeral=True)
    stat = zk.exists(path)
    assert stat.ephemeralOwner == other.client_id[0]
    seq = other.create(f"{root}/es-", ephemeral=True, sequence=True)
    assert seq.startswith(f"{root}/es-")
    with pytest.raises(NoChildrenForEphemeralsError):
        other.create(f"{path}/child")
    other.stop()
    assert zk.exists(path) is None
    assert zk.exists(seq) is None


def test_errors_match_zookeeper(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/n", b"v")
    with pytest.raises(NodeExistsError):
        zk.create(f"{root}/n")
    with pytest.raises(NoNodeError):
        zk.create(f"{root}/missing/child")
    with pytest.raises(NoNodeError):
        zk.get(f"{root}/nope")
    with pytest.raises(NoNodeError):
        zk.set(f"{root}/nope", b"")
    with pytest.raises(NoNodeError):
        zk.delete(f"{root}/nope")
    with pytest.raises(BadVersionError):
        zk.set(f"{root}/n", b"x", version=7)
    with pytest.raises(BadVersionError):
        zk.delete(f"{root}/n", version=3)
    zk.create(f"{root}/n/kid")
    with pytest.raises(NotEmptyError):
        zk.delete(f"{root}/n")
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper")
    with pytest.raises(BadArgumentsError):
        zk.delete("/")


def test_versioned_set_and_delete_succeed_on_match(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/v", b"0")
    assert zk.set(f"{root}/v", b"1", version=0).version == 1
    assert zk.set(f"{root}/v", b"2", version=1).version == 2
    zk.delete(f"{root}/v", version=2)
    assert zk.exists(f"{root}/v") is None


def test_failed_writes_consume_a_zxid(zk: KazooClient, root: str) -> None:
    a = zk.create(f"{root}/a")
    with pytest.raises(NodeExistsError):
        zk.create(f"{root}/a")
    b = zk.create(f"{root}/b")
    assert zk.exists(b).czxid == zk.exists(a).czxid + 2


def test_get_children_lists_every_child(zk: KazooClient, root: str) -> None:
    for i in range(20):
        zk.create(f"{root}/k{i:02d}")
    assert sorted(zk.get_children(root)) == [f"k{i:02d}" for i in range(20)]
    children, stat = zk.get_children(root, include_data=True)
    assert stat.numChildren == 20 and len(children) == 20


def test_null_and_large_data(zk: KazooClient, root: str) -> None:
    big = bytes(range(256)) * 2000  # 512 KB, under jute.maxbuffer
    zk.create(f"{root}/big", big)
    assert zk.get(f"{root}/big")[0] == big
    zk.create(f"{root}/empty", b"")
    assert zk.get(f"{root}/empty")[0] == b""


def test_unicode_paths(zk: KazooClient, root: str) -> None:
    path = zk.create(f"{root}/ünï-çødé", "dätä".encode())
    assert zk.get(path)[0] == "dätä".encode()
    assert "ünï-çødé" in zk.get_children(root)


def test_sync_returns(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/s")
    assert zk.sync(f"{root}/s") == f"{root}/s"


def test_children_are_listed_in_zookeepers_order(both_servers) -> None:  # type: ignore[no-untyped-def]
    """ZooKeeper lists children in Java HashSet order; zkCli's ls shows it as is."""
    import random

    from kazoo.client import KazooClient

    rng = random.Random(11)
    names = [f"n{rng.randrange(10**6)}-{i}" for i in range(60)] + ["ü-x", "Zz", "a", "Ab"]
    listings = {}
    for kind, srv in both_servers.items():
        c = KazooClient(hosts=srv.hosts)
        c.start(timeout=15)
        try:
            root = c.create("/order-", sequence=True)
            for i, name in enumerate(names):
                c.create(f"{root}/{name}")
                if i % 7 == 3:
                    c.delete(f"{root}/{names[i - 2]}")
            listings[kind] = (c.get_children(root), c.get_children("/zookeeper"))
        finally:
            c.stop()
    if len(listings) == 2:
        assert listings["pyzk"] == listings["zookeeper"]
