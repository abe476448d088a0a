"""Run the selected workloads against both kinds of server, back to back.

For each workload, ZooKeeper and pyzk run one right after the other (the order flips
from one workload to the next, so a slow drift in machine load does not always favour
the same side); the machine's load average is recorded before each pair, because other
work shares this machine. Shared servers (one per kind and topology) are started when
first needed and kept; a workload marked ``fresh`` starts servers of its own.

Ensemble workloads first ask whether pyzk can form an ensemble at all: three pyzk
servers with a 3-server zoo.cfg must elect a leader. If they cannot, every ensemble
workload is skipped with the reason, and the run goes on.
"""

from __future__ import annotations

import os
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from bench.core import Context, Workload
from bench.servers import KINDS, Cluster, ensemble, standalone

# Figures that describe the workload rather than measure a server: no ratio.
NO_RATIO = frozenset(
    {"znodes", "znode_bytes", "sessions", "watchers", "rounds", "clients", "repeats"}
    | {"failed_repeats", "zkload_exit", "errors", "create_errors", "missed", "alive"}
)

# How long three pyzk servers get to elect a leader before we call ensembles unsupported.
ENSEMBLE_PROBE_S = 30.0


@dataclass
class Outcome:
    """One workload's figures for both kinds, and the pyzk/ZooKeeper ratios."""

    workload: Workload
    params: dict[str, Any]
    servers: dict[str, dict[str, Any]]
    order: list[str]
    loadavg_before: float
    wall_s: float
    ratios: dict[str, float] = field(default_factory=dict)

    def compute_ratios(self) -> None:
        """pyzk / ZooKeeper for every measured number both have, except those a workload
        marked ``not_comparable`` (with the reason) for either kind."""
        zk, pz = self.servers.get("zookeeper", {}), self.servers.get("pyzk", {})
        skip = NO_RATIO | zk.get("not_comparable", {}).keys() | pz.get("not_comparable", {}).keys()
        for key, a in zk.items():
            if key in skip:
                continue
            b = pz.get(key)
            ok = isinstance(a, int | float) and isinstance(b, int | float)
            if ok and not isinstance(a, bool) and a:
                self.ratios[key] = round(b / a, 3)


def probe_pyzk_ensemble(ctx: Context) -> str | None:
    """None if three pyzk servers elect a leader; else why not, in one sentence."""
    cluster = ensemble("pyzk", ctx.workdir("ensemble-probe", "pyzk"), ctx.settings)
    try:
        for s in cluster.servers:
            s.spawn()
        deadline = time.monotonic() + ENSEMBLE_PROBE_S
        modes: list[str | None] = []
        while time.monotonic() < deadline:
            for i, s in enumerate(cluster.servers, start=1):
                if not s.alive:
                    last = (s.log_tail(1) or "no output").strip()
                    return f"pyzk server {i} of a 3-server ensemble exited at start ({last})"
            modes = cluster.modes()
            if "standalone" in modes:
                return (
                    "pyzk does not run ensembles yet: given a zoo.cfg with 3 server.N lines, "
                    "it answers 'Mode: standalone'"
                )
            if modes.count("leader") == 1 and modes.count("follower") == 2:
                return None
            time.sleep(0.2)
        return f"3 pyzk servers elected no leader in {ENSEMBLE_PROBE_S:.0f}s (modes: {modes})"
    finally:
        cluster.stop()


class Runner:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.shared: dict[tuple[str, str], Cluster] = {}
        self.startups_ms: dict[str, list[float]] = {k: [] for k in KINDS}
        self.skipped: list[dict[str, str]] = []
        self._ensemble_reason: str | bool | None = False  # False: not probed yet

    def run(self, workloads: list[Workload]) -> list[Outcome]:
        outcomes = []
        try:
            for i, w in enumerate(workloads):
                if w.topology == "ensemble" and not self._ensemble_ok():
                    assert isinstance(self._ensemble_reason, str)
                    self.skipped.append({"workload": w.name, "reason": self._ensemble_reason})
                    continue
                order = list(KINDS) if i % 2 == 0 else list(reversed(KINDS))
                outcomes.append(self._run_one(w, order))
        finally:
            self.stop_shared()
        return outcomes

    def _ensemble_ok(self) -> bool:
        if self._ensemble_reason is False:
            self.ctx.log("ensemble: can pyzk run a 3-server ensemble? starting 3 pyzk servers")
            self._ensemble_reason = probe_pyzk_ensemble(self.ctx)
            if self._ensemble_reason:
                self.ctx.log(f"ensemble: SKIPPED, {self._ensemble_reason}")
        return self._ensemble_reason is None

    def _run_one(self, w: Workload, order: list[str]) -> Outcome:
        ctx = self.ctx
        load = os.getloadavg()[0]
        t0 = time.monotonic()
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in order}
        repeats = 1 if w.fresh else max(1, ctx.plan.repeats)
        for rep in range(repeats):
            for kind in order if rep % 2 == 0 else reversed(order):
                ctx.log(f"{w.name}: {kind} ...")
                runs[kind].append(self._attempt(w, kind))
                ctx.log(f"{w.name}: {kind} {_brief(w, runs[kind][-1])}")
        servers = {k: merge_runs(rs, w) for k, rs in runs.items()}
        out = Outcome(w, dict(w.params), servers, order, load, time.monotonic() - t0)
        out.compute_ratios()
        ctx.log(f"{w.name}: pyzk/zookeeper {_brief(w, out.ratios)}  (load avg {load:.2f})")
        return out

    def _attempt(self, w: Workload, kind: str) -> dict[str, Any]:
        try:
            cluster = None if w.fresh else self._shared(w.topology, kind)
            return w.run(self.ctx, kind, cluster)
        except Exception as e:
            self.ctx.log(f"{w.name}: {kind} FAILED: {e!r}")
            return {"error": repr(e), "traceback": traceback.format_exc()[-2000:]}

    def _shared(self, topology: str, kind: str) -> Cluster:
        key = (topology, kind)
        cluster = self.shared.get(key)
        if cluster is not None and all(s.alive for s in cluster.servers):
            return cluster
        if cluster is not None:
            cluster.stop()
        for other in [k for k in self.shared if k[0] != topology]:
            self.shared.pop(other).stop()  # one topology's servers at a time
        make = standalone if topology == "standalone" else ensemble
        cluster = make(kind, self.ctx.workdir(topology, kind), self.ctx.settings)
        ms = cluster.start()
        self.startups_ms[kind].append(round(ms, 1))
        self.ctx.log(f"started {topology} {kind} in {ms:.0f} ms: {cluster.hosts}")
        self.shared[key] = cluster
        return cluster

    def stop_shared(self) -> None:
        for cluster in self.shared.values():
            cluster.stop()
        self.shared.clear()


def merge_runs(runs: list[dict[str, Any]], w: Workload) -> dict[str, Any]:
    """One kind's figures over its repeats: the median of each number; the headline
    figures' range in ``spread``; errors kept if every repeat failed."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[-1]
    if len(runs) == 1:
        return ok[0]
    merged: dict[str, Any] = {}
    for key, first in ok[0].items():
        vals = [r.get(key) for r in ok]
        nums = [v for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
        merged[key] = round(statistics.median(nums), 3) if len(nums) == len(vals) else first
    merged["repeats"] = len(ok)
    merged["failed_repeats"] = len(runs) - len(ok)
    merged["spread"] = {
        m.key: [min(r[m.key] for r in ok), max(r[m.key] for r in ok)]
        for m in w.headline
        if all(isinstance(r.get(m.key), int | float) for r in ok)
    }
    return merged


def _brief(w: Workload, figures: dict[str, Any]) -> str:
    if "error" in figures:
        return "error"
    parts = []
    for m in w.headline:
        v = figures.get(m.key)
        if v is not None:
            parts.append(f"{m.key}={v:g}" if isinstance(v, int | float) else f"{m.key}={v}")
    return " ".join(parts)
