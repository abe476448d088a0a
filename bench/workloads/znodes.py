"""N znodes: memory per znode, bytes on disk, and start-up with them after a restart.

On a fresh server of each kind: the empty server's start-up and RSS; then N znodes of
``znode_bytes`` created through one pipelined raw session, 1,000 per parent
(``/bench-znodes-*/p0000/n0000``); RSS and bytes on disk (data and log folders); then a
clean stop (SIGTERM), a start on the same folders, the time from exec to the first
answered request, and how many znodes came back (the parents' numChildren). A server
that keeps its tree only in memory comes back empty: ``recovered`` tells, and then the
start-up figure is not comparable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from bench import wire
from bench.core import LOWER, Context, Metric, Workload
from bench.servers import Cluster, standalone

PER_PARENT = 1000
# Requests in flight while populating (ZooKeeper's globalOutstandingLimit is 1000).
WINDOW = 1000

PER_ZNODE = Metric("bytes_per_znode", "memory per znode", "B", LOWER)
RSS = Metric("rss_mb", "RSS with N znodes", "MB", LOWER, 0.25)
STARTUP = Metric("startup_loaded_ms", "start-up with N znodes", "ms", LOWER, 0.2)
STARTUP_EMPTY = Metric("startup_empty_ms", "start-up, empty", "ms", LOWER, 0.2)


def _paths(root: str, n: int) -> Iterator[tuple[str, bool]]:
    """(path, is_leaf) in creation order: each parent before its children."""
    for i in range(n):
        p, c = divmod(i, PER_PARENT)
        if c == 0:
            yield f"{root}/p{p:04d}", False
        yield f"{root}/p{p:04d}/n{c:04d}", True


def _populate(sess: wire.Session, root: str, n: int, data: bytes) -> dict[int, int]:
    sess.call(wire.create(sess.next_xid(), root, b""))
    reqs = (
        wire.create(sess.next_xid(), path, data if leaf else b"") for path, leaf in _paths(root, n)
    )
    return sess.pipeline(reqs, window=WINDOW)


def _count(sess: wire.Session, root: str, n: int) -> int:
    parents = (n + PER_PARENT - 1) // PER_PARENT
    total = 0
    for p in range(parents):
        r = sess.call(wire.exists(sess.next_xid(), f"{root}/p{p:04d}"))
        if r.err == wire.ZOK:
            total += wire.num_children(r.body)
    return total


def many_znodes(ctx: Context, kind: str, _cluster: Cluster | None) -> dict[str, Any]:
    p = ctx.plan
    cluster = standalone(kind, ctx.workdir("znodes", kind), ctx.settings)
    srv = cluster.servers[0]
    root = ctx.unique_path("bench-znodes")
    try:
        startup_empty_ms = cluster.start()
        time.sleep(p.settle_s)
        rss0, disk0 = srv.rss_bytes(), srv.data_bytes()
        sess = wire.Session("127.0.0.1", srv.port, io_timeout_s=120)
        t0 = time.monotonic()
        errs = _populate(sess, root, p.znodes, b"x" * p.znode_bytes)
        populate_s = time.monotonic() - t0
        sess.close()
        time.sleep(p.settle_s)
        rss1, disk1 = srv.rss_bytes(), srv.data_bytes()
        t_stop = time.monotonic()
        srv.stop()
        stop_ms = (time.monotonic() - t_stop) * 1000
        startup_loaded_ms = srv.start()
        sess = wire.Session("127.0.0.1", srv.port, io_timeout_s=120)
        recovered = _count(sess, root, p.znodes)
        sess.close()
        time.sleep(p.settle_s)
        rss2 = srv.rss_bytes()
        lost = recovered < p.znodes
        return {
            "not_comparable": {
                "startup_loaded_ms": f"came back with {recovered:,} of {p.znodes:,} znodes",
                "rss_after_restart_mb": f"came back with {recovered:,} of {p.znodes:,} znodes",
            }
            if lost
            else {},
            "znodes": p.znodes,
            "znode_bytes": p.znode_bytes,
            "create_errors": sum(v for k, v in errs.items() if k != wire.ZOK),
            "creates_per_sec": round(p.znodes / populate_s),
            "rss_empty_mb": round(rss0 / 2**20, 1),
            "rss_mb": round(rss1 / 2**20, 1),
            "bytes_per_znode": round((rss1 - rss0) / p.znodes),
            "disk_mb": round((disk1 - disk0) / 2**20, 1),
            "stop_ms": round(stop_ms, 1),
            "startup_empty_ms": round(startup_empty_ms, 1),
            "startup_loaded_ms": round(startup_loaded_ms, 1),
            "recovered": recovered,
            "rss_after_restart_mb": round(rss2 / 2**20, 1),
        }
    finally:
        cluster.stop()


def workloads() -> list[Workload]:
    return [
        Workload(
            name="znodes",
            group="znodes",
            description="N znodes on a fresh server: RSS delta / N, disk, restart start-up",
            run=many_znodes,
            headline=(PER_ZNODE, RSS, STARTUP, STARTUP_EMPTY),
            fresh=True,
        )
    ]
