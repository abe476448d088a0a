"""A whole ensemble in one process, driven by one seed, checked after every step.

Phase one (safety): time advances in small steps; each step delivers due messages, ticks
every live server, and may inject a fault drawn from the seed — a crash (losing what was
not carried out), a restart, a partition, a broken link, a heal, a pause (SIGSTOP: no
ticks, its input held until it thaws) — a client write to the leader, or a sync (a
leadership round started on every server that believes it leads). After every step
the checkers run:

* at most one leader is established per epoch;
* what serving servers have applied are prefixes of one another (one committed history);
* a write acknowledged to a client is in the history of every leader of a later epoch;
* a leader whose round a quorum confirmed has every write acknowledged before the round
  started (so a sync it answers is not stale, a thawed deposed leader included).

Phase two (liveness): everything heals and restarts; within a bound a leader must be
established and every server must serve the same history.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from pyzk.zab.election import ElectionTiming
from pyzk.zab.history import Entry
from pyzk.zab.leader import Leader
from pyzk.zab.messages import State, epoch_of
from pyzk.zab.peer import Peer, Timing
from tests.sim.network import Network, Pending, Profile
from tests.sim.node import SimNode

STEP_MS = 5
TIMING = Timing(
    tick_ms=100,
    init_limit=10,
    sync_limit=5,
    election=ElectionTiming(finalize_wait_ms=20, max_resend_ms=400),
    window=16,  # small, so learners that fall behind get SNAP syncs
)


class Violation(AssertionError):
    """An invariant broke: the seed reproduces it."""


@dataclass
class Rates:
    """Per-step probabilities of each fault, drawn from the seed."""

    crash: float
    restart: float
    partition: float
    heal: float
    break_link: float
    write: float
    pause: float
    crash_unlogged: float  # a leader dies between sending first and logging (send_first)

    @classmethod
    def draw(cls, rng: random.Random) -> Rates:
        return cls(
            crash=rng.choice([0.0, 0.001, 0.004]),
            restart=rng.choice([0.01, 0.05]),
            partition=rng.choice([0.0, 0.001, 0.003]),
            heal=rng.choice([0.005, 0.02]),
            break_link=rng.choice([0.0, 0.002, 0.01]),
            write=rng.choice([0.05, 0.2, 0.5]),
            pause=rng.choice([0.0, 0.002, 0.005]),
            crash_unlogged=rng.choice([0.0, 0.01, 0.05]),
        )


@dataclass
class Checker:
    committed: list[Entry] = field(default_factory=list)  # the one committed history
    leaders: dict[int, int] = field(default_factory=dict)  # epoch -> established leader
    acked: dict[int, bytes] = field(default_factory=dict)  # zxid -> payload, acknowledged
    newest: Entry | None = None  # the acknowledged write with the highest zxid

    def ack(self, zxid: int, payload: bytes) -> None:
        self.acked[zxid] = payload
        if self.newest is None or zxid > self.newest[0]:
            self.newest = (zxid, payload)

    def check_applied(self, sid: int, state: list[Entry]) -> None:
        c = self.committed
        n = min(len(c), len(state))
        for i in range(n):
            if c[i] != state[i]:
                raise Violation(
                    f"server {sid} applied {_fmt(state[i])} at position {i}, "
                    f"others applied {_fmt(c[i])}"
                )
        if len(state) > len(c):
            c.extend(state[len(c) :])

    def check_leader(self, epoch: int, sid: int, history: set[Entry]) -> None:
        other = self.leaders.setdefault(epoch, sid)
        if other != sid:
            raise Violation(f"two leaders established in epoch {epoch}: {other} and {sid}")
        # Every write acknowledged in an earlier epoch. (A leader thawed from a pause can
        # be established by acks its followers sent before they moved on to a newer
        # epoch: it lacks that epoch's writes, and commits nothing new, since nobody acks
        # its proposals; the sync check below is what keeps its answers from being stale.)
        missing = [
            z for z, p in self.acked.items() if epoch_of(z) < epoch and (z, p) not in history
        ]
        if missing:
            raise Violation(
                f"leader {sid} of epoch {epoch} lacks acknowledged writes "
                f"{[hex(z) for z in missing[:5]]}"
            )


def _holds(node: SimNode, peer: Peer, entry: Entry) -> bool:
    """Has the server applied or logged ``entry``? (Both are in zxid order.)"""
    i = bisect.bisect_left(node.state, entry)
    if i < len(node.state) and node.state[i] == entry:
        return True
    h = peer.history
    j = bisect.bisect_left(h.zxids, entry[0])
    return j < len(h.zxids) and h.zxids[j] == entry[0] and h.payloads[j] == entry[1]


def _fmt(e: Entry) -> str:
    return f"0x{e[0]:x}:{e[1]!r}"


class Cluster:
    def __init__(
        self,
        seed: int,
        voters: int = 3,
        observers: int = 0,
        trace: Callable[[str], None] | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.profile = Profile.draw(self.rng)
        self.rates = Rates.draw(self.rng)
        self.net = Network(random.Random(self.rng.random()), self.profile)
        ids = list(range(1, voters + observers + 1))
        self.voter_ids = frozenset(ids[:voters])
        self.observer_ids = frozenset(ids[voters:])
        self.nodes = {
            sid: SimNode(
                sid, self.voter_ids, self.observer_ids, TIMING, random.Random(self.rng.random())
            )
            for sid in ids
        }
        self.checker = Checker()
        self.now = 0
        self.trace = trace or (lambda s: None)
        self.writes = 0
        self.proposed: dict[int, tuple[int, bytes]] = {}  # zxid -> (leader, payload)
        self.faults = 0
        self.faulting = True  # until run() heals everything
        self.broken_rule = False
        self.frozen: dict[int, tuple[int, list[Pending]]] = {}  # sid -> (thaw at, held input)
        # Sync rounds under way: (server, its Peer, round, the newest write acknowledged
        # before it: committed writes form one history, so having it means having all).
        self.syncs: list[tuple[int, Peer, tuple[int, int], Entry | None]] = []
        self.confirmed_syncs = 0
        self.checked_leaders: set[tuple[int, int]] = set()  # (server, epoch) it led
        for n in self.nodes.values():
            n.start(self.now)
        self._process_all()

    # --- running ----------------------------------------------------------------------

    def run(self, fault_ms: int = 8000, settle_ms: int = 8000) -> None:
        while self.now < fault_ms:
            self.step(faults=True)
        self.heal_all()
        self.faulting = False
        deadline = self.now + settle_ms
        while self.now < deadline:
            self.step(faults=False)
            if self.converged():
                return
        raise Violation(f"no convergence {settle_ms} ms after healing: " + self.describe())

    def run_counting_syncs(self) -> int:
        """Run; how many sync rounds were confirmed (and checked)."""
        self.run()
        return self.confirmed_syncs

    def step(self, faults: bool) -> None:
        self.now += STEP_MS
        for p in self.net.due(self.now):
            if p.dst in self.frozen:
                self.frozen[p.dst][1].append(p)  # in its socket buffer until it thaws
                continue
            self._deliver(p)
        for sid in [s for s, (at, _) in self.frozen.items() if at <= self.now]:
            if faults:
                # A client's sync waited for it too, and may be read before anything
                # its peers sent meanwhile (the worst order for it).
                self._sync(self.nodes[sid])
            self._thaw(sid)
        for node in self.nodes.values():
            if node.peer is not None and node.sid not in self.frozen:
                node.peer.tick(self.now)
                self._process(node)
        if faults:
            self._maybe_fault()
            self._maybe_write()
            self._maybe_sync()

    def _deliver(self, p: Pending) -> None:
        node = self.nodes[p.dst]
        if p.kind == "broken":
            self.net.noticed(p.dst, p.src)
        if node.peer is None:
            return
        if p.kind == "broken":
            node.peer.disconnected(self.now, p.src)
        else:
            assert p.msg is not None
            node.peer.step(self.now, p.src, p.msg)
        self._process(node)
        self._check_syncs(node)

    def _thaw(self, sid: int) -> None:
        """It runs again and reads what piled up, before its overdue tick (as asyncio
        handles ready sockets before due timers)."""
        _, held = self.frozen.pop(sid)
        self._log(f"thaw {sid}")
        for p in held:
            self._deliver(p)

    def _process(self, node: SimNode) -> None:
        peer = node.peer
        if peer is None or not peer.has_ready():
            return
        ready = peer.ready()
        if ready.send_first:
            for to, msg in ready.messages:
                self.net.send(self.now, node.sid, to, msg)
            ready.messages = []
            if self.faulting and self.rng.random() < self.rates.crash_unlogged:
                self._log(f"crash {node.sid} before logging what it sent")
                self._crash(node.sid)
                return
        out = node.carry_out(ready)
        peer.advance(ready)
        for to, msg in out:
            self.net.send(self.now, node.sid, to, msg)
        # advance() may have committed more (the leader's own ack): carry that out too.
        if peer.has_ready():
            self._process(node)
            return
        self._check(node)

    def _process_all(self) -> None:
        for n in self.nodes.values():
            self._process(n)

    def _check(self, node: SimNode) -> None:
        peer = node.peer
        if peer is None:
            return
        if node.serving:
            self.checker.check_applied(node.sid, node.state)
            role = peer.role
            leader_of = role.epoch if isinstance(role, Leader) else None
            if leader_of is not None and (node.sid, leader_of) not in self.checked_leaders:
                self.checked_leaders.add((node.sid, leader_of))
                self.checker.check_leader(leader_of, node.sid, set(node.state))
        for zxid, (leader, payload) in list(self.proposed.items()):
            if leader == node.sid and any(e[0] == zxid for e in node.state[-50:]):
                if (zxid, payload) in node.state:
                    self.checker.ack(zxid, payload)  # the client hears OK now
                del self.proposed[zxid]

    # --- faults and load --------------------------------------------------------------

    def _crash(self, sid: int) -> None:
        self.nodes[sid].crash()
        # Its clients never hear about the writes it had not committed.
        self.proposed = {z: w for z, w in self.proposed.items() if w[0] != sid}
        self.net.isolate(self.now, sid, set(self.nodes))

    def _maybe_fault(self) -> None:
        r, rng, ids = self.rates, self.rng, set(self.nodes)
        x = rng.random()
        live = [s for s, n in self.nodes.items() if n.up]
        down = [s for s, n in self.nodes.items() if not n.up]
        if x < r.crash and live:
            sid = rng.choice(live)
            self._log(f"crash {sid}")
            self._crash(sid)
        elif x < r.crash + r.restart and down:
            sid = rng.choice(down)
            self._log(f"restart {sid}")
            self.net.restarted(sid)
            self.nodes[sid].start(self.now)
            self._process(self.nodes[sid])
        elif x < r.crash + r.restart + r.partition:
            side = set(rng.sample(sorted(ids), rng.randint(1, len(ids) - 1)))
            self._log(f"partition {sorted(side)} | {sorted(ids - side)}")
            self.net.partition(self.now, side, ids)
        elif x < r.crash + r.restart + r.partition + r.heal and self.net.blocked:
            self._log("heal")
            self.net.heal()
        elif x < r.crash + r.restart + r.partition + r.heal + r.break_link:
            a, b = rng.sample(sorted(ids), 2)
            self._log(f"break {a}-{b}")
            self.net.break_link(self.now, a, b)
        elif x < r.crash + r.restart + r.partition + r.heal + r.break_link + r.pause and live:
            sid = rng.choice(live)
            if sid not in self.frozen:
                until = self.now + rng.randint(200, 3000)
                self._log(f"pause {sid} until {until} ms")
                self.frozen[sid] = (until, [])

    def _maybe_write(self) -> None:
        if self.rng.random() >= self.rates.write:
            return
        for node in self.nodes.values():
            if node.sid in self.frozen:
                continue  # its clients wait; the others' go to whoever leads now
            if node.peer is not None and node.peer.serving and node.role == State.LEADING:
                # One to three writes at once: a leader proposes what a batch brought.
                payloads = []
                for _ in range(self.rng.choice((1, 1, 2, 3))):
                    self.writes += 1
                    payloads.append(f"w{self.writes}".encode())
                first = node.peer.propose(payloads)
                if first is not None:
                    for i, payload in enumerate(payloads):
                        self.proposed[first + i] = (node.sid, payload)
                    self._process(node)
                return

    def _maybe_sync(self) -> None:
        if self.rng.random() < self.rates.write:
            for node in self.nodes.values():
                if node.sid not in self.frozen:
                    self._sync(node)

    def _sync(self, node: SimNode) -> None:
        """A client's sync reaches a server that believes it leads: it starts a round."""
        if node.peer is None or node.role != State.LEADING:
            return
        token = node.peer.confirm_leadership()
        if token is not None:
            self.syncs.append((node.sid, node.peer, token, self.checker.newest))
            self._process(node)
            self._check_syncs(node)

    def _check_syncs(self, node: SimNode) -> None:
        """A confirmed round answers its syncs: the leader must have every write
        acknowledged before the round began (it answers once it applied them)."""
        if not self.syncs:
            return
        keep = []
        for sync in self.syncs:
            sid, peer, token, newest = sync
            if sid != node.sid:
                keep.append(sync)
                continue
            ok = peer.confirmed(token) if peer is node.peer else None
            if ok is None:
                continue  # crashed or no longer leading: never answered
            if not ok:
                keep.append(sync)
                continue
            self.confirmed_syncs += 1
            if newest is not None and not _holds(node, peer, newest):
                raise Violation(
                    f"server {sid} confirmed sync round {token} without the acknowledged "
                    f"write 0x{newest[0]:x}: a stale sync"
                )
        self.syncs = keep

    def _log(self, what: str) -> None:
        self.faults += 1
        self.trace(f"{self.now:>7} ms  {what}")

    def heal_all(self) -> None:
        self._log("heal all, restart all")
        for sid in list(self.frozen):
            self._thaw(sid)
        self.net.heal()
        for n in self.nodes.values():
            if not n.up:
                self.net.restarted(n.sid)
                n.start(self.now)
                self._process(n)

    # --- liveness ---------------------------------------------------------------------

    def converged(self) -> bool:
        nodes = list(self.nodes.values())
        leaders = [n for n in nodes if n.role == State.LEADING and n.serving]
        if len(leaders) != 1 or not all(n.serving for n in nodes):
            return False
        last = leaders[0].state[-1][0] if leaders[0].state else 0
        return all((n.state[-1][0] if n.state else 0) == last for n in nodes)

    def describe(self) -> str:
        parts = []
        for n in self.nodes.values():
            last = hex(n.state[-1][0]) if n.state else "0"
            parts.append(f"{n.sid}:{n.role.name}{'*' if n.serving else ''}@{last}")
        return ", ".join(parts)
