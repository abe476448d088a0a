"""``python -m bench``: pyzk and Apache ZooKeeper, same machine, same run, same workloads.

    python -m bench [--quick | --full | --tiny] [--workloads PATTERNS] [--ensemble]
                    [--out DIR] [--name NAME] [--profile] [sizes...] [--list]

Writes ``<out>/<name>.json``, ``.md`` and ``.png`` (name: today's date). A full run
writes to ``bench/results/``; quick and tiny runs to ``bench/results/tmp/`` (ignored by
git) unless ``--out`` says otherwise. Servers' data lives under one scratch folder
(``--work-dir``, default under ``bench/results/tmp/``), so both kinds write to the same
disk; it is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import chart, report, zkload
from bench.core import PRESETS, Context, Plan, Workload, plan_with
from bench.meta import notes_for, static_meta
from bench.profile import profile_workload, py_spy
from bench.runner import Runner
from bench.servers import ZK_JAR, Settings, stop_all
from bench.workloads import all_workloads, select

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
PROFILED = ("get-100B-8x64", "set-100B-8x64", "mixed90-100B-8x64", "createdelete-100B-8x64")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="pyzk and Apache ZooKeeper, same machine, same run, same workloads; "
        "writes <out>/<name>.json, .md and .png (see bench/README.md).",
    )
    size = p.add_mutually_exclusive_group()
    for name, what in (
        ("full", "the full run, about 20 minutes (default)"),
        ("quick", "a few minutes; results under bench/results/tmp/"),
        ("tiny", "seconds; checks the command works (the smoke test), figures mean nothing"),
    ):
        size.add_argument(f"--{name}", dest="preset", action="store_const", const=name, help=what)
    p.set_defaults(preset="full")
    p.add_argument(
        "--workloads",
        default="*",
        help="comma-separated names or groups, shell patterns allowed (default all; "
        "groups: latency, throughput, fanout, lock, sessions, znodes, ensemble)",
    )
    p.add_argument("--ensemble", action="store_true", help="also the 3-server workloads")
    p.add_argument("--profile", action="store_true", help="py-spy flame graphs of pyzk")
    p.add_argument("--out", type=Path, help="results folder")
    p.add_argument("--name", help="file name stem (default: today's date)")
    p.add_argument("--work-dir", type=Path, help="scratch folder for the servers' data")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--server-cpus", default=None, help="taskset list for servers (default 0)")
    p.add_argument("--load-cpus", default=None, help="taskset list for load (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin anything")
    p.add_argument("--tick-time", type=int, default=2000, help="tickTime of both servers")
    p.add_argument("--heap-mb", type=int, default=1000, help="ZooKeeper's -Xmx")
    for flag, typ in (
        ("seconds", float),
        ("warmup", float),
        ("keys", int),
        ("sessions", int),
        ("znodes", int),
        ("watchers", int),
        ("lock-clients", int),
        ("failover-rounds", int),
        ("repeats", int),
    ):
        p.add_argument(f"--{flag}", type=typ, help="override the preset's value")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument("--render", type=Path, help="re-render .md and .png from a result .json")
    return p


def _pinning(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if args.no_pin:
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return args.server_cpus or str(cpus[0]), args.load_cpus or str(cpus[1])


def _plan(args: argparse.Namespace) -> Plan:
    return plan_with(
        PRESETS[args.preset],
        seconds=args.seconds,
        warmup=args.warmup,
        keys=args.keys,
        sessions=args.sessions,
        znodes=args.znodes,
        watchers=args.watchers,
        lock_clients=args.lock_clients,
        failover_rounds=args.failover_rounds,
        repeats=args.repeats,
    )


def _stem(out: Path, name: str | None) -> str:
    if name:
        return name
    stem = dt.date.today().isoformat()
    n = 2
    while (out / f"{stem}.json").exists():
        stem = f"{dt.date.today().isoformat()}-{n}"
        n += 1
    return stem


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def render(doc: dict[str, Any], out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.json", out / f"{stem}.md", out / f"{stem}.png"]
    report.write_json(doc, paths[0])
    paths[1].write_text(report.to_markdown(doc, paths[2].name))
    chart.write_png(doc, paths[2])
    return paths


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt as e:
        print(f"bench: interrupted ({e or 'SIGINT'}); servers stopped", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for w in all_workloads():
            print(f"{w.name:28} {w.group:11} {w.description}")
        return 0
    if args.render:
        doc = json.loads(args.render.read_text())
        doc["notes"] = notes_for(doc)  # computed from the figures: current wording
        for p in render(doc, args.render.parent, args.render.stem):
            print(p)
        return 0
    workloads = select([p.strip() for p in args.workloads.split(",") if p.strip()], args.ensemble)
    problem = _problem(args, workloads)
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    zkload.build()
    _compile_pyzk()
    return _run(args, workloads)


def _compile_pyzk() -> None:
    """Byte-compile the pyzk the servers will import, as installing it does: start-up is
    timed from exec, and a checkout edited under PYTHONDONTWRITEBYTECODE has stale .pyc
    files, so each start would compile the changed modules again."""
    import pyzk

    compileall.compile_dir(Path(pyzk.__file__).parent, quiet=1)


def _problem(args: argparse.Namespace, workloads: list[Workload]) -> str | None:
    """Why this run cannot start, if it cannot."""
    if not ZK_JAR.exists():
        return "Apache ZooKeeper is not installed; run `make zookeeper`"
    if not workloads:
        return f"no workload matches {args.workloads!r} (see --list)"
    if args.profile and py_spy() is None:
        return "--profile needs py-spy (pip install -e '.[bench]')"
    return None


def _context(args: argparse.Namespace, stem: str) -> Context:
    """Pin this process to the load cores, make the scratch folder, and the Context."""
    server_cpus, load_cpus = _pinning(args)
    if load_cpus:  # the harness's own Python workloads run on the load cores too
        os.sched_setaffinity(0, {int(c) for c in load_cpus.split(",")})
    work = args.work_dir or RESULTS / "tmp" / f"work-{stem}-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    settings = Settings(args.tick_time, args.heap_mb, server_cpus=server_cpus)
    t0 = time.monotonic()

    def log(msg: str) -> None:
        print(f"[{time.monotonic() - t0:7.1f}s] {msg}", flush=True)

    return Context(_plan(args), settings, work, load_cpus, log)


def _run(args: argparse.Namespace, workloads: list[Workload]) -> int:
    out = args.out or (RESULTS if args.preset == "full" else RESULTS / "tmp")
    out.mkdir(parents=True, exist_ok=True)
    stem = _stem(out, args.name)
    ctx = _context(args, stem)
    signal.signal(signal.SIGTERM, _on_signal)
    t0 = time.monotonic()
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta = {"name": stem, "started": started, **static_meta(ctx)}
    runner = Runner(ctx)
    profiles = []
    try:
        ctx.log(f"{ctx.plan.preset} run, {len(workloads)} workloads; {meta['pinning']}")
        outcomes = runner.run(workloads)
        if args.profile:
            by_name = {w.name: w for w in all_workloads()}
            for name in PROFILED:
                ctx.log(f"profiling pyzk under {name}")
                profiles.append(profile_workload(ctx, by_name[name], out, stem))
    finally:
        runner.stop_shared()
        stop_all()
        if not args.keep:
            shutil.rmtree(ctx.run_dir, ignore_errors=True)
    meta.update(
        wall_s=round(time.monotonic() - t0, 1),
        loadavg_end=os.getloadavg(),
        shared_server_startups_ms=runner.startups_ms,
    )
    doc = report.to_dict(meta, outcomes, runner.skipped, profiles, [])
    doc["notes"] = notes_for(doc)
    for p in render(doc, out, stem):
        ctx.log(f"wrote {p}")
    failed = report.failed_workloads(doc)
    if failed:
        ctx.log(f"workloads with errors: {', '.join(failed)}")
    return 1 if failed else 0
