"""multi (transactions) and multiRead: all or nothing, errors per op."""

from __future__ import annotations

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    RuntimeInconsistency,
)


def test_multi_applies_every_op(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/x", b"0")
    t = zk.transaction()
    t.create(f"{root}/a", b"A")
    t.set_data(f"{root}/x", b"1")
    t.check(f"{root}/x", 0)
    t.delete(f"{root}/x")
    # check runs after set_data within the multi: version 0 is stale by then.
    results = t.commit()
    assert isinstance(results[2], BadVersionError)
    assert zk.exists(f"{root}/a") is None  # nothing applied


def test_multi_success_results(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/x", b"0")
    t = zk.transaction()
    t.create(f"{root}/a", b"A")
    t.check(f"{root}/x", 0)
    t.set_data(f"{root}/x", b"1")
    t.create(f"{root}/a/b")
    t.delete(f"{root}/a/b")
    results = t.commit()
    assert results[0] == f"{root}/a"
    assert results[1] is True
    assert results[2].version == 1
    assert results[3] == f"{root}/a/b"
    assert results[4] is True
    assert zk.get(f"{root}/x")[0] == b"1"
    assert zk.exists(f"{root}/a/b") is None


def test_failed_multi_reports_each_op(zk: KazooClient, root: str) -> None:
    zk.create(f"{root}/exists")
    t = zk.transaction()
    t.create(f"{root}/m1")
    t.create(f"{root}/exists")
    t.create(f"{root}/m2")
    results = t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], NodeExistsError)
    assert isinstance(results[2], RuntimeInconsistency)
    assert zk.exists(f"{root}/m1") is None
    assert zk.exists(f"{root}/m2") is None


def test_multi_sees_its_own_earlier_ops(zk: KazooClient, root: str) -> None:
    t = zk.transaction()
    t.create(f"{root}/p")
    t.create(f"{root}/p/c", sequence=True)
    t.create(f"{root}/p/c", sequence=True)
    results = t.commit()
    assert results[1:] == [f"{root}/p/c0000000000", f"{root}/p/c0000000001"]


def test_multi_missing_node(zk: KazooClient, root: str) -> None:
    t = zk.transaction()
    t.delete(f"{root}/ghost")
    results = t.commit()
    assert isinstance(results[0], NoNodeError)


def test_empty_multi(zk: KazooClient, root: str) -> None:
    assert zk.transaction().commit() == []
