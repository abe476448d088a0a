"""kazoo's recipes end to end, against pyzk and Apache ZooKeeper alike.

Each recipe is driven by several clients (separate sessions), the way applications use
them. Every wait is bounded; nothing sleeps to let time pass.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock, ReadLock, Semaphore, WriteLock
from kazoo.recipe.partitioner import SetPartitioner
from kazoo.recipe.party import Party
from kazoo.recipe.queue import LockingQueue, Queue

WAIT_S = 15.0


def wait_for(cond: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_lock_is_exclusive_and_handed_over(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    other = zk_factory()
    a, b = Lock(zk, f"{root}/lock", "a"), Lock(other, f"{root}/lock", "b")
    assert a.acquire(timeout=WAIT_S)
    assert not b.acquire(blocking=False)
    assert a.contenders() == ["a"]
    got = threading.Event()

    def take() -> None:
        if b.acquire(timeout=WAIT_S):
            got.set()

    t = threading.Thread(target=take)
    t.start()
    wait_for(lambda: len(a.contenders()) == 2, "b to queue")
    a.release()
    t.join(WAIT_S)
    assert got.is_set()
    b.release()


def test_read_locks_share_and_write_lock_excludes(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    other = zk_factory()
    r1, r2 = ReadLock(zk, f"{root}/rw"), ReadLock(other, f"{root}/rw")
    assert r1.acquire(timeout=WAIT_S) and r2.acquire(timeout=WAIT_S)
    w = WriteLock(zk_factory(), f"{root}/rw")
    assert not w.acquire(blocking=False)
    r1.release()
    r2.release()
    assert w.acquire(timeout=WAIT_S)
    assert not ReadLock(other, f"{root}/rw").acquire(blocking=False)
    w.release()


def test_semaphore_admits_up_to_its_leases(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    sems = [Semaphore(zk_factory(), f"{root}/sem", f"s{i}", max_leases=2) for i in range(3)]
    assert sems[0].acquire(timeout=WAIT_S) and sems[1].acquire(timeout=WAIT_S)
    assert not sems[2].acquire(blocking=False)
    assert sorted(sems[0].lease_holders()) == ["s0", "s1"]
    sems[0].release()
    assert sems[2].acquire(timeout=WAIT_S)
    for s in sems[1:]:
        s.release()


def test_election_picks_one_leader_then_the_next(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    leaders: list[str] = []
    stop = threading.Event()

    def lead(name: str) -> None:
        leaders.append(name)
        stop.wait(WAIT_S)

    def lead_then_die() -> None:
        # Its client is stopped under it: releasing the lock on the way out then fails.
        with contextlib.suppress(ConnectionClosedError):
            e1.run(lead, "one")

    first, second = zk_factory(), zk_factory()
    e1 = Election(first, f"{root}/elect", "one")
    t1 = threading.Thread(target=lead_then_die)
    t1.start()
    wait_for(lambda: leaders == ["one"], "the first leader")
    e2 = Election(second, f"{root}/elect", "two")
    t2 = threading.Thread(target=e2.run, args=(lead, "two"))
    t2.start()
    wait_for(lambda: len(e1.contenders()) == 2, "the second contender")
    assert e1.contenders() == ["one", "two"]
    first.stop()  # the leader's session goes: its node goes, the next one leads
    wait_for(lambda: leaders == ["one", "two"], "the second leader")
    stop.set()
    t1.join(WAIT_S)
    t2.join(WAIT_S)


def test_barrier_holds_until_removed(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    barrier = Barrier(zk, f"{root}/barrier")
    barrier.create()
    waiter = Barrier(zk_factory(), f"{root}/barrier")
    assert waiter.wait(timeout=0.2) is False
    passed = threading.Event()

    def wait() -> None:
        if waiter.wait(timeout=WAIT_S):
            passed.set()

    t = threading.Thread(target=wait)
    t.start()
    barrier.remove()
    t.join(WAIT_S)
    assert passed.is_set()


def test_double_barrier_enters_and_leaves_together(
    root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    members = [DoubleBarrier(zk_factory(), f"{root}/double", 3) for _ in range(3)]
    entered: list[int] = []
    left: list[int] = []

    def run(i: int) -> None:
        members[i].enter()
        entered.append(i)
        wait_for(lambda: len(entered) == 3, "all to enter")
        members[i].leave()
        left.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert sorted(entered) == sorted(left) == [0, 1, 2]


def test_queues_keep_priority_then_fifo_order(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    q = Queue(zk, f"{root}/queue")
    for item, prio in ((b"low", 200), (b"a", 100), (b"b", 100)):
        q.put(item, priority=prio)
    consumer = Queue(zk_factory(), f"{root}/queue")
    assert [consumer.get() for _ in range(3)] == [b"a", b"b", b"low"]
    assert consumer.get() is None
    lq = LockingQueue(zk, f"{root}/lq")
    lq.put_all([b"1", b"2"])
    worker = LockingQueue(zk_factory(), f"{root}/lq")
    assert worker.get(timeout=WAIT_S) == b"1"
    assert lq.get(timeout=0.2) == b"2"  # the first is held by the worker
    assert lq.consume()
    assert worker.consume()
    assert len(lq) == 0


def test_counter_adds_up_across_clients(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    counters = [Counter(zk_factory(), f"{root}/counter") for _ in range(3)]
    threads = [
        threading.Thread(target=lambda c=c: [c.__add__(1) for _ in range(5)]) for c in counters
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S)
    assert Counter(zk, f"{root}/counter").value == 15
    c = Counter(zk, f"{root}/fcounter", default=0.5)
    c += 2.25
    assert c.value == 2.75


def test_party_members_come_and_go(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    alice, bob = Party(zk, f"{root}/party", "alice"), Party(zk_factory(), f"{root}/party", "bob")
    alice.join()
    bob.join()
    assert sorted(alice) == ["alice", "bob"] and len(alice) == 2
    bob.leave()
    assert list(alice) == ["alice"]


def test_set_partitioner_acquires_and_is_asked_to_release(
    root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    items = [f"item{i}" for i in range(6)]
    first = SetPartitioner(zk_factory(), f"{root}/part", items, time_boundary=0.2)
    first.wait_for_acquire(timeout=WAIT_S)
    assert first.acquired and sorted(first) == items
    second = SetPartitioner(zk_factory(), f"{root}/part", items, time_boundary=0.2)
    wait_for(lambda: first.release, "the first to be asked to release (party changed)")
    first.release_set()
    for p in (first, second):
        p.finish()


def test_tree_cache_mirrors_the_subtree(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    zk.create(f"{root}/tree/a", b"1", makepath=True)
    cache = TreeCache(zk_factory(), f"{root}/tree")
    events: list[tuple[int, str]] = []
    lock = threading.Lock()

    def listen(ev: TreeEvent) -> None:
        if ev.event_data is not None:
            with lock:
                events.append((ev.event_type, ev.event_data.path))

    cache.listen(listen)
    cache.start()
    try:
        wait_for(lambda: cache.get_data(f"{root}/tree/a") is not None, "the initial load")
        zk.create(f"{root}/tree/a/b", b"2")
        zk.set(f"{root}/tree/a", b"3")
        wait_for(
            lambda: (
                (data := cache.get_data(f"{root}/tree/a")) is not None
                and data.data == b"3"
                and cache.get_data(f"{root}/tree/a/b") is not None
            ),
            "the changes",
        )
        zk.delete(f"{root}/tree/a/b")
        wait_for(lambda: cache.get_data(f"{root}/tree/a/b") is None, "the delete")
        assert sorted(cache.get_children(f"{root}/tree") or ()) == ["a"]
        wanted = {
            (TreeEvent.NODE_ADDED, f"{root}/tree/a/b"),
            (TreeEvent.NODE_UPDATED, f"{root}/tree/a"),
            (TreeEvent.NODE_REMOVED, f"{root}/tree/a/b"),
        }

        def seen() -> bool:  # listeners run on kazoo's own thread, after the cache update
            with lock:
                return wanted <= set(events)

        wait_for(seen, "the listener events")
    finally:
        cache.close()


def test_lock_survives_the_holder_session_closing(
    zk: KazooClient, root: str, zk_factory: Callable[..., KazooClient]
) -> None:
    holder = zk_factory()
    assert Lock(holder, f"{root}/l2").acquire(timeout=WAIT_S)
    waiter = Lock(zk, f"{root}/l2")
    holder.stop()
    assert waiter.acquire(timeout=WAIT_S)
    waiter.release()
