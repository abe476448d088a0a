"""The pyzk command as an operator runs it: help, status, bad configs, logs and shutdown.

Real processes on loopback ports; every one is stopped (or killed) by the test that
started it. Waiting is by polling with a bound, never by sleeping for a fixed time.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from bench.ports import free_port
from tests.servers import ServerProcess, four_letter, pyzk_server
from tests.unit.test_config import SEED_ZOO_CFG

PYZK = [sys.executable, "-m", "pyzk"]
RUN_TIMEOUT_S = 30.0
# How long a shutdown may take in these tests (the server's own bound is 10 s).
EXIT_BOUND_S = 15.0
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[myid:")


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        PYZK + args,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def seed_config(tmp_path: Path, servers: int, port: int) -> Path:
    """The seed's zoo.cfg with its paths and client port moved into the test's folder."""
    text = SEED_ZOO_CFG.replace("/usr/local/zookeeper", str(tmp_path))
    text = text.replace("clientPort=2181", f"clientPort={port}\nclientPortAddress=127.0.0.1")
    text = text.replace(
        "quorumListenOnAllIPs=true", "quorumListenOnAllIPs=true\nadmin.enableServer=false"
    )
    lines = text.split("\nserver.")
    text = "\nserver.".join(lines[: 1 + servers])
    path = tmp_path / "zoo.cfg"
    path.write_text(text)
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # One message; log lines (start-up had begun) may come before it.
    lines = [ln for ln in result.stderr.splitlines() if not LOG_LINE.match(ln)]
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_help_names_the_options_and_status() -> None:
    result = run(["--help"])
    assert result.returncode == 0
    for option in ("--config", "--myid", "--data-dir", "--client-port", "status"):
        assert option in result.stdout


def test_an_ensemble_member_without_myid_is_refused_clearly(tmp_path: Path) -> None:
    cfg = seed_config(tmp_path, servers=3, port=free_port())
    result = run(["--config", str(cfg)], env={"JVMFLAGS": "-Xmx2G"})
    assert_one_line_error(result, "myid")


@pytest.fixture
def seed_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """pyzk started from the seed's zoo.cfg with one server line, MYID from the env."""
    port = free_port()
    cfg = seed_config(tmp_path, servers=1, port=port)
    log_file = tmp_path / "pyzk.log"
    cmd = [*PYZK, "--config", str(cfg), "--log-file", str(log_file)]
    srv = ServerProcess("pyzk", port, tmp_path, cmd, env={"MYID": "1", "JVMFLAGS": "-Xmx2G"})
    srv.start()
    yield srv
    srv.stop()


def test_status_reports_the_mode_of_a_server_started_from_the_seed_config(
    seed_server: ServerProcess, tmp_path: Path
) -> None:
    result = run(["status", "--config", str(tmp_path / "zoo.cfg")])
    assert (result.returncode, result.stdout) == (0, "Mode: standalone\n")
    result = run(["status", "--port", str(seed_server.port)])
    assert (result.returncode, result.stdout) == (0, "Mode: standalone\n")


def test_status_takes_the_port_from_the_seeds_ensemble_config(
    server: ServerProcess, tmp_path: Path
) -> None:
    cfg = seed_config(tmp_path, servers=3, port=server.port)  # no MYID: a probe needs none
    result = run(["status", "--config", str(cfg)])
    assert (result.returncode, result.stdout) == (0, "Mode: standalone\n")


def test_status_fails_when_nothing_listens() -> None:
    result = run(["status", "--port", str(free_port()), "--timeout", "2"])
    assert result.returncode == 1 and result.stdout == ""
    assert "not running" in result.stderr


def wait_for_log(path: Path, text: str, bound_s: float = 10.0) -> str:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged within {bound_s}s:\n{content}")


def test_log_file_has_events_not_requests(seed_server: ServerProcess, tmp_path: Path) -> None:
    log_file = tmp_path / "pyzk.log"
    zk = KazooClient(hosts=seed_server.hosts, timeout=10.0)
    zk.start(timeout=15)
    try:
        session = f"0x{zk.client_id[0]:x}"
        content = wait_for_log(log_file, f"Established session {session}")
        before = len(content.splitlines())
        for i in range(20):
            zk.create(f"/n{i}", b"x")
            zk.get(f"/n{i}")
    finally:
        zk.stop()
        zk.close()
    content = log_file.read_text()
    assert len(content.splitlines()) - before < 5  # no line per request at INFO
    assert content.count("JVM flags not used by pyzk, ignored: -Xmx2G") == 1
    assert "config: clientPort=127.0.0.1:" in content


def test_port_in_use_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        for args in (
            ["--client-port", str(port)],
            ["--client-port", str(free_port()), "--set", "admin.enableServer=true",
             "--set", "admin.serverAddress=127.0.0.1", "--set", f"admin.serverPort={port}"],
        ):  # fmt: skip
            result = run(["--client-address", "127.0.0.1", "--data-dir", str(tmp_path), *args])
            assert_one_line_error(result, f"127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("zoo_cfg", "env", "needle"),
    [
        ("clientPort=2181\n", {}, "dataDir is not set"),
        ("dataDir=d\nserver.1=zookeeper1:2888\n", {}, "server.1:"),
        ("dataDir=d\nclientPort=twenty\n", {}, "clientPort:"),
        ("dataDir=d\n", {"MYID": "x1"}, "MYID: 'x1' is not a number"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(
    tmp_path: Path, zoo_cfg: str, env: dict[str, str], needle: str
) -> None:
    (tmp_path / "zoo.cfg").write_text(zoo_cfg)
    assert_one_line_error(run(["--config", str(tmp_path / "zoo.cfg")], env=env), needle)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_a_client_connected(tmp_path: Path, sig: signal.Signals) -> None:
    srv = pyzk_server(tmp_path)
    srv.start()
    zk = KazooClient(hosts=srv.hosts, timeout=10.0)
    try:
        zk.start(timeout=15)
        zk.create("/before-stop", b"x")
        assert srv.proc is not None
        srv.proc.send_signal(sig)
        assert srv.proc.wait(EXIT_BOUND_S) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
        log = (tmp_path / "server.log").read_text()
        assert f"shutting down on {sig.name}" in log and "shut down cleanly" in log
    finally:
        zk.stop()
        zk.close()
        srv.kill()


def test_status_reads_both_servers_alike(server: ServerProcess) -> None:
    result = run(["status", "--port", str(server.port)])
    assert (result.returncode, result.stdout) == (0, "Mode: standalone\n")


def test_whitelist_from_jvmflags(tmp_path: Path) -> None:
    srv = pyzk_server(tmp_path, extra={"4lw.commands.whitelist": None})
    srv.env = {"SERVER_JVMFLAGS": "-Xms1G -Dzookeeper.4lw.commands.whitelist=ruok,conf"}
    srv.start()
    try:
        assert four_letter(srv.port, "ruok") == "imok"
        assert four_letter(srv.port, "conf").startswith("clientPort=")
        assert four_letter(srv.port, "stat").endswith("not in the whitelist.\n")
        assert "JVM flags not used by pyzk, ignored: -Xms1G" in srv.log_tail()
    finally:
        srv.stop()
