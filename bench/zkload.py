"""Build and run zkload, the C load generator in ``bench/zkload`` (see its README)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ZKLOAD_DIR = Path(__file__).resolve().parent / "zkload"
BINARY = ZKLOAD_DIR / "zkload"
# zkload gives up on requests that do not drain within 10 s after its window, and on
# connecting after 10 s; on top of the window, allow for setup and cleanup.
SLACK_S = 120.0


class ZkloadError(RuntimeError):
    pass


def build() -> Path:
    """``make -C bench/zkload``; needs gcc and libzookeeper-mt-dev (``make zookeeper``)."""
    if shutil.which("make") is None:
        raise ZkloadError("make is not installed")
    r = subprocess.run(
        ["make", "-s", "-C", str(ZKLOAD_DIR)], capture_output=True, text=True, timeout=120
    )
    if r.returncode != 0 or not BINARY.exists():
        raise ZkloadError(
            "cannot build zkload (needs gcc and libzookeeper-mt-dev: `make zookeeper`):\n"
            + r.stderr[-2000:]
        )
    return BINARY


def _pin(cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus] if cpus else []


def run(
    hosts: str,
    op: str,
    *,
    clients: int,
    inflight: int,
    seconds: float,
    warmup: float,
    size: int = 100,
    keys: int = 1024,
    read_pct: int = 90,
    cpus: str | None = None,
    engine: str = "raw",
) -> dict[str, Any]:
    """One closed-loop run; zkload's JSON record (ops/s, latency in us, errors...)."""
    cmd = [
        *_pin(cpus),
        str(BINARY),
        "--engine",
        engine,
        "--hosts",
        hosts,
        "--op",
        op,
        "--clients",
        str(clients),
        "--inflight",
        str(inflight),
        "--seconds",
        str(seconds),
        "--warmup",
        str(warmup),
        "--size",
        str(size),
        "--keys",
        str(keys),
        "--read-pct",
        str(read_pct),
        "--json",
        "-",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + warmup + SLACK_S)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise ZkloadError(f"zkload exit {r.returncode}: {r.stderr.strip()[-1000:]}")
    rec: dict[str, Any] = json.loads(lines[-1])
    rec["exit_status"] = r.returncode
    return rec


def failover(survivors: str, kill_pid: int, timeout_s: float = 60.0) -> dict[str, Any]:
    """SIGKILL ``kill_pid`` (the leader) and time until a write through a survivor works."""
    cmd = [
        str(BINARY),
        "--op",
        "failover",
        "--hosts",
        survivors,
        "--kill-pid",
        str(kill_pid),
        "--seconds",
        str(timeout_s),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s + 30)
    m = re.search(r"failover_ms ([\d.]+) attempts (\d+) reconnects (\d+)", r.stdout)
    if not m:
        raise ZkloadError(f"failover probe exit {r.returncode}: {r.stderr.strip()[-500:]}")
    return {
        "failover_ms": float(m[1]),
        "attempts": int(m[2]),
        "reconnects": int(m[3]),
    }
