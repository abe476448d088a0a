"""Watch fan-out: one setData notifying W watchers, each in a session of its own.

W raw sessions each set a data watch on one znode (getData with watch); a separate
session sends setData; we time from just before that send to each watcher's
notification (xid -1), read with one selector on the load core. A round re-arms the
watches; the figures are medians over the rounds. Reading W sockets in Python costs a
few microseconds each, the same for both servers: a floor under ``all_notified_ms``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import wire
from bench.core import LOWER, Context, Metric, Workload
from bench.herd import Herd
from bench.servers import Cluster

ALL = Metric("all_notified_ms", "time until all watchers notified", "ms", LOWER, 1.0)
P50 = Metric("p50_notified_ms", "median watcher notified", "ms", LOWER)
# How long a round may wait for its notifications.
ROUND_TIMEOUT_S = 30.0


def _round(herd: Herd, writer: wire.Session, path: str, xid: int) -> tuple[list[float], int]:
    """Arm every watch, fire them with one set; (latencies in ms, watchers missed)."""
    herd.send_all(lambda i: wire.get_data(xid, path, watch=True))
    armed = herd.collect(lambda r: r.xid == xid, ROUND_TIMEOUT_S)
    if len(armed) < len(herd):
        raise RuntimeError(f"only {len(armed)} of {len(herd)} watches were set")
    t0 = time.monotonic()
    writer.sock.sendall(wire.set_data(writer.next_xid(), path, b"%d" % xid))
    got = herd.collect(lambda r: r.xid == wire.XID_NOTIFICATION, ROUND_TIMEOUT_S)
    writer.next_reply()
    return sorted((t - t0) * 1000 for t in got.values()), len(herd) - len(got)


def watch_fanout(ctx: Context, kind: str, cluster: Cluster | None) -> dict[str, Any]:
    assert cluster is not None
    p = ctx.plan
    srv = cluster.servers[0]
    path = ctx.unique_path("bench-fanout")
    writer = wire.Session("127.0.0.1", srv.port)
    writer.call(wire.create(writer.next_xid(), path, b"0"))
    herd = Herd("127.0.0.1", srv.port, timeout_ms=20 * ctx.settings.tick_time_ms)
    try:
        herd.open(p.watchers)
        rounds = [_round(herd, writer, path, r + 1) for r in range(p.fanout_rounds)]
    finally:
        herd.close()
        writer.call(wire.delete(writer.next_xid(), path))
        writer.close()
    lasts = [lat[-1] for lat, _ in rounds if lat]
    return {
        "watchers": p.watchers,
        "rounds": p.fanout_rounds,
        "all_notified_ms": round(statistics.median(lasts), 2) if lasts else None,
        "all_notified_best_ms": round(min(lasts), 2) if lasts else None,
        "p50_notified_ms": round(statistics.median(lat[len(lat) // 2] for lat, _ in rounds), 2),
        "first_notified_ms": round(statistics.median(lat[0] for lat, _ in rounds), 2),
        "missed": sum(m for _, m in rounds),
    }


def workloads() -> list[Workload]:
    return [
        Workload(
            name="watch-fanout",
            group="fanout",
            description="one setData notifying W watchers (one raw session each)",
            run=watch_fanout,
            headline=(ALL, P50),
        )
    ]
