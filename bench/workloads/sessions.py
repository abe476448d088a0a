"""Idle sessions: the server's memory per open session, and how fast sessions open.

A fresh server of each kind; RSS once idle, then ``sessions`` raw sessions opened (one
socket each, handshake only), a ping on each to check they are all alive, RSS again
once idle. Memory per session is the RSS difference over the count: what the operating
system sees, so for the JVM it includes heap the collector has not handed back.
"""

from __future__ import annotations

import time
from typing import Any

from bench.core import HIGHER, LOWER, Context, Metric, Workload
from bench.herd import Herd
from bench.servers import Cluster, standalone

PER_SESSION = Metric("bytes_per_session", "memory per idle session", "B", LOWER)
OPEN_RATE = Metric("opened_per_sec", "sessions opened", "sessions/s", HIGHER)
RSS = Metric("rss_mb", "RSS with the sessions open", "MB", LOWER)


def idle_sessions(ctx: Context, kind: str, _cluster: Cluster | None) -> dict[str, Any]:
    p = ctx.plan
    cluster = standalone(kind, ctx.workdir("sessions", kind), ctx.settings)
    startup_ms = cluster.start()
    srv = cluster.servers[0]
    herd = Herd("127.0.0.1", srv.port, timeout_ms=20 * ctx.settings.tick_time_ms)
    try:
        time.sleep(p.settle_s)
        rss0 = srv.rss_bytes()
        cpu0, t0 = srv.cpu_seconds(), time.monotonic()
        herd.open(p.sessions)
        open_s = time.monotonic() - t0
        open_cpu_s = srv.cpu_seconds() - cpu0
        alive = herd.ping_all()
        time.sleep(p.settle_s)
        rss1 = srv.rss_bytes()
        return {
            "sessions": p.sessions,
            "alive": alive,
            "rss_before_mb": round(rss0 / 2**20, 1),
            "rss_mb": round(rss1 / 2**20, 1),
            "bytes_per_session": round((rss1 - rss0) / p.sessions),
            "opened_per_sec": round(p.sessions / open_s),
            "server_cpu_us_per_open": round(1e6 * open_cpu_s / p.sessions, 1),
            "startup_ms": round(startup_ms, 1),
        }
    finally:
        herd.close()
        cluster.stop()


def workloads() -> list[Workload]:
    return [
        Workload(
            name="idle-sessions",
            group="sessions",
            description="open N idle sessions on a fresh server (raw sockets): RSS delta / N",
            run=idle_sessions,
            headline=(PER_SESSION, RSS, OPEN_RATE),
            fresh=True,
        )
    ]
