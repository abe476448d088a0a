"""Every workload, in the order a run takes them, and selection by name or group.

Standalone workloads on shared servers come first (one server of each kind, started
once), then those that start fresh servers (memory, start-up), then the ensemble ones.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from bench.core import Workload
from bench.workloads import failover, fanout, load, lock, sessions, znodes


def all_workloads() -> list[Workload]:
    loads = load.workloads()
    return [
        *(w for w in loads if w.topology == "standalone"),
        *fanout.workloads(),
        *lock.workloads(),
        *sessions.workloads(),
        *znodes.workloads(),
        *(w for w in loads if w.topology == "ensemble"),
        *failover.workloads(),
    ]


def select(patterns: list[str], ensemble: bool) -> list[Workload]:
    """Workloads whose name or group matches a pattern (``*`` = all); ensemble ones only
    with ``ensemble``."""
    out = []
    for w in all_workloads():
        if w.topology == "ensemble" and not ensemble:
            continue
        if any(fnmatchcase(w.name, p) or fnmatchcase(w.group, p) for p in patterns):
            out.append(w)
    return out
