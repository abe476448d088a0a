"""Quotas: usage kept in zookeeper_stats, hard limits enforced with enforceQuota.

The quota nodes are written here the way zkCli's setquota writes them (see
test_zkcli_features.py for zkCli itself).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import QuotaExceededError

from tests.conftest import TARGETS, configured_server, connect
from tests.servers import ServerProcess

_n = iter(range(1_000_000))


@pytest.fixture(scope="module", params=TARGETS)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    # enforceQuota is a Java system property for ZooKeeper; pyzk takes the same flag.
    yield from configured_server(
        request, tmp_path_factory, jvm_flags=["-Dzookeeper.enforceQuota=true"]
    )


@pytest.fixture
def zk(srv: ServerProcess) -> Iterator[KazooClient]:
    c = connect(srv)
    yield c
    c.stop()
    c.close()


def set_quota(zk: KazooClient, path: str, limits: bytes) -> None:
    """What zkCli's setquota does for a new quota."""
    zk.ensure_path(f"/zookeeper/quota{path}")
    zk.create(f"/zookeeper/quota{path}/zookeeper_limits", limits)
    zk.create(f"/zookeeper/quota{path}/zookeeper_stats", b"count=0,bytes=0")


def stats(zk: KazooClient, path: str) -> bytes:
    data: bytes = zk.get(f"/zookeeper/quota{path}/zookeeper_stats")[0]
    return data


def test_stats_count_the_subtree_when_the_quota_is_set(zk: KazooClient) -> None:
    app = f"/qa{next(_n)}"
    zk.create(app, b"12345")
    zk.create(f"{app}/a", b"xy")
    zk.create(f"{app}/a/b", b"")
    set_quota(zk, app, b"count=10,bytes=-1")
    assert stats(zk, app) == b"count=3,bytes=7"
    data, stat = zk.get(f"/zookeeper/quota{app}/zookeeper_stats")
    assert stat.version == 0 and stat.dataLength == len(data)


def test_stats_follow_creates_sets_and_deletes_in_place(zk: KazooClient) -> None:
    app = f"/qb{next(_n)}"
    zk.create(app)
    set_quota(zk, app, b"count=100,bytes=1000")
    _, before = zk.get(f"/zookeeper/quota{app}/zookeeper_stats")
    zk.create(f"{app}/x", b"abc")
    zk.create(f"{app}/x/y", b"de")
    assert stats(zk, app) == b"count=3,bytes=5"
    zk.set(f"{app}/x", b"a")
    assert stats(zk, app) == b"count=3,bytes=3"
    zk.delete(f"{app}/x/y")
    assert stats(zk, app) == b"count=2,bytes=1"
    _, after = zk.get(f"/zookeeper/quota{app}/zookeeper_stats")
    assert (after.version, after.mzxid) == (before.version, before.mzxid)  # changed in place


def test_soft_limits_only_warn(zk: KazooClient) -> None:
    app = f"/qc{next(_n)}"
    zk.create(app)
    set_quota(zk, app, b"count=2,bytes=4")
    for i in range(4):
        zk.create(f"{app}/n{i}", b"12345")
    assert stats(zk, app) == b"count=5,bytes=20"


def test_hard_count_limit_refuses_creates(zk: KazooClient) -> None:
    app = f"/qd{next(_n)}"
    zk.create(app)
    set_quota(zk, app, b"count=-1,bytes=-1=;countHardLimit=3")
    zk.create(f"{app}/a")
    zk.create(f"{app}/b")
    with pytest.raises(QuotaExceededError):
        zk.create(f"{app}/c")
    with pytest.raises(QuotaExceededError):
        zk.create(f"{app}/a/deeper")
    zk.delete(f"{app}/b")
    zk.create(f"{app}/c")
    assert stats(zk, app) == b"count=3,bytes=0"


def test_hard_byte_limit_refuses_creates_and_sets(zk: KazooClient) -> None:
    app = f"/qe{next(_n)}"
    zk.create(app, b"1234")
    set_quota(zk, app, b"count=-1,bytes=-1=;byteHardLimit=10")
    zk.create(f"{app}/a", b"123456")
    with pytest.raises(QuotaExceededError):
        zk.create(f"{app}/b", b"x")
    with pytest.raises(QuotaExceededError):
        zk.set(f"{app}/a", b"1234567")
    zk.set(f"{app}/a", b"12")  # shrinking is fine
    zk.create(f"{app}/b", b"1234")
    assert stats(zk, app) == b"count=3,bytes=10"


def test_the_deepest_quota_counts_and_removing_limits_lifts_it(zk: KazooClient) -> None:
    app = f"/qf{next(_n)}"
    zk.create(f"{app}/inner", makepath=True)
    set_quota(zk, app, b"count=-1,bytes=-1=;countHardLimit=100")
    set_quota(zk, f"{app}/inner", b"count=-1,bytes=-1=;countHardLimit=1")
    with pytest.raises(QuotaExceededError):
        zk.create(f"{app}/inner/x")
    zk.create(f"{app}/other")
    assert stats(zk, app) == b"count=3,bytes=0"
    assert stats(zk, f"{app}/inner") == b"count=1,bytes=0"
    zk.delete(f"/zookeeper/quota{app}/inner/zookeeper_limits")
    zk.create(f"{app}/inner/x")
    assert stats(zk, app) == b"count=4,bytes=0"
