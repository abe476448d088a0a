"""The vocabulary of the harness: a plan (how big), a workload (what), a metric (how read).

A workload is a function ``run(ctx, kind, cluster) -> metrics`` plus how to read its
metrics: which are headline figures, whether higher or lower is better, and the
pyzk/ZooKeeper ratio issue 9 asks for. The runner calls it once per kind of server,
back to back, and computes the ratios; workloads never compare kinds themselves.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.servers import Cluster, Settings

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class Plan:
    """How long and how big each workload runs."""

    preset: str
    seconds: float  # zkload's measured window
    warmup: float  # zkload's warm-up before the window (JIT, caches)
    keys: int  # znodes a get/set/mixed run spreads over
    sessions: int  # idle sessions
    znodes: int  # znodes for memory per znode and start-up after restart
    znode_bytes: int  # data per znode there
    watchers: int  # sessions watching the one znode in the fan-out
    fanout_rounds: int
    lock_clients: int  # kazoo clients contending for one Lock
    lock_seconds: float
    failover_rounds: int
    settle_s: float  # pause before reading RSS, so the server is idle
    profile_seconds: float
    repeats: int  # back-to-back pairs per workload on shared servers (medians reported)


PRESETS = {
    "full": Plan("full", 10, 2, 1024, 10000, 1_000_000, 100, 1000, 10, 8, 10, 3, 2.0, 10, 3),
    "quick": Plan("quick", 3, 1, 1024, 1000, 20_000, 100, 200, 5, 4, 3, 1, 1.0, 5, 1),
    # for the smoke test: everything runs, nothing is meaningful
    "tiny": Plan("tiny", 0.5, 0.2, 64, 50, 500, 100, 10, 2, 2, 0.5, 1, 0.2, 1, 1),
}


def plan_with(plan: Plan, **overrides: Any) -> Plan:
    return replace(plan, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    better: str  # HIGHER or LOWER
    target: float | None = None  # pyzk/ZooKeeper ratio asked for (issue 9), if any

    def meets(self, ratio: float | None) -> bool | None:
        if self.target is None or ratio is None:
            return None
        return ratio >= self.target if self.better == HIGHER else ratio <= self.target


@dataclass
class Context:
    """What every workload may use: the plan, shared settings, folders, pinning."""

    plan: Plan
    settings: Settings
    run_dir: Path  # scratch: server folders (on the same disk for both kinds)
    load_cpus: str | None
    log: Callable[[str], None] = print
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def workdir(self, *parts: str) -> Path:
        """A new folder under the run folder for one server or cluster."""
        p = self.run_dir.joinpath(*parts[:-1], f"{parts[-1]}-{next(self._ids)}")
        p.mkdir(parents=True, exist_ok=True)
        return p

    def unique_path(self, prefix: str) -> str:
        return f"/{prefix}-{os.getpid()}-{next(self._ids)}"


Runner = Callable[[Context, str, Cluster | None], dict[str, Any]]


@dataclass(frozen=True)
class Workload:
    name: str
    group: str  # latency, throughput, sessions, znodes, fanout, lock, ensemble
    description: str
    run: Runner
    headline: tuple[Metric, ...]
    params: dict[str, Any] = field(default_factory=dict)
    topology: str = "standalone"  # or "ensemble"
    fresh: bool = False  # True: starts (and stops) servers of its own
