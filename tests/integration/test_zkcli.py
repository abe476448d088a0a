"""A scripted zkCli.sh session, run against pyzk and Apache ZooKeeper: same transcript.

zkCli prints what the server answered (data, Stat fields, children, errors), so two
transcripts that match, once zxids, times and session ids are masked, mean the server
answered the same way.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.servers import ServerProcess

ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
CLI_TIMEOUT_S = 90

pytestmark = pytest.mark.skipif(not ZKCLI.exists(), reason="zkCli.sh not installed")


def script(root: str) -> str:
    return f"""create {root} top
create {root}/a hello
create -e {root}/a/eph e
create -s {root}/a/seq s
create -s {root}/a/seq s
create -e -s {root}/a/es x
get -s {root}/a
set -v 0 {root}/a world
set -v 0 {root}/a again
get {root}/a
ls -R {root}
ls -s {root}/a
stat {root}/a
create {root}/a
delete {root}/a
delete {root}/a/eph
delete {root}/nothing
create {root}/missing/child
deleteall {root}/a
ls {root}
quit
"""


def run_zkcli(srv: ServerProcess, text: str) -> str:
    out = subprocess.run(
        [str(ZKCLI), "-server", srv.hosts],
        input=text,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    return out.stdout + out.stderr


def normalise(transcript: str) -> list[str]:
    """Keep the server's answers; mask what legitimately differs between servers."""
    lines = []
    for line in transcript.splitlines():
        if (
            line.startswith(
                ("SLF4J", "Connecting to", "Welcome", "JLine", "WATCHER::", "WatchedEvent state:")
            )
            or not line.strip()
        ):
            continue
        line = re.sub(r"0x[0-9a-f]+", "0x?", line)
        line = re.sub(r"^(ctime|mtime) = .*", r"\1 = ?", line)
        lines.append(line)
    return lines


def test_zkcli_transcript_matches_zookeeper(both_servers: dict[str, ServerProcess]) -> None:
    root = f"/zkcli{time.monotonic_ns()}"
    transcripts = {k: normalise(run_zkcli(s, script(root))) for k, s in both_servers.items()}
    for kind, lines in transcripts.items():
        assert f"Created {root}/a/seq0000000001" in lines, (kind, lines)
        assert "hello" in lines and "world" in lines
        assert any("Node does not exist" in line for line in lines), lines
        assert any("version No is not valid" in line for line in lines), lines
    if len(transcripts) == 2:
        assert transcripts["pyzk"] == transcripts["zookeeper"]
