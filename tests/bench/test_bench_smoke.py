"""``python -m bench`` runs end to end on a tiny workload and writes well-formed results.

Never about timings: only that each selected workload produced its headline figures for
both servers, that the JSON, Markdown and PNG are well formed, that ensemble workloads
either ran or were skipped with a reason, and that no server is left running.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKLOADS = [
    "get-100B-1x1",
    "createdelete-100B-8x64",
    "watch-fanout",
    "kazoo-lock",
    "idle-sessions",
    "znodes",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_TIMEOUT_S = 240

pytestmark = pytest.mark.timeout(RUN_TIMEOUT_S + 60)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.fixture(scope="module")
def smoke(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, "-m", "bench", "--tiny", "--ensemble", "--name", "smoke"]
    cmd += ["--workloads", ",".join([*WORKLOADS, "ensemble"])]
    cmd += ["--out", str(tmp / "results"), "--work-dir", str(tmp / "work")]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:  # SIGTERM lets the bench stop its servers first
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    return tmp, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_a_tiny_run_finishes_and_leaves_no_server_behind(
    smoke: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, run = smoke
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert _processes_mentioning(str(tmp)) == []
    assert not (tmp / "work").exists()


def test_the_json_has_headline_figures_for_both_servers(
    smoke: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, _ = smoke
    doc = json.loads((tmp / "results" / "smoke.json").read_text())
    assert doc["schema"] == "pyzk-bench/1"
    assert {"machine", "versions", "settings", "disk", "pinning"} <= doc["meta"].keys()
    assert doc["meta"]["settings"]["forceSync"] == "yes"
    standalone = {r["workload"]: r for r in doc["results"] if r["topology"] == "standalone"}
    assert sorted(standalone) == sorted(WORKLOADS)
    for r in doc["results"]:
        for kind in ("zookeeper", "pyzk"):
            assert "error" not in r[kind], (r["workload"], kind, r[kind].get("error"))
            unmeasured = r[kind].get("not_comparable", {})  # each with its reason
            for m in r["headline"]:
                if m["key"] not in unmeasured:
                    assert isinstance(r[kind][m["key"]], int | float), (r["workload"], m["key"])
        assert all(isinstance(v, float) for v in r["ratios"].values())
        # every headline figure has a ratio, unless a workload said why it cannot
        why_not = {k for kind in ("zookeeper", "pyzk") for k in r[kind].get("not_comparable", {})}
        assert {m["key"] for m in r["headline"]} - why_not <= r["ratios"].keys()


def test_ensemble_workloads_either_ran_or_were_skipped_with_a_reason(
    smoke: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, _ = smoke
    doc = json.loads((tmp / "results" / "smoke.json").read_text())
    ran = [r["workload"] for r in doc["results"] if r["topology"] == "ensemble"]
    skipped = [s["workload"] for s in doc["skipped"]]
    assert "ensemble-failover" in ran + skipped
    assert not (set(ran) & set(skipped))
    for s in doc["skipped"]:
        assert "pyzk" in s["reason"]


def test_markdown_and_png_are_written(
    smoke: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    tmp, _ = smoke
    md = (tmp / "results" / "smoke.md").read_text()
    assert md.startswith("# ")
    assert "| workload | figure | ZooKeeper | pyzk | pyzk/ZK |" in md
    for name in WORKLOADS:
        assert f"| {name} |" in md
    png = (tmp / "results" / "smoke.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_the_pipeline_cost_tool_runs_every_op(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``python -m bench.pipeline`` drives real requests through the processor (the
    writes land in the tree), and prints a cost per op (a figure, never checked)."""
    from bench import pipeline
    from pyzk.tree.node import version_of

    pipe = pipeline.Pipeline()
    assert pipe.feed(pipeline.batch("set", 0)) == 64
    assert pipe.feed(pipeline.batch("createdelete", 0)) == 128
    tree = pipe.proc.tree
    assert version_of(tree.nodes["/key0"]) == 1 and version_of(tree.nodes["/key64"]) == 0
    assert tree.num_children("/") == pipeline.KEYS + 1  # and /zookeeper; no /cd* left
    monkeypatch.setattr(pipeline, "BATCHES", 2)
    pipeline.main(["--reps", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == list(pipeline.OPS)
    with pytest.raises(SystemExit):
        pipeline.main(["nosuchop"])
