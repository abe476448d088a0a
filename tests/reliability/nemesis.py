"""Faults injected into a running ensemble while the workload runs.

Each fault is held until the clients have completed ``hold_ops`` more operations (so it
overlaps real traffic and the majority is shown to keep serving), then repaired, and the
ensemble must settle (every server serving, one leader) before the next. Every wait
polls with a bound; a bound exceeded is a liveness failure, reported with the logs.

Kinds:

* ``kill-leader``: kill -9 the leader, then restart it; it must rejoin as a follower.
* ``pause-leader`` / ``pause-follower``: SIGSTOP a server, then SIGCONT.
* ``partition-leader`` / ``partition-follower``: cut a server off from the other two
  through the proxy, silently (``stall``: nothing delivered, nothing lost), then heal.
* ``reset-leader``: the same cut, with connections reset instead.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.ensemble.cluster import Ensemble
from tests.faultproxy import RESET, STALL

KINDS = (
    "kill-leader",
    "pause-leader",
    "pause-follower",
    "partition-leader",
    "partition-follower",
    "reset-leader",
)
# Bounds on the waits (the ensemble runs with 300 ms ticks: elections take about a second).
PROGRESS_BOUND_S = 60.0
SETTLE_BOUND_S = 60.0


class LivenessError(AssertionError):
    """The ensemble stopped making progress, or did not recover, within a bound."""


@dataclass
class Nemesis:
    ens: Ensemble
    progress: Callable[[], int]  # operations completed OK so far
    rng: random.Random
    hold_ops: int = 20
    counts: Counter[str] = field(default_factory=Counter)
    journal: list[str] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic)

    def run(self, kinds: list[str]) -> None:
        for kind in kinds:
            self.inject(kind)

    def inject(self, kind: str) -> None:
        what, _, role = kind.partition("-")
        target = self._pick(role)
        self._note(f"{kind} on server {target}")
        if what == "kill":
            self.ens.kill(target)
            self._hold(kind)
            self.ens.start([target], wait=False)
        elif what == "pause":
            self.ens.stop_signal(target)
            self._hold(kind)
            self.ens.cont_signal(target)
        else:
            self.ens.isolate(target, RESET if what == "reset" else STALL)
            self._hold(kind)
            self.ens.heal()
        self.counts[kind] += 1
        self.settle()

    def _pick(self, role: str) -> int:
        self.settle()
        leader = self.ens.leader()
        assert leader is not None
        if role == "leader":
            return leader
        return self.rng.choice([i for i in self.ens.ids if i != leader])

    def _hold(self, kind: str) -> None:
        """Keep the fault on until the majority has served ``hold_ops`` more operations."""
        start = self.progress()
        self._wait(
            lambda: self.progress() - start >= self.hold_ops,
            PROGRESS_BOUND_S,
            f"no progress during {kind}",
        )

    def settle(self) -> None:
        """Every server serving, one leader, and the clients getting answers again."""
        self.settle_servers()
        start = self.progress()
        self._wait(lambda: self.progress() > start, PROGRESS_BOUND_S, "no progress after repair")

    def settle_servers(self) -> None:
        """Every server serving, and one leader."""
        ens = self.ens
        self._wait(
            lambda: (
                ens.leader() is not None
                and all(ens.mode(i) in ("leader", "follower") for i in ens.ids)
            ),
            SETTLE_BOUND_S,
            "the ensemble did not settle",
        )

    def _wait(self, cond: Callable[[], bool], bound_s: float, what: str) -> None:
        deadline = time.monotonic() + bound_s
        while not cond():
            if time.monotonic() > deadline:
                raise LivenessError(f"{what} within {bound_s:.0f} s\n{self.ens.logs(30)}")
            time.sleep(0.05)

    def _note(self, text: str) -> None:
        self.journal.append(f"{time.monotonic() - self._t0:7.2f}s {text}")
