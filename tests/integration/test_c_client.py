"""The official C client (cli_mt, over libzookeeper_mt) against pyzk and ZooKeeper."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.servers import ServerProcess

CLI_MT = Path("/usr/lib/zookeeper/bin/cli_mt")

pytestmark = pytest.mark.skipif(not CLI_MT.exists(), reason="cli_mt not installed")


def run_cli_mt(srv: ServerProcess, commands: list[str]) -> list[str]:
    # cli_mt reads commands from stdin and runs them asynchronously: pace them so the
    # transcript's order is the commands' order.
    proc = subprocess.Popen(
        [str(CLI_MT), srv.hosts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdin is not None
    time.sleep(0.5)
    for cmd in commands:
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()
        time.sleep(0.3)
    out, _ = proc.communicate(timeout=30)
    lines = []
    for line in out.splitlines():
        if not line.strip() or line.startswith(("time =", "Watcher", "Got a new session")):
            continue
        line = re.sub(r"0x[0-9a-f]+", "0x?", line)
        lines.append(re.sub(r"^(\s*[cm]time) ?= ?.*", r"\1 = ?", line))
    return lines


def test_cli_mt_crud_matches_zookeeper(both_servers: dict[str, ServerProcess]) -> None:
    root = f"/cmt{time.monotonic_ns()}"
    commands = [
        f"create {root}",
        f"create {root}/kid",
        f"ls {root}",
        f"get {root}",
        f"set {root} newdata",
        f"exists {root}",
        f"delete {root}",
        f"delete {root}/kid",
        f"delete {root}",
        f"exists {root}",
    ]
    transcripts = {k: run_cli_mt(s, commands) for k, s in both_servers.items()}
    for kind, lines in transcripts.items():
        assert any("rc = -111" in ln for ln in lines), (kind, lines)  # NOTEMPTY
        assert any(f"name = {root}/kid" in ln for ln in lines), (kind, lines)
    if len(transcripts) == 2:
        assert transcripts["pyzk"] == transcripts["zookeeper"]
