"""getEphemerals, getAllChildrenNumber, getConfig/reconfig, and the limits: frame size
(jute.maxbuffer) and connections per client address (maxClientCnxns)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, ReconfigDisabledError

from pyzk.jute import records as r
from pyzk.jute.codes import Err, OpCode
from tests.conftest import TARGETS, configured_server, connect
from tests.rawclient import RawClient
from tests.servers import ServerProcess

OPEN = [r.ACL(31, r.Id("world", "anyone"))]


@pytest.fixture
def raw(server: ServerProcess) -> Iterator[RawClient]:
    c = RawClient(server.host, server.port)
    c.connect(timeout_ms=30000)
    yield c
    c.close()


def strings(body: bytes) -> list[str]:
    return r.GetEphemeralsResponse.from_bytes(body).ephemerals


def test_get_ephemerals_lists_the_sessions_own_by_prefix(
    zk: KazooClient, root: str, raw: RawClient
) -> None:
    names = ["e1", "e2", "alpha", "beta", "gamma", "x10", "x11", "x12"]
    base = "/ephemerals-order"  # a fixed path: the order depends on the strings' hashes
    zk.ensure_path(base)
    for n in names:
        body = r.CreateRequest(f"{base}/{n}", b"", OPEN, 1).encode()
        assert raw.request(1, OpCode.create, body)[0].err == 0
    zk.create(f"{base}/not-mine", ephemeral=True)

    def ephemerals(prefix: str) -> list[str]:
        return strings(raw.request(3, OpCode.getEphemerals, r.PathRequest(prefix).encode())[1])

    # ZooKeeper iterates the session's Java HashSet of paths: this is its order.
    assert [p.rsplit("/", 1)[1] for p in ephemerals("/")] == EXPECTED_ORDER
    assert ephemerals("") == ephemerals("/")
    assert sorted(ephemerals(f"{base}/x1")) == [f"{base}/x10", f"{base}/x11", f"{base}/x12"]
    assert ephemerals("/nope") == []
    zk.delete(f"{base}/not-mine")


# What ZooKeeper 3.8.0 answers for the names above (e2 before e1: hash order).
EXPECTED_ORDER = ["alpha", "beta", "e2", "e1", "x12", "x10", "x11", "gamma"]


def test_get_all_children_number_counts_every_descendant(
    zk: KazooClient, root: str, raw: RawClient
) -> None:
    for p in ("a", "a/b", "a/b/c", "d"):
        zk.create(f"{root}/{p}")

    def count(path: str) -> tuple[int, int]:
        hdr, body = raw.request(6, OpCode.getAllChildrenNumber, r.PathRequest(path).encode())
        return hdr.err, (
            r.GetAllChildrenNumberResponse.from_bytes(body).totalNumber if body else -1
        )

    assert count(root) == (0, 4)
    assert count(f"{root}/a") == (0, 2)
    assert count(f"{root}/d") == (0, 0)
    assert count(f"{root}/missing") == (Err.NONODE, -1)
    _, under_root = count("/")
    _, with_empty = count("")
    assert with_empty == under_root + 1  # "" also counts the root itself, as ZooKeeper


def test_config_node_and_reconfig_on_a_standalone_server(zk: KazooClient) -> None:
    data, stat = zk.get("/zookeeper/config")
    assert data == b"" and (stat.version, stat.aversion) == (0, -1)
    assert [a.perms for a in zk.get_acls("/zookeeper/config")[0]] == [1]
    with pytest.raises(ReconfigDisabledError):
        zk.reconfig(joining="server.5=127.0.0.1:1234:1235;1236", leaving=None, new_members=None)


def test_data_past_jute_maxbuffer_drops_the_connection_only(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    big = zk_factory()
    with pytest.raises(ConnectionLoss):
        big.create(f"{root}/big", b"x" * (1024 * 1024 + 10))
    assert zk.exists(f"{root}/big") is None  # the server goes on
    zk.create(f"{root}/small", b"x" * 1000)
    assert zk.get(f"{root}/small")[0] == b"x" * 1000


@pytest.fixture(scope="module", params=TARGETS)
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from configured_server(request, tmp_path_factory, {"maxClientCnxns": "2"})


def test_max_client_cnxns_refuses_one_more_connection_from_an_address(
    limited: ServerProcess,
) -> None:
    first, second = connect(limited), connect(limited)
    try:
        with pytest.raises((ConnectionError, OSError)):
            third = RawClient(limited.host, limited.port)
            try:
                third.connect()
            finally:
                third.close()
        assert first.exists("/") is not None  # the others are untouched
        second.stop()
        second.close()
        again = connect(limited)  # a slot is free again
        again.stop()
        again.close()
    finally:
        first.stop()
        first.close()
