"""Containers and TTL nodes: creation rules and the reaper that deletes them.

The reaper (ZooKeeper's ContainerManager) runs every ``znode.container.checkIntervalMs``;
these servers run it every 200 ms so the tests wait little. Waits poll with a bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from pyzk.jute import records as r
from pyzk.jute.codes import Err, OpCode
from tests.conftest import TARGETS, configured_server, connect
from tests.rawclient import RawClient
from tests.servers import ServerProcess

CHECK_MS = 200
WAIT_S = 15.0
OPEN = [r.ACL(31, r.Id("world", "anyone"))]


@pytest.fixture(scope="module", params=TARGETS)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from configured_server(
        request,
        tmp_path_factory,
        {"extendedTypesEnabled": "true"},
        jvm_flags=[f"-Dznode.container.checkIntervalMs={CHECK_MS}"],
    )


@pytest.fixture
def zk(srv: ServerProcess) -> Iterator[KazooClient]:
    c = connect(srv)
    yield c
    c.stop()
    c.close()


@pytest.fixture
def raw(srv: ServerProcess) -> Iterator[RawClient]:
    c = RawClient(srv.host, srv.port)
    c.connect(timeout_ms=30000)
    yield c
    c.close()


_n = iter(range(1_000_000))


@pytest.fixture
def path() -> str:
    return f"/nt{next(_n)}"


def wait_gone(zk: KazooClient, path: str) -> float:
    """Poll until ``path`` is deleted; the seconds it took (fails past WAIT_S)."""
    t0 = time.monotonic()
    while zk.exists(path) is not None:
        assert time.monotonic() - t0 < WAIT_S, f"{path} still there"
        time.sleep(0.05)
    return time.monotonic() - t0


def create_op(raw: RawClient, op: int, path: str, flags: int, ttl: int | None = None):  # type: ignore[no-untyped-def]
    if ttl is None:
        body = r.CreateRequest(path, b"d", OPEN, flags).encode()
    else:
        body = r.CreateTTLRequest(path, b"d", OPEN, flags, ttl).encode()
    hdr, payload = raw.request(1, op, body)
    return hdr.err, payload


def test_a_container_goes_once_its_last_child_goes(
    zk: KazooClient, raw: RawClient, path: str
) -> None:
    err, body = create_op(raw, OpCode.createContainer, path, 4)
    assert err == 0
    resp = r.Create2Response.from_bytes(body)
    assert resp.path == path and resp.stat.ephemeralOwner == 0  # containers show owner 0
    zk.create(f"{path}/child")
    zk.delete(f"{path}/child")
    wait_gone(zk, path)


def test_a_container_that_never_had_a_child_stays(
    zk: KazooClient, raw: RawClient, path: str
) -> None:
    assert create_op(raw, OpCode.createContainer, path, 4)[0] == 0
    assert create_op(raw, OpCode.createContainer, f"{path}-used", 4)[0] == 0
    zk.create(f"{path}-used/c")
    zk.delete(f"{path}-used/c")
    wait_gone(zk, f"{path}-used")  # a reaper round went by
    assert zk.exists(path) is not None
    zk.delete(path)


def test_a_container_with_children_stays(zk: KazooClient, raw: RawClient, path: str) -> None:
    assert create_op(raw, OpCode.createContainer, path, 4)[0] == 0
    zk.create(f"{path}/a")
    zk.create(f"{path}/b")
    zk.delete(f"{path}/a")
    assert create_op(raw, OpCode.createContainer, f"{path}x", 4)[0] == 0
    zk.create(f"{path}x/c")
    zk.delete(f"{path}x/c")
    wait_gone(zk, f"{path}x")
    assert zk.exists(path) is not None
    zk.delete(path, recursive=True)


def test_container_flags_follow_the_opcode(zk: KazooClient, raw: RawClient, path: str) -> None:
    # createContainer with flags 0 still makes a container; create2 with the container
    # flag makes a plain persistent node (the txn type decides, as in ZooKeeper).
    assert create_op(raw, OpCode.createContainer, path, 0)[0] == 0
    assert create_op(raw, OpCode.create2, f"{path}-plain", 4)[0] == 0
    for p in (path, f"{path}-plain"):
        zk.create(f"{p}/c")
        zk.delete(f"{p}/c")
    wait_gone(zk, path)
    assert zk.exists(f"{path}-plain") is not None
    zk.delete(f"{path}-plain")


def test_ttl_node_goes_after_its_ttl_when_unchanged(
    zk: KazooClient, raw: RawClient, path: str
) -> None:
    err, body = create_op(raw, OpCode.createTTL, path, 5, ttl=300)
    assert err == 0
    assert r.Create2Response.from_bytes(body).stat.ephemeralOwner == 0
    wait_gone(zk, path)


def test_ttl_node_with_children_stays(zk: KazooClient, raw: RawClient, path: str) -> None:
    assert create_op(raw, OpCode.createTTL, path, 5, ttl=100)[0] == 0
    zk.create(f"{path}/kid")
    assert create_op(raw, OpCode.createTTL, f"{path}-probe", 5, ttl=100)[0] == 0
    wait_gone(zk, f"{path}-probe")
    assert zk.exists(path) is not None
    zk.delete(f"{path}/kid")
    wait_gone(zk, path)


def test_sequential_ttl_nodes(zk: KazooClient, raw: RawClient, path: str) -> None:
    zk.create(path)
    err, body = create_op(raw, OpCode.createTTL, f"{path}/s-", 6, ttl=200)
    assert err == 0
    assert r.Create2Response.from_bytes(body).path == f"{path}/s-0000000000"
    wait_gone(zk, f"{path}/s-0000000000")
    zk.delete(path)


@pytest.mark.parametrize(
    ("op", "flags", "ttl", "err"),
    [
        (OpCode.createTTL, 0, 1000, Err.BADARGUMENTS),  # not a TTL mode
        (OpCode.createTTL, 5, 0, Err.BADARGUMENTS),
        (OpCode.createTTL, 5, -5, Err.BADARGUMENTS),
        (OpCode.createTTL, 5, 1 << 40, Err.BADARGUMENTS),  # past the 40-bit maximum
        (OpCode.create, 5, None, Err.BADARGUMENTS),  # a TTL mode needs createTTL
        (OpCode.create, 7, None, Err.BADARGUMENTS),  # no such mode
    ],
)
def test_bad_ttl_creates(raw: RawClient, path: str, op: int, flags: int, ttl, err: int) -> None:  # type: ignore[no-untyped-def]
    assert create_op(raw, op, path, flags, ttl)[0] == err


def test_a_client_cannot_send_delete_container(zk: KazooClient, raw: RawClient, path: str) -> None:
    zk.create(path)
    hdr, _ = raw.request(1, OpCode.deleteContainer, path.encode())
    assert hdr.err == Err.BADARGUMENTS
    assert zk.exists(path) is not None
    zk.delete(path)


@pytest.fixture(scope="module", params=TARGETS)
def plain_srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from configured_server(request, tmp_path_factory)


def test_ttl_nodes_need_extended_types(plain_srv: ServerProcess) -> None:
    raw = RawClient(plain_srv.host, plain_srv.port)
    try:
        raw.connect()
        assert create_op(raw, OpCode.createTTL, "/ttl", 5, ttl=1000)[0] == Err.UNIMPLEMENTED
        assert create_op(raw, OpCode.create, "/ttl", 5)[0] == Err.UNIMPLEMENTED
        assert create_op(raw, OpCode.createContainer, "/cont", 4)[0] == 0  # containers work
    finally:
        raw.close()
