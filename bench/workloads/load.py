"""Closed-loop request workloads through zkload: latency (1 x 1) and throughput (8 x 64).

zkload's raw engine is the client (about 3 us of CPU per op, so the load core is not the
bottleneck: ``zkload_cpu_pct`` in the results says how busy it was). Each run makes its
own parent znode with ``keys`` children, measures ``seconds`` after ``warmup``, and
deletes everything it made.
"""

from __future__ import annotations

from typing import Any

from bench import zkload
from bench.core import HIGHER, LOWER, Context, Metric, Runner, Workload
from bench.servers import Cluster, ResourceWatch

# (name, zkload op, data size in bytes, read percentage for mixed)
OPS: tuple[tuple[str, str, int], ...] = (
    ("get-100B", "get", 100),
    ("set-100B", "set", 100),
    ("set-10KB", "set", 10 * 1024),
    ("createdelete-100B", "createdelete", 100),
    ("mixed90-100B", "mixed", 100),
)
# (shape name, clients, requests in flight per client, group)
SHAPES = (("1x1", 1, 1, "latency"), ("8x64", 8, 64, "throughput"))

OPS_PER_SEC = Metric("ops_per_sec", "throughput", "ops/s", HIGHER, 1.0)
P50 = Metric("p50_us", "p50 latency", "us", LOWER)
P99 = Metric("p99_us", "p99 latency", "us", LOWER, 1.0)
CPU_PER_OP = Metric("server_cpu_us_per_op", "server CPU per request", "us", LOWER)
# 3-server workloads: (ops, clients, in flight, connect only to a server in this mode,
# headline metrics, where the clients are)
ENSEMBLE_SHAPES = (
    (
        ("set-100B",),
        1,
        1,
        "follower",
        (P50, P99, OPS_PER_SEC),
        "on a follower (as two clients in three are): forwarded, proposed, logged by a quorum",
    ),
    (
        ("get-100B", "set-100B", "mixed90-100B"),
        8,
        64,
        None,
        (OPS_PER_SEC, P99, CPU_PER_OP),
        "spread over the 3 servers",
    ),
)


def _runner(op: str, size: int, clients: int, inflight: int, via: str | None = None) -> Runner:
    """``via``: connect only to a server in this mode (else zkload spreads the clients)."""

    def run(ctx: Context, kind: str, cluster: Cluster | None) -> dict[str, Any]:
        assert cluster is not None
        p = ctx.plan
        hosts = cluster.hosts
        if via is not None:
            modes = cluster.modes()
            chosen = [s.hosts for s, m in zip(cluster.servers, modes, strict=True) if m == via]
            hosts = chosen[0] if chosen else hosts  # none in that mode now: any server
        with ResourceWatch(cluster) as watch:
            rec = zkload.run(
                hosts,
                op,
                clients=clients,
                inflight=inflight,
                seconds=p.seconds,
                warmup=p.warmup,
                size=size,
                keys=p.keys,
                cpus=ctx.load_cpus,
            )
        lat = rec["latency_us"]
        out: dict[str, Any] = {
            "ops_per_sec": rec["ops_per_sec"],
            "p50_us": lat["p50"],
            "p90_us": lat["p90"],
            "p99_us": lat["p99"],
            "p999_us": lat["p999"],
            "max_us": lat["max"],
            "errors": rec["errors"],
            "errors_by_rc": rec["errors_by_rc"],
            "zkload_cpu_pct": rec["zkload_cpu_pct_of_core"],
            "zkload_exit": rec["exit_status"],
            **watch.result(),
        }
        # steady-state CPU (median of the samples) over the window's rate
        if out["ops_per_sec"]:
            out["server_cpu_us_per_op"] = round(out["server_cpu_pct"] * 1e4 / out["ops_per_sec"], 2)
            if not out["server_cpu_pct"]:  # --tiny windows: less than a clock tick sampled
                why = "no server CPU time sampled in the window"
                out["not_comparable"] = {CPU_PER_OP.key: why}
        else:  # a stalled server (or, in --tiny runs, a window too short for any reply)
            why = "completed no request in the window"
            out["not_comparable"] = {m.key: why for m in (OPS_PER_SEC, P50, P99, CPU_PER_OP)}
        if op == "mixed":
            out["read_p99_us"] = rec["read_latency_us"]["p99"]
            out["write_p99_us"] = rec["write_latency_us"]["p99"]
        return out

    return run


def workloads() -> list[Workload]:
    out = []
    for shape, clients, inflight, group in SHAPES:
        for name, op, size in OPS:
            headline = (
                (P50, P99, OPS_PER_SEC) if group == "latency" else (OPS_PER_SEC, P99, CPU_PER_OP)
            )
            out.append(
                Workload(
                    name=f"{name}-{shape}",
                    group=group,
                    description=f"zkload {op}, {size} B, {clients} client(s) x {inflight} "
                    "in flight",
                    run=_runner(op, size, clients, inflight),
                    headline=headline,
                    params={"op": op, "size": size, "clients": clients, "inflight": inflight},
                )
            )
    for names, clients, inflight, via, headline, where in ENSEMBLE_SHAPES:
        for name, op, size in OPS:
            if name not in names:
                continue
            out.append(
                Workload(
                    name=f"ensemble-{name}-{clients}x{inflight}",
                    group="ensemble",
                    description=f"zkload {op}, {size} B, {clients} client(s) x {inflight} "
                    f"in flight {where}",
                    run=_runner(op, size, clients, inflight, via),
                    headline=headline,
                    params={"op": op, "size": size, "clients": clients, "inflight": inflight},
                    topology="ensemble",
                )
            )
    return out
