"""The checker itself, on hand-made histories: it passes what ZooKeeper allows and fails
what it does not, naming a minimal offending sub-history."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.reliability.checker import _entries, _step, check, linearizable, minimise, pins_of
from tests.reliability.history import CAS, FAIL, INFO, OK, READ, SREAD, WRITE, Op

INIT = {"k": "init"}


@dataclass
class H:
    """Write a history by hand: ``h.write(1, 4, "a", v=1)`` is invoked at 1, done at 4."""

    ops: list[Op] = field(default_factory=list)

    def _add(self, kind: str, t0: int, t1: int | None, status: str, **kw: object) -> Op:
        kw.setdefault("key", "k")
        kw.setdefault("process", len(self.ops))
        kw.setdefault("session", 0)
        op = Op(len(self.ops) + 1, kind=kind, invoke=t0, complete=t1, status=status, **kw)  # type: ignore[arg-type]
        self.ops.append(op)
        return op

    def write(self, t0: int, t1: int | None, value: str, v: int | None = None, **kw: object) -> Op:
        status = INFO if t1 is None else OK
        return self._add(WRITE, t0, t1, status, value=value, version=v, **kw)

    def cas(
        self, t0: int, t1: int | None, value: str, expect: int, v: int | None, **kw: object
    ) -> Op:
        status = INFO if t1 is None else (OK if v is not None else FAIL)
        return self._add(CAS, t0, t1, status, value=value, version=v, expected=expect, **kw)

    def read(self, t0: int, t1: int, value: str, v: int, synced: bool = False, **kw: object) -> Op:
        return self._add(SREAD if synced else READ, t0, t1, OK, value=value, version=v, **kw)


def verdict(h: H, initial: dict[str, str] = INIT) -> list[str]:
    return [v.rule for v in check(h.ops, initial).violations]


# --- what ZooKeeper allows --------------------------------------------------------------


def test_sequential_writes_and_reads_pass() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h.read(3, 4, "a", 1, synced=True)
    h.write(5, 6, "b", v=2)
    h.read(7, 8, "b", 2)
    assert verdict(h) == []


def test_concurrent_writes_may_land_in_either_order() -> None:
    h = H()
    h.write(1, 5, "a", v=2)
    h.write(2, 6, "b", v=1)
    h.read(7, 8, "a", 2, synced=True)
    assert verdict(h) == []


def test_a_plain_read_may_be_stale() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h.write(3, 4, "b", v=2)
    h.read(5, 6, "a", 1, process=9)  # another session, a follower behind
    assert verdict(h) == []


def test_an_indeterminate_write_may_or_may_not_have_happened() -> None:
    seen, unseen = H(), H()
    for h in (seen, unseen):
        h.write(1, None, "lost?")
        h.write(2, 3, "b", v=2 if h is seen else 1)
    seen.read(4, 5, "lost?", 1, synced=False, process=7)
    seen.read(6, 7, "b", 2, synced=True)
    unseen.read(4, 5, "b", 1, synced=True)
    assert verdict(seen) == []
    assert verdict(unseen) == []


def test_compare_and_set_one_winner() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h.cas(3, 6, "x", expect=1, v=2)
    h.cas(4, 7, "y", expect=1, v=None)  # BADVERSION: x got there first
    h.read(8, 9, "x", 2, synced=True)
    assert verdict(h) == []


def test_an_indeterminate_cas_that_must_have_applied() -> None:
    h = H()
    h.cas(1, None, "x", expect=0, v=None)
    h.cas(2, 3, "y", expect=1, v=2)  # only possible if x applied first
    assert verdict(h) == []


def test_failed_reads_and_unanswered_reads_say_nothing() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h._add(SREAD, 3, None, INFO)
    assert verdict(h) == []


# --- what it does not ---------------------------------------------------------------


def test_a_read_after_sync_may_not_be_stale() -> None:
    h = H()
    w = h.write(1, 2, "a", v=1)
    r = h.read(3, 4, "init", 0, synced=True)
    result = check(h.ops, INIT)
    assert [v.rule for v in result.violations] == ["linearizability"]
    assert {op.id for op in result.violations[0].ops} == {w.id, r.id}
    assert "minimal offending sub-history" in result.report()


def test_an_acknowledged_write_lost() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h.write(3, 4, "b", v=2)
    h.read(5, 6, "a", 1, synced=True)
    assert verdict(h) == ["linearizability"]


def test_a_read_from_the_future() -> None:
    h = H()
    h.read(1, 2, "a", 1)
    h.write(3, 4, "a", v=1)
    assert verdict(h) == ["linearizability"]


def test_writes_out_of_real_time_order() -> None:
    h = H()
    h.write(1, 2, "a", v=2)
    h.write(3, 4, "b", v=1)
    assert verdict(h) == ["linearizability"]


def test_two_cas_winners_on_one_version() -> None:
    h = H()
    h.cas(1, 3, "x", expect=0, v=1)
    h.cas(2, 4, "y", expect=0, v=1)
    assert verdict(h) == ["versions"]
    h = H()
    h.cas(1, 3, "x", expect=0, v=1)
    h.cas(2, 4, "y", expect=0, v=2)  # claims success against a version it could not see
    assert verdict(h) == ["linearizability"]


def test_a_cas_failed_against_the_version_it_expected() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h.cas(3, 4, "x", expect=1, v=None)
    h.read(5, 6, "a", 1, synced=True)  # nothing changed in between: the CAS had to win
    assert verdict(h) == ["linearizability"]


def test_a_value_at_two_versions_is_a_duplicate_apply() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h.read(3, 4, "a", 2)
    assert verdict(h) == ["versions"]


def test_a_version_nobody_wrote() -> None:
    h = H()
    h.write(1, 2, "a", v=1)
    h.write(3, 4, "b", v=3)
    assert verdict(h) == ["versions"]
    h.write(0, None, "maybe")  # an indeterminate write accounts for version 2
    assert verdict(h) == []


def test_a_read_of_a_value_never_written() -> None:
    h = H()
    h.read(1, 2, "zz", 4)
    assert verdict(h) == ["versions"]


def test_a_session_never_reads_back_in_time() -> None:
    h = H()
    h.write(1, 2, "a", v=1, process=1)
    h.write(3, 4, "b", v=2, process=1)
    h.read(5, 6, "b", 2, process=2, session=7)
    h.read(7, 8, "a", 1, process=2, session=7)  # stale is fine, going back is not
    assert verdict(h) == ["session order"]


def test_a_session_sees_its_own_writes() -> None:
    h = H()
    h.write(1, 2, "a", v=1, process=1, session=5)
    h.read(3, 4, "init", 0, process=1, session=5)
    assert verdict(h) == ["session order"]


def test_a_session_view_is_one_growing_prefix_across_keys() -> None:
    init = {"k": "init", "j": "init"}
    h = H()
    h.write(1, 2, "a", v=1, key="k", process=1, zxid=0x10)
    h.write(3, 4, "b", v=1, key="j", process=2, zxid=0x11, session=8)
    h.read(5, 6, "init", 0, key="k", process=2, zxid=0x2, session=8)  # behind 0x10 < 0x11
    assert verdict(h, init) == ["session order"]
    h.ops[-1] = Op(3, 2, 9, READ, "k", 5, 6, OK, "init", 0, zxid=0x2)  # another session
    assert verdict(h, init) == []


# --- shrinking --------------------------------------------------------------------------


def test_the_minimal_sub_history_is_the_few_ops_that_conflict() -> None:
    h, rng = H(), random.Random(7)
    t = 1
    for version, i in enumerate(range(60), start=1):  # a long, clean history...
        h.write(t, t + 2, f"w{i}", v=version, process=rng.randrange(4))
        h.read(t + 1, t + 3, f"w{i}", version, synced=True, process=rng.randrange(4))
        t += 4
    bad = h.read(t, t + 1, "w10", 11, synced=True)  # ...then one read far behind
    result = check(h.ops, INIT)
    assert [v.rule for v in result.violations] == ["linearizability"]
    sub = result.violations[0].ops
    assert bad in sub and len(sub) <= 3
    assert linearizable(sub, "init") is False
    for op in sub:  # minimal: without any one of them it passes (or loses its meaning)
        rest = [o for o in sub if o is not op]
        assert minimise(rest, "init") == rest or linearizable(rest, "init") is not False


# --- generated histories ------------------------------------------------------------


def _simulate(seed: int, procs: int, steps: int) -> list[Op]:
    """A history of a true atomic register: each op takes effect at one instant between
    its invocation and completion, some replies are lost, plain reads may lag."""
    rng = random.Random(seed)
    h = H()
    value, version, log = "init", 0, [("init", 0)]
    pending: dict[int, tuple[str, int]] = {}  # proc -> (kind, t0)
    t = 0
    for _ in range(steps):
        p = rng.randrange(procs)
        t += 1
        if p not in pending:
            kind = rng.choice([READ, SREAD, WRITE, CAS])
            pending[p] = (kind, t)
            continue
        kind, t0 = pending.pop(p)
        if kind == READ:
            v, n = log[rng.randrange(max(0, len(log) - 3), len(log))]
            h.read(t0, t, v, n, process=p)
        elif kind == SREAD:
            h.read(t0, t, value, version, synced=True, process=p)
        elif kind == WRITE:
            value, version = f"v{t}", version + 1
            log.append((value, version))
            h.write(t0, None if rng.random() < 0.1 else t, value, v=version, process=p)
        else:
            expect = rng.choice([version, version - 1 if version else version + 1])
            if expect == version:
                value, version = f"c{t}", version + 1
                log.append((value, version))
                lost = rng.random() < 0.1
                h.cas(t0, None if lost else t, value, expect, None if lost else version, process=p)
            else:
                h.cas(t0, t, f"x{t}", expect, None, process=p)
    return h.ops


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10**6), procs=st.integers(1, 5), steps=st.integers(2, 120))
def test_histories_of_a_true_register_pass(seed: int, procs: int, steps: int) -> None:
    ops = _simulate(seed, procs, steps)
    assert check(ops, INIT).ok, check(ops, INIT).report()


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 10**6), procs=st.integers(2, 5), steps=st.integers(10, 120))
def test_a_synced_read_made_stale_is_caught(seed: int, procs: int, steps: int) -> None:
    ops = _simulate(seed, procs, steps)
    # Make one synced read report a state older than a write that completed before it.
    for i, op in enumerate(ops):
        if op.kind != SREAD:
            continue
        before = [
            w
            for w in ops
            if w.kind in (WRITE, CAS) and w.status == OK and w.complete and w.complete < op.invoke
        ]
        if not before:
            continue
        last = max(before, key=lambda w: w.version or 0)
        older = [w for w in ops if w.kind in (WRITE, CAS) and w.status == OK]
        older = [w for w in older if (w.version or 0) < (last.version or 0)]
        stale = ("init", 0) if not older else (older[0].value, older[0].version)
        ops[i] = Op(op.id, op.process, 0, SREAD, "k", op.invoke, op.complete, OK, *stale)
        result = check(ops, INIT)
        assert not result.ok
        assert any(op.id in {o.id for o in v.ops} for v in result.violations)
        return


# --- the search against brute force -------------------------------------------------


def _brute_force(ops: list[Op], init: str) -> bool:
    """Try every order of the ops that respects real time: the model, by definition."""
    entries = _entries(ops, pins_of(ops))

    def extend(state: tuple[str, int], left: list[int]) -> bool:
        if not left:
            return True
        for i in left:
            e = entries[i]
            # i may go next only if no other op left had returned before i was called
            if any(entries[j].ret < e.call for j in left if j != i):
                continue
            new = _step(state, e)
            if new is not None and extend(new, [j for j in left if j != i]):
                return True
        return False

    return extend((init, 0), list(range(len(entries))))


@st.composite
def small_histories(draw: st.DrawFn) -> list[Op]:
    n = draw(st.integers(1, 6))
    times = draw(st.permutations(range(1, 2 * n + 1)))
    written = [f"w{i}" for i in range(n)]
    ops = []
    for i in range(n):
        t0, t1 = sorted(times[2 * i : 2 * i + 2])
        kind = draw(st.sampled_from([READ, SREAD, WRITE, CAS]))
        version = draw(st.integers(0, 4))
        if kind in (READ, SREAD):
            value = draw(st.sampled_from(["init", *written]))
            op = Op(i + 1, i, 0, kind, "k", t0, t1, OK, value, version)
        else:
            status = draw(st.sampled_from([OK, INFO] + [FAIL] * (kind == CAS)))
            ops_version = version if status == OK else None
            expected = draw(st.integers(0, 3)) if kind == CAS else None
            done = None if status == INFO else t1
            op = Op(i + 1, i, 0, kind, "k", t0, done, status, written[i], ops_version, expected)
        ops.append(op)
    return ops


@settings(max_examples=600, deadline=None)
@given(small_histories())
def test_the_search_agrees_with_brute_force(ops: list[Op]) -> None:
    assert linearizable(ops, "init") == _brute_force(ops, "init")
