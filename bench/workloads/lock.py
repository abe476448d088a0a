"""Lock contention with kazoo's Lock recipe: what a real Python client sees.

``lock_clients`` KazooClients (a session each, a thread each) loop on one Lock:
acquire, release, again, for ``lock_seconds``. Each acquisition is a create of an
ephemeral sequential znode, getChildren, a watch on the predecessor and a delete, so
this exercises writes, children lists and watch delivery together. kazoo is pure
Python: the load core may be the bottleneck here, for both servers alike.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from bench.core import HIGHER, LOWER, Context, Metric, Workload
from bench.servers import Cluster

RATE = Metric("acquisitions_per_sec", "lock acquisitions", "1/s", HIGHER)
P99 = Metric("acquire_p99_ms", "p99 acquire wait", "ms", LOWER)
ACQUIRE_TIMEOUT_S = 30.0


def _pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def lock_contention(ctx: Context, kind: str, cluster: Cluster | None) -> dict[str, Any]:
    from kazoo.client import KazooClient  # the bench extra; imported when used

    assert cluster is not None
    p = ctx.plan
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    path = ctx.unique_path("bench-lock")
    clients = [KazooClient(hosts=cluster.hosts, timeout=20.0) for _ in range(p.lock_clients)]
    waits: list[list[float]] = [[] for _ in clients]
    failures: list[str] = []
    start = threading.Barrier(len(clients) + 1)
    stop_at = [0.0]

    def contend(i: int) -> None:
        lock = clients[i].Lock(path, f"c{i}")
        start.wait()
        try:
            while time.monotonic() < stop_at[0]:
                t0 = time.monotonic()
                if not lock.acquire(timeout=ACQUIRE_TIMEOUT_S):
                    failures.append("timeout")
                    continue
                waits[i].append((time.monotonic() - t0) * 1000)
                lock.release()
        except Exception as e:  # recorded, not raised: the other kind still runs
            failures.append(repr(e))

    try:
        for c in clients:
            c.start(timeout=30)
        threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(clients))]
        for t in threads:
            t.start()
        stop_at[0] = time.monotonic() + p.lock_seconds
        start.wait()
        for t in threads:
            t.join(p.lock_seconds + ACQUIRE_TIMEOUT_S + 10)
        clients[0].delete(path, recursive=True)
    finally:
        for c in clients:
            c.stop()
            c.close()
    all_waits = sorted(w for ws in waits for w in ws)
    return {
        "clients": p.lock_clients,
        "acquisitions": len(all_waits),
        "acquisitions_per_sec": round(len(all_waits) / p.lock_seconds, 1),
        "acquire_p50_ms": round(_pct(all_waits, 0.5), 2),
        "acquire_p99_ms": round(_pct(all_waits, 0.99), 2),
        "failures": failures[:5],
    }


def workloads() -> list[Workload]:
    return [
        Workload(
            name="kazoo-lock",
            group="lock",
            description="kazoo Lock recipe, C clients contending for one lock",
            run=lock_contention,
            headline=(RATE, P99),
        )
    ]
