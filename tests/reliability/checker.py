"""Does a history keep ZooKeeper's promises? Linearizable writes, sequentially consistent reads.

Theory of operation
-------------------
ZooKeeper promises (its Programmer's Guide, "Consistency Guarantees"): writes are
linearizable; a client's operations take effect in the order it sent them (FIFO client
order); a read may be stale but never goes back in time for its session, and a read
after ``sync`` on the same session sees every write that completed before the sync.

The checker holds a history (:mod:`.history`) to those promises in three passes:

1. **Version accounting**, per key. Values are unique, and setData bumps the version by
   one, so each value has one version and each version one value; a version nobody can
   have written (more gaps than indeterminate writes) is a phantom write.
2. **Session order**, per session in program order. A read never returns a version older
   than what the session already saw of that key (its own writes included), nor older
   than a write whose zxid the session has already passed on *any* key (the session's
   view is a prefix of the one zxid order that only grows).
3. **Linearizability**, per key (linearizability is local: a history is linearizable iff
   each object's sub-history is), by the Wing & Gong search with Lowe's memoisation
   ("Testing for linearizability", 2017) over a register model whose state is
   ``(value, version)``. Writes and CAS take effect between their invocation and their
   completion (indeterminate ones: any time after invocation, or never); a ``sync`` +
   read takes effect between the sync's invocation and the read's completion; a plain
   read may have taken effect any time *before* its completion (it may be stale), its
   other bounds being the session rules of pass 2.

The model is closed under taking sub-histories, so that a violation can be shrunk: a
write whose version is known (from its reply or from a read that saw its value) sets
that version, which must be above the current one; a CAS needs exactly its expected
version and yields that plus one; a write nobody saw yields the current version plus
one. Pass 1 covers what this relaxation gives up (the versions are gapless).

A violation is shrunk to a minimal offending sub-history: first the shortest failing
prefix (linearizability is prefix-closed), then delta debugging, keeping only
sub-histories in which every read still has the write it read and every CAS the write
that made its expected version, so the reduced failure is the same failure.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from tests.reliability.history import CAS, FAIL, INFO, OK, READ, SREAD, WRITE, Op

# Steps one key's search may take before it gives up (the verdict is then "unknown",
# reported, never counted as a pass). Histories with versions pinned by replies are
# nearly linear to check; this only stops a pathological one from hanging the suite.
SEARCH_BUDGET = 2_000_000
# Linearizability checks the shrinker may spend on one violation.
SHRINK_BUDGET = 3_000
_INF = 1 << 62

State = tuple[str, int]  # (value, version)


@dataclass(slots=True)
class Violation:
    rule: str  # which promise: "versions", "session order", "linearizability"
    message: str
    ops: list[Op]  # the minimal offending sub-history

    def __str__(self) -> str:
        lines = [f"VIOLATION ({self.rule}): {self.message}", "  minimal offending sub-history:"]
        lines += [op.describe() for op in sorted(self.ops, key=lambda o: (o.invoke, o.id))]
        return "\n".join(lines)


@dataclass(slots=True)
class Result:
    ops: int = 0  # operations looked at
    keys: int = 0
    violations: list[Violation] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # keys whose search ran out of budget

    @property
    def ok(self) -> bool:
        return not self.violations and not self.unknown

    def report(self) -> str:
        head = f"{self.ops} operations on {self.keys} keys: "
        if self.ok:
            return head + "linearizable writes, sequentially consistent reads"
        parts = [str(v) for v in self.violations]
        parts += [f"UNKNOWN: the search for key {k} ran out of budget" for k in self.unknown]
        return head + f"{len(self.violations)} violation(s)\n" + "\n".join(parts)


def check(ops: Iterable[Op], initial: dict[str, str]) -> Result:
    """Check a whole history; ``initial`` maps each key to its value at version 0."""
    history = [op for op in ops if _informative(op)]
    result = Result(ops=len(history), keys=len(initial))
    by_key: dict[str, list[Op]] = defaultdict(list)
    for op in history:
        by_key[op.key].append(op)
    for key, init in initial.items():
        key_ops = by_key.get(key, [])
        found = _accounting(key_ops, init)
        if found:
            result.violations += found
            continue
        verdict = linearizable(key_ops, init)
        if verdict is None:
            result.unknown.append(key)
        elif not verdict:
            sub = minimise(key_ops, init)
            result.violations.append(
                Violation(
                    "linearizability",
                    f"key {key}: no order of these operations is a register's",
                    sub,
                )
            )
    result.violations += _session_order(history)
    return result


def _informative(op: Op) -> bool:
    """Reads that never completed, or failed, say nothing; drop them."""
    if op.is_read:
        return op.status == OK
    return not (op.status == FAIL and op.kind == WRITE)  # a failed write had no effect


# --- pass 1: version accounting -------------------------------------------------------


def _accounting(ops: list[Op], init: str) -> list[Violation]:
    out: list[Violation] = []
    seen: dict[str, Op] = {}  # value -> first op that fixed its version
    at: dict[int, Op] = {}  # version -> first op that fixed its value
    writer = {op.value: op for op in ops if op.kind in (WRITE, CAS)}
    for op in sorted(ops, key=lambda o: o.invoke):
        if op.status != OK or op.version is None or op.value is None:
            continue
        if op.is_read and op.value != init and op.value not in writer:
            out.append(Violation("versions", f"{op.value!r} was read but never written", [op]))
            continue
        first = seen.setdefault(op.value, op)
        if first.version != op.version:
            ops_ = [first, op] + [writer[op.value]] * (op.value in writer)
            out.append(
                Violation(
                    "versions",
                    f"{op.value!r} seen at versions {first.version} and {op.version}",
                    _unique(ops_),
                )
            )
        other = at.setdefault(op.version, op)
        if other.value != op.value:
            out.append(
                Violation(
                    "versions",
                    f"version {op.version} holds both {other.value!r} and {op.value!r}",
                    [other, op],
                )
            )
    if init in seen and seen[init].version != 0:
        op = seen[init]
        out.append(Violation("versions", f"the initial value read at version {op.version}", [op]))
    if out:
        return out
    missing = sorted(set(range(1, max(at, default=0) + 1)) - set(at))
    unseen = [op for op in ops if op.kind in (WRITE, CAS) and op.value not in seen]
    if len(missing) > sum(1 for op in unseen if op.status == INFO):
        v = missing[0]
        around = [at[n] for n in (v - 1, v + 1) if n in at]
        out.append(
            Violation(
                "versions",
                f"versions {missing} but only "
                f"{sum(1 for op in unseen if op.status == INFO)} indeterminate writes: "
                f"a version no client wrote",
                around,
            )
        )
    return out


def _unique(ops: list[Op]) -> list[Op]:
    return list({op.id: op for op in ops}.values())


# --- pass 2: session order ------------------------------------------------------------


def _session_order(history: list[Op]) -> list[Violation]:
    """Per session, reads never go back: per key, nor behind a zxid already seen."""
    # Every write whose zxid is known, per key, by zxid.
    known: dict[str, list[tuple[int, int, Op]]] = defaultdict(list)
    writes = {(op.key, op.value): op for op in history if op.kind in (WRITE, CAS)}
    for op in history:
        if op.status == OK and op.zxid is not None and op.version:
            w = writes.get((op.key, op.value))
            if w is not None:
                known[op.key].append((op.zxid, op.version, w))
    for lst in known.values():
        lst.sort(key=lambda t: t[0])
    out: list[Violation] = []
    sessions: dict[tuple[int, int], list[Op]] = defaultdict(list)
    for op in history:
        if op.session:
            sessions[(op.process, op.session)].append(op)
    for ops in sessions.values():
        out += _one_session(sorted(ops, key=lambda o: o.invoke), known)
    return out


def _one_session(ops: list[Op], known: dict[str, list[tuple[int, int, Op]]]) -> list[Violation]:
    out: list[Violation] = []
    floor: dict[str, tuple[int, Op]] = {}  # key -> (version, op that showed it)
    zxid_floor: tuple[int, Op] | None = None
    for op in ops:
        if op.status != OK or op.version is None:
            continue
        if op.is_read:
            prev = floor.get(op.key)
            if prev is not None and op.version < prev[0]:
                out.append(
                    Violation(
                        "session order",
                        f"session 0x{op.session:x} read version {op.version} of {op.key} "
                        f"after it had seen version {prev[0]}",
                        [prev[1], op],
                    )
                )
            if zxid_floor is not None and op.zxid is not None:
                lst = known.get(op.key, [])
                i = bisect.bisect_right(lst, op.zxid, key=lambda t: t[0])
                j = bisect.bisect_right(lst, zxid_floor[0], key=lambda t: t[0])
                newer = [t for t in lst[i:j] if t[1] > op.version]
                if newer:
                    z, v, w = newer[-1]
                    out.append(
                        Violation(
                            "session order",
                            f"session 0x{op.session:x} had seen zxid 0x{zxid_floor[0]:x}, "
                            f"then read version {op.version} of {op.key}, older than "
                            f"version {v} (zxid 0x{z:x})",
                            _unique([zxid_floor[1], w, op]),
                        )
                    )
        if op.version >= floor.get(op.key, (-1, op))[0]:
            floor[op.key] = (op.version, op)
        if op.zxid is not None and (zxid_floor is None or op.zxid > zxid_floor[0]):
            zxid_floor = (op.zxid, op)
    return out


# --- pass 3: linearizability (Wing & Gong, Lowe) ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    call: int
    ret: int
    op: Op
    pin: int | None  # the version this write is known to have made

    @property
    def lazy(self) -> bool:
        """An indeterminate write nobody saw: tried after every other candidate."""
        return self.op.complete is None and self.pin is None


def pins_of(ops: list[Op]) -> dict[str, int]:
    """value -> the version its write made, from replies and from reads that saw it."""
    return {
        op.value: op.version
        for op in ops
        if op.status == OK and op.version is not None and op.value is not None
    }


def _entries(ops: list[Op], pins: dict[str, int]) -> list[_Entry]:
    """The search's view of each op: its window, and the version a write is known to make.

    A plain read may be stale, so it may take effect any time before it completed; it
    cannot before its value was written, so its window opens when that write was
    invoked (the same verdicts, and the search does not carry every read from the start).
    """
    made = {op.value: op.invoke for op in ops if op.kind in (WRITE, CAS)}
    out = []
    for op in ops:
        ret = _INF if op.complete is None else op.complete
        call = op.invoke
        if op.kind == READ:
            call = min(call, made.get(op.value or "", 0))
        pin = pins.get(op.value) if op.kind in (WRITE, CAS) and op.value is not None else None
        out.append(_Entry(call, ret, op, pin))
    return out


def _step(state: State, e: _Entry) -> State | None:
    """The register model: the state after ``e``, or None if ``e`` cannot happen now."""
    version = state[1]
    op = e.op
    if op.kind in (READ, SREAD):
        return state if (op.value, op.version) == state else None
    if op.kind == WRITE:
        if e.pin is None:
            return (op.value or "", version + 1)
        return (op.value or "", e.pin) if e.pin > version else None
    # CAS
    if op.status == FAIL:
        return state if version != op.expected else None
    if e.pin is not None:
        ok = version == op.expected and e.pin == version + 1
        return (op.value or "", e.pin) if ok else None
    # Indeterminate and never seen: applied now if it could be; "not applied" is the
    # same as taking effect after everything else, which the search may choose.
    return (op.value or "", version + 1) if version == op.expected else state


def _read_only(e: _Entry) -> bool:
    return e.op.kind in (READ, SREAD) or (e.op.kind == CAS and e.op.status == FAIL)


def linearizable(
    ops: list[Op], init: str, pins: dict[str, int] | None = None, budget: int = SEARCH_BUDGET
) -> bool | None:
    """Is this one key's history linearizable? None when the search ran out of budget.

    ``pins`` (default: learnt from ``ops``) are the versions writes are known to have
    made; a sub-history keeps what the whole history proved.
    """
    entries = _entries(ops, pins_of(ops) if pins is None else pins)
    n = len(entries)
    if n == 0:
        return True
    # A doubly linked list of call and return events in time order; node 0 is the head.
    events = sorted(
        [(e.call, 0, i) for i, e in enumerate(entries)]
        + [(e.ret, 1, i) for i, e in enumerate(entries)]
    )
    size = len(events) + 1
    nxt, prv = list(range(1, size + 1)), list(range(-1, size - 1))
    nxt[-1] = -1
    is_call = [False] * size
    index = [0] * size  # node -> entry index
    match = [0] * size  # call node -> its return node
    where: dict[tuple[int, int], int] = {}
    for node, (_, kind, i) in enumerate(events, start=1):
        is_call[node], index[node] = kind == 0, i
        where[(kind, i)] = node
    for i in range(n):
        match[where[(0, i)]] = where[(1, i)]

    def lift(c: int) -> None:
        for x in (c, match[c]):
            nxt[prv[x]] = nxt[x]
            if nxt[x] != -1:
                prv[nxt[x]] = prv[x]

    def unlift(c: int) -> None:
        for x in (match[c], c):
            nxt[prv[x]] = x
            if nxt[x] != -1:
                prv[nxt[x]] = x

    # Versions only grow, so ops whose version is known take effect in version order:
    # of those, only the next one is ever a candidate.
    by_pin = sorted((e.pin, i) for i, e in enumerate(entries) if e.pin is not None)
    rank = {i: r for r, (_, i) in enumerate(by_pin)}
    taken = [0]  # how many of them have taken effect

    def candidates() -> list[int]:
        """Calls before the earliest pending return: the ops that may take effect next.

        Reads first (taking one that holds is never wrong), then the next write in
        version order, then writes nobody saw: taking one of those early rarely helps
        (its only use is to make the version a CAS expects) and often leads nowhere.
        """
        reads: list[int] = []
        writes: list[int] = []
        late: list[int] = []
        node = nxt[0]
        while node != -1 and is_call[node]:
            i = index[node]
            e = entries[i]
            if _read_only(e):
                reads.append(node)
            elif e.pin is not None:
                if rank[i] == taken[0]:
                    writes.append(node)
            else:
                (late if e.lazy else writes).append(node)
            node = nxt[node]
        return reads + writes + late

    state: State = (init, 0)
    linearized = 0
    cache: set[tuple[int, State]] = set()
    frames: list[tuple[list[int], int, State]] = []  # (candidates, the one taken, state)
    cands, k = candidates(), 0
    steps = 0
    while nxt[0] != -1:
        while k < len(cands):
            steps += 1
            if steps > budget:
                return None
            node = cands[k]
            i = index[node]
            new = _step(state, entries[i])
            if new is not None:
                bits = linearized | (1 << i)
                if (bits, new) not in cache:
                    cache.add((bits, new))
                    frames.append((cands, k, state))
                    state, linearized = new, bits
                    taken[0] += i in rank
                    lift(node)
                    cands, k = candidates(), 0
                    break
            k += 1
        else:
            # No candidate can take effect: undo the last choice and try the next one.
            while True:
                if not frames:
                    return False
                cands, k, state = frames.pop()
                node = cands[k]
                linearized &= ~(1 << index[node])
                taken[0] -= index[node] in rank
                unlift(node)
                # A read that held when it was taken is never worse taken early: if
                # that failed, no other choice at this depth can succeed.
                if not _read_only(entries[index[node]]):
                    break
            k += 1
    return True


# --- shrinking ------------------------------------------------------------------------


def minimise(ops: list[Op], init: str, budget: int = SHRINK_BUDGET) -> list[Op]:
    """A minimal sub-history of a non-linearizable key history that still fails."""
    calls = [0]
    pins = pins_of(ops)

    def fails(sub: list[Op]) -> bool:
        if calls[0] >= budget:
            return False
        calls[0] += 1
        return _closed(sub, ops, init) and linearizable(sub, init, pins) is False

    sub = _ddmin(_shortest_prefix(ops, init, fails), fails)
    # Show what the whole history proved about the indeterminate writes kept.
    return [
        replace(op, version=pins[op.value])
        if op.status == INFO and op.value in pins and op.kind != READ
        else op
        for op in sub
    ]


def _shortest_prefix(ops: list[Op], init: str, fails: Callable[[list[Op]], bool]) -> list[Op]:
    times = sorted({op.invoke for op in ops})
    lo, hi = 0, len(times) - 1
    best = ops
    while lo <= hi:
        mid = (lo + hi) // 2
        cand = _prefix(ops, times[mid])
        if fails(cand):
            best, hi = cand, mid - 1
        else:
            lo = mid + 1
    return best


def _prefix(ops: list[Op], t: int) -> list[Op]:
    """The history as it stood at time ``t``: later completions become indeterminate."""
    out = []
    for op in ops:
        if op.invoke > t:
            continue
        if op.complete is not None and op.complete > t:
            if op.is_read:
                continue  # a read still in flight says nothing
            op = replace(op, complete=None, status=INFO)
        out.append(op)
    return out


def _closed(sub: list[Op], full: list[Op], init: str) -> bool:
    """Does every read keep its write, and every CAS the write that made its version?"""
    values = {op.value for op in sub if op.kind in (WRITE, CAS)}
    ids = {op.id for op in sub}
    maker: dict[int, Op] = {}
    for op in full:
        if op.kind in (WRITE, CAS) and op.status == OK and op.version is not None:
            maker[op.version] = op
    for op in full:  # an indeterminate write is pinned by a read that saw its value
        if op.is_read and op.version is not None and op.version not in maker:
            w = next((x for x in full if x.kind in (WRITE, CAS) and x.value == op.value), None)
            if w is not None:
                maker[op.version] = w
    unpinned = {op.id for op in full if op.status == INFO and op not in maker.values()}
    for op in sub:
        if op.is_read and op.value != init and op.value not in values:
            return False
        if op.kind != CAS or op.expected is None:
            continue
        # The version this CAS's outcome rests on: its expected one if it won, the one
        # after that if it lost (the version had moved on).
        needed = op.expected + 1 if op.status == FAIL else op.expected
        if needed <= 0:
            continue
        need = maker.get(needed)
        if need is not None:
            if need.id not in ids:
                return False
        elif not unpinned <= ids or any(v < needed and w.id not in ids for v, w in maker.items()):
            return False  # made by writes nobody saw: keep them and all before them
    return True


def _ddmin(ops: list[Op], fails: Callable[[list[Op]], bool]) -> list[Op]:
    """Zeller's delta debugging: drop chunks while the failure stays."""
    n = 2
    while len(ops) >= 2:
        size = -(-len(ops) // n)
        chunks = [ops[i : i + size] for i in range(0, len(ops), size)]
        for chunk in chunks:
            drop = {op.id for op in chunk}
            rest = [op for op in ops if op.id not in drop]
            if rest and fails(rest):
                ops, n = rest, max(n - 1, 2)
                break
        else:
            if n >= len(ops):
                break
            n = min(len(ops), 2 * n)
    return ops
