"""Profile pyzk under the throughput workloads with py-spy: flame graphs and top lists.

Separate from the measured runs (sampling pauses the process, which would bias the
figures): for each workload a fresh pyzk, zkload driving it, and py-spy attached twice,
once for the flame graph (SVG) and once for the raw stacks that the top lists are
computed from. Frames are aggregated by function (``--function``). Time in C below a
Python frame (uvloop's socket writes, struct packing) counts as that frame's self time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import zkload
from bench.core import Context, Workload
from bench.servers import Server, standalone

RATE_HZ = 100
TOP = 15


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def _record(
    ctx: Context, srv: Server, out: Path, fmt: str, w: Workload, seconds: float
) -> dict[str, Any]:
    """Run zkload for ``w`` while py-spy samples the server; zkload's record."""
    spy = py_spy()
    assert spy is not None
    pin = ["taskset", "-c", ctx.load_cpus] if ctx.load_cpus else []
    duration = int(seconds + 2)
    cmd = [*pin, spy, "record", "--pid", str(srv.pid), "--rate", str(RATE_HZ), "--function"]
    cmd += ["--duration", str(duration), "--format", fmt, "--output", str(out)]
    spy_proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        p = w.params
        rec = zkload.run(
            srv.hosts,
            p["op"],
            clients=p["clients"],
            inflight=p["inflight"],
            seconds=seconds,
            warmup=0.5,
            size=p["size"],
            keys=ctx.plan.keys,
            cpus=ctx.load_cpus,
        )
        spy_proc.wait(duration + 60)
    finally:
        if spy_proc.poll() is None:
            spy_proc.kill()
            spy_proc.wait()
    return rec


def _short(frame: str) -> str:
    """``f (pyzk/pipeline/processor.py:158)`` -> ``f (processor.py:158)``"""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name


def summarize(raw: Path) -> dict[str, Any]:
    """Top functions by self and by inclusive samples, from py-spy's raw stacks."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        self_c[frames[-1]] += n
        for f in set(frames):
            incl_c[f] += n
    skip = (
        "<module>",
        "_run_module_as_main",
        "_run_code",
        "main (",
        "run_server",
        "run (",
        "Runner.run",
    )
    inclusive = [(f, n) for f, n in incl_c.most_common() if not f.startswith(skip)]

    def pct(items: list[tuple[str, int]]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in items[:TOP]] if total else []

    return {
        "samples": total,
        "top_self": pct(self_c.most_common()),
        "top_inclusive": pct(inclusive),
    }


def profile_workload(ctx: Context, w: Workload, out_dir: Path, stem: str) -> dict[str, Any]:
    """Flame graph ``<stem>-pyzk-<workload>.svg`` in ``out_dir``, and the top lists."""
    seconds = ctx.plan.profile_seconds
    cluster = standalone("pyzk", ctx.workdir("profile", w.name), ctx.settings)
    svg = out_dir / f"{stem}-pyzk-{w.name}.svg"
    raw = out_dir / f"{stem}-pyzk-{w.name}.txt"
    try:
        cluster.start()
        srv = cluster.servers[0]
        rec = _record(ctx, srv, svg, "flamegraph", w, seconds)
        _record(ctx, srv, raw, "raw", w, seconds)
    finally:
        cluster.stop()
    empty: dict[str, Any] = {"samples": 0, "top_self": [], "top_inclusive": []}
    summary = summarize(raw) if raw.exists() else empty
    return {
        "workload": w.name,
        "svg": svg.name if svg.exists() else None,
        "raw": raw.name if raw.exists() else None,
        "rate": RATE_HZ,
        "seconds": seconds,
        "busy_pct": 100 * summary["samples"] / (RATE_HZ * (seconds + 2)),
        "ops_per_sec": rec.get("ops_per_sec"),
        **summary,
    }
