"""What a result needs to be read later: machine, versions, settings, disk, caveats."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.core import Context
from bench.report import failed_workloads
from bench.servers import ZK_JAR

BUSY_ZKLOAD_PCT = 70.0


def _cmd(*cmd: str) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr) else "?"


def disk_of(path: Path) -> dict[str, Any]:
    """The mount (device, file system) a folder is on, from /proc/mounts."""
    real = str(path.resolve())
    best = ("", "?", "?")
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, mnt, fstype = line.split()[:3]
        inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
        if inside and len(mnt) >= len(best[0]):
            best = (mnt, dev, fstype)
    return {"path": real, "mount": best[0], "device": best[1], "fstype": best[2]}


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(mem_kb / 2**20, 1),
        "kernel": f"Linux {platform.release()}",
    }


def versions() -> dict[str, str]:
    repo = Path(__file__).resolve().parent.parent
    try:
        pyzk = metadata.version("pyzk")
    except metadata.PackageNotFoundError:
        pyzk = "?"
    commit = _cmd("git", "-C", str(repo), "rev-parse", "--short", "HEAD")
    dirty = _cmd("git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no")
    return {
        "pyzk": f"{pyzk} ({commit}{', modified' if dirty not in ('?', '') else ''})",
        "python": platform.python_version(),
        "zookeeper": _cmd(
            "java", "-cp", str(ZK_JAR), "org.apache.zookeeper.version.VersionInfoMain"
        ).replace("Apache ZooKeeper, version ", ""),
        "java": _cmd("java", "-version"),
        "zkload": "1.1 (bench/zkload, raw engine)",
    }


def static_meta(ctx: Context) -> dict[str, Any]:
    """Everything known before the run (the scratch folder still exists)."""
    s = ctx.settings
    keys = ", ".join(f"{k}={v}" for k, v in s.keys().items())
    return {
        "machine": machine(),
        "versions": versions(),
        "plan": {k: v for k, v in vars(ctx.plan).items()},
        "settings": {**s.keys(), "zookeeper_jvm": f"-Xmx{s.heap_mb}m"},
        "settings_text": f"{keys}; ZooKeeper -Xmx{s.heap_mb}m",
        "disk": disk_of(ctx.run_dir),
        "pinning": (
            f"servers on CPU {s.server_cpus}, load generators and the harness on CPU "
            f"{ctx.load_cpus} (taskset)"
            if s.server_cpus
            else "none"
        ),
        "preset": ctx.plan.preset,
        "loadavg_start": os.getloadavg(),
    }


def _interference(results: list[dict[str, Any]]) -> list[str]:
    others = [
        (r[k]["others_cpu_pct"], r[k].get("steal_pct", 0.0), r["workload"], k)
        for r in results
        for k in ("zookeeper", "pyzk")
        if isinstance(r.get(k, {}).get("others_cpu_pct"), int | float)
    ]
    if not others:
        return []
    worst = max(others)
    return [
        "Interference, measured: during the zkload runs, other processes used a median "
        f"{statistics.median(o[0] for o in others):.0f}% of the server core (worst "
        f"{worst[0]:.0f}%, {worst[2]} on {worst[3]}) and the hypervisor stole a median "
        f"{statistics.median(o[1] for o in others):.0f}% (`others_cpu_pct`, `steal_pct` "
        "in each workload's figures). A server that was given less of its core shows "
        "less throughput and longer tails than it would on a quiet machine."
    ]


def notes_for(doc: dict[str, Any]) -> list[str]:
    """The caveats a reader must know, from the figures themselves."""
    meta, results = doc["meta"], doc["results"]
    loads = [r["loadavg_before"] for r in results]
    notes = [
        f"Shared machine: {meta['machine']['cpus']} CPUs, used at the same time by other "
        "engineers' test runs, so every figure is noisy. Each workload ran on ZooKeeper and "
        "pyzk back to back (the order alternates between workloads); the 1-minute load "
        "average before each pair was "
        + (f"median {statistics.median(loads):.2f}, max {max(loads):.2f}." if loads else "n/a.")
        + " Compare ratios, and rerun before trusting a small difference.",
        f"Pinning: {meta['pinning']}. "
        + (
            "With one core, the JVM's JIT and GC threads share it with ZooKeeper's request "
            "threads; pyzk is one thread."
            if meta["pinning"] != "none"
            else "Unpinned: ZooKeeper may use both cores (pyzk is one thread), and the "
            "servers share them with the load generator."
        ),
        *_interference(results),
        "Memory per session and per znode is the RSS difference divided by the count, as the "
        "operating system sees it: for the JVM that includes heap grown and not returned.",
    ]
    zn = next((r for r in results if r["workload"] == "znodes"), None)
    if zn and "recovered" in zn.get("pyzk", {}):
        got, n = zn["pyzk"]["recovered"], zn["pyzk"]["znodes"]
        if got < n:
            notes.append(
                f"pyzk came back with {got:,} of {n:,} znodes after a clean restart: it keeps "
                "writes in memory only (no write-ahead log yet), while ZooKeeper fsyncs each "
                "write before acknowledging it (forceSync=yes). Write figures (set, "
                "createdelete, mixed, znode creation) compare in-memory pyzk with durable "
                "ZooKeeper, and pyzk's start-up with N znodes is that of an empty server."
            )
        else:
            notes.append(f"Both servers came back with all {n:,} znodes after a restart.")
    busy = [
        r["workload"]
        for r in results
        for k in ("zookeeper", "pyzk")
        if (r.get(k, {}).get("zkload_cpu_pct") or 0) > BUSY_ZKLOAD_PCT
    ]
    if busy:
        notes.append(
            f"zkload used more than {BUSY_ZKLOAD_PCT:.0f}% of its core in "
            f"{', '.join(sorted(set(busy)))}: the client may have capped those figures."
        )
    failed = failed_workloads(doc)
    if failed:
        notes.append(f"Workloads with errors (see All figures): {', '.join(failed)}.")
    if doc["skipped"]:
        notes.append(f"Skipped: {doc['skipped'][0]['reason']}.")
    if doc["profiles"]:
        notes.append(
            "Flame graphs were recorded in separate runs after the measurements (py-spy "
            "pauses the process to sample), so they do not affect the figures."
        )
    notes.append(
        "Latency and throughput come from zkload (C, raw protocol engine); start-up is from "
        "exec to the first answered request; fan-out and idle sessions use raw sockets "
        "from Python on the load core; the lock workload uses kazoo."
    )
    return notes
