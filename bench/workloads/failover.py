"""Failover in a 3-server ensemble: SIGKILL the leader, time until a write works again.

Each round starts a fresh ensemble (its start-up until a leader answers is recorded
too), finds the leader with ``srvr``, and runs ``zkload --op failover`` against the two
survivors: it checks a write works, kills the leader, and retries setData until one
succeeds (reconnecting to a survivor as the C client does). The figure is that outage.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import zkload
from bench.core import LOWER, Context, Metric, Workload
from bench.servers import Cluster, ensemble

FAILOVER = Metric("failover_ms", "write outage after the leader dies", "ms", LOWER, 1.0)
START = Metric("ensemble_startup_ms", "ensemble start-up until a leader", "ms", LOWER)
# How long after start-up an ensemble may take to elect its first leader.
ELECTION_TIMEOUT_S = 60.0


def _wait_leader(cluster: Cluster, timeout_s: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cluster.leader() is not None:
            return time.monotonic()
        time.sleep(0.05)
    raise RuntimeError(f"{cluster.kind} ensemble elected no leader: modes {cluster.modes()}")


def _round(ctx: Context, kind: str) -> tuple[float, dict[str, Any]]:
    cluster = ensemble(kind, ctx.workdir("failover", kind), ctx.settings)
    try:
        cluster.start()
        t_leader = _wait_leader(cluster, ELECTION_TIMEOUT_S)
        startup_ms = (t_leader - min(s.spawned_at for s in cluster.servers)) * 1000
        leader = cluster.leader()
        assert leader is not None
        survivors = ",".join(s.hosts for s in cluster.servers if s is not leader)
        rec = zkload.failover(survivors, leader.pid)
        leader.forget()
        return startup_ms, rec
    finally:
        cluster.stop()


def leader_failover(ctx: Context, kind: str, _cluster: Cluster | None) -> dict[str, Any]:
    rounds = [_round(ctx, kind) for _ in range(ctx.plan.failover_rounds)]
    outages = [rec["failover_ms"] for _, rec in rounds]
    return {
        "rounds": len(rounds),
        "failover_ms": round(statistics.median(outages), 1),
        "failover_all_ms": outages,
        "ensemble_startup_ms": round(statistics.median(s for s, _ in rounds), 1),
        "reconnects": [rec["reconnects"] for _, rec in rounds],
    }


def workloads() -> list[Workload]:
    return [
        Workload(
            name="ensemble-failover",
            group="ensemble",
            description="kill -9 the leader of a 3-server ensemble; time to the next write",
            run=leader_failover,
            headline=(FAILOVER, START),
            topology="ensemble",
            fresh=True,
        )
    ]
