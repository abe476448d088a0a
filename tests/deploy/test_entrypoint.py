"""docker/entrypoint.sh and docker/ready.sh, run on this machine in a temp folder.

The image's paths come from the environment (ZOO_CONF_DIR, ZOO_CFG_FILE, ZOO_DATA_DIR,
ZOO_DATA_LOG_DIR), so the scripts run here as they do in the container. The exec target
is a stub ``pyzk`` that records its arguments, or the real pyzk on a loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from bench.ports import free_port
from tests.deploy.manifests import DOCKER

ENTRYPOINT = DOCKER / "entrypoint.sh"
READY = DOCKER / "ready.sh"
SCRIPT_TIMEOUT_S = 30
START_TIMEOUT_S = 30.0
EXIT_CONFIG = 2

STUB = """\
#!/usr/bin/env bash
# A stand-in for pyzk: records how it was called; `pyzk status` answers $STUB_STATUS.
printf '%s\\n' "$*" >> "$STUB_LOG"
if [ "${1:-}" = status ]; then
  [ -n "${STUB_STATUS:-}" ] && echo "$STUB_STATUS"
  exit "${STUB_RC:-0}"
fi
echo "MYID=${MYID:-}" >> "$STUB_LOG"
"""


@dataclass
class Box:
    """A container-like layout in a temp folder, and the environment pointing at it."""

    root: Path
    env: dict[str, str]

    @property
    def cfg(self) -> Path:
        return self.root / "run" / "zoo.cfg"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def stub_log(self) -> Path:
        return self.root / "stub.log"

    def _script(self, script: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(script), *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
        )

    def entrypoint(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self._script(ENTRYPOINT, *args, **env)

    def ready(self, **env: str) -> subprocess.CompletedProcess[str]:
        return self._script(READY, **env)

    def server_lines(self) -> list[str]:
        return [line for line in self.cfg.read_text().splitlines() if line.startswith("server.")]

    def settings(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.cfg.read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                assert key not in out, f"{key} twice in {self.cfg}"
                out[key] = value
        return out


def _box(tmp_path: Path, pyzk_dir: Path) -> Box:
    conf = tmp_path / "conf"
    conf.mkdir()
    shutil.copy(DOCKER / "zoo.cfg", conf / "zoo.cfg")
    env = {
        "PATH": f"{pyzk_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ZOO_CONF_DIR": str(conf),
        "ZOO_CFG_FILE": str(tmp_path / "run" / "zoo.cfg"),
        "ZOO_DATA_DIR": str(tmp_path / "data"),
        "ZOO_DATA_LOG_DIR": str(tmp_path / "wal"),
        "STUB_LOG": str(tmp_path / "stub.log"),
    }
    return Box(tmp_path, env)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    """The layout with a stub pyzk on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pyzk").write_text(STUB)
    (bin_dir / "pyzk").chmod(0o755)
    return _box(tmp_path, bin_dir)


SEED_SERVERS = [f"server.{n}=zookeeper{n}:2888:3888" for n in (1, 2, 3)]


# --- the seed's contract, kept ----------------------------------------------------------------


def test_myid_is_written_and_the_seed_servers_are_listed(box: Box) -> None:
    out = box.entrypoint(MYID="2")
    assert out.returncode == 0, out.stderr
    assert box.server_lines() == SEED_SERVERS
    assert (box.data / "myid").read_text() == "2\n"
    calls = box.stub_log.read_text().splitlines()
    assert calls == [f"--config {box.cfg}", "MYID=2"]


def test_a_restart_writes_the_same_file_not_more_server_lines(box: Box) -> None:
    """The seed appended the server lines at every start: a restart doubled them."""
    template = (Path(box.env["ZOO_CONF_DIR"]) / "zoo.cfg").read_text()
    assert box.entrypoint(MYID="3").returncode == 0
    first = box.cfg.read_text()
    for _ in range(2):
        assert box.entrypoint(MYID="3").returncode == 0
    assert box.cfg.read_text() == first
    assert box.server_lines() == SEED_SERVERS
    assert (Path(box.env["ZOO_CONF_DIR"]) / "zoo.cfg").read_text() == template


def test_a_restart_without_myid_keeps_the_id_on_the_volume(box: Box) -> None:
    assert box.entrypoint(MYID="1").returncode == 0
    out = box.entrypoint()
    assert out.returncode == 0, out.stderr
    assert box.server_lines() == SEED_SERVERS
    assert box.stub_log.read_text().splitlines()[-1] == "MYID=1"


def test_without_myid_the_server_runs_standalone(box: Box) -> None:
    out = box.entrypoint()
    assert out.returncode == 0, out.stderr
    assert box.server_lines() == []
    assert not (box.data / "myid").exists()
    assert box.settings()["clientPort"] == "2181"


# --- and its defects, fixed -------------------------------------------------------------------


@pytest.mark.parametrize("myid", ["0", "abc", "256", "-1", "1.5"])
def test_an_invalid_myid_refuses_to_start(box: Box, myid: str) -> None:
    out = box.entrypoint(MYID=myid)
    assert out.returncode == EXIT_CONFIG
    assert "MYID" in out.stderr
    assert not box.stub_log.exists()


def test_an_ensemble_member_without_myid_refuses_to_start(box: Box) -> None:
    out = box.entrypoint(ZOO_SERVERS="zk-a zk-b zk-c")
    assert out.returncode == EXIT_CONFIG
    assert "MYID: not set" in out.stderr
    assert not box.stub_log.exists()


def test_a_myid_outside_the_ensemble_refuses_to_start(box: Box) -> None:
    out = box.entrypoint(MYID="4")
    assert out.returncode == EXIT_CONFIG
    assert "no server.4 line" in out.stderr


def test_a_volume_of_another_server_refuses_to_start(box: Box) -> None:
    box.data.mkdir()
    (box.data / "myid").write_text("1\n")
    out = box.entrypoint(MYID="2")
    assert out.returncode == EXIT_CONFIG
    assert "belongs to another server" in out.stderr
    assert (box.data / "myid").read_text() == "1\n"


def test_an_unwritable_data_dir_is_named(box: Box) -> None:
    out = box.entrypoint(ZOO_DATA_DIR="/dev/null/data")
    assert out.returncode == EXIT_CONFIG
    assert "/dev/null/data is not writable" in out.stderr


# --- the environment ------------------------------------------------------------------------------


def test_zoo_servers_in_both_forms(box: Box) -> None:
    out = box.entrypoint(MYID="7", ZOO_SERVERS="server.5=h5:2888:3888;2181, server.7=h7:2888:3888")
    assert out.returncode == 0, out.stderr
    assert box.server_lines() == ["server.5=h5:2888:3888;2181", "server.7=h7:2888:3888"]
    out = box.entrypoint(MYID="2", ZOO_SERVERS="a,b:2890:3890:observer c")
    assert out.returncode == EXIT_CONFIG, "the volume holds id 7"
    shutil.rmtree(box.data)
    out = box.entrypoint(MYID="2", ZOO_SERVERS="a,b:2890:3890:observer c")
    assert out.returncode == 0, out.stderr
    assert box.server_lines() == [
        "server.1=a:2888:3888",
        "server.2=b:2890:3890:observer",
        "server.3=c:2888:3888",
    ]


@pytest.mark.parametrize("servers", ["server.0=h0:2888:3888 server.1=h1:2888:3888", "server.x=h"])
def test_a_bad_server_id_in_zoo_servers_refuses_to_start(box: Box, servers: str) -> None:
    out = box.entrypoint(MYID="1", ZOO_SERVERS=servers)
    assert out.returncode == EXIT_CONFIG
    assert not box.stub_log.exists()


def test_empty_zoo_servers_means_standalone_even_with_myid(box: Box) -> None:
    out = box.entrypoint(MYID="1", ZOO_SERVERS="")
    assert out.returncode == 0, out.stderr
    assert box.server_lines() == []


def test_myid_from_the_statefulset_ordinal(box: Box) -> None:
    servers = " ".join(f"zookeeper-{i}.zookeeper-headless:2888:3888" for i in range(3))
    out = box.entrypoint(ZOO_MYID_FROM_ORDINAL="true", HOSTNAME="zookeeper-2", ZOO_SERVERS=servers)
    assert out.returncode == 0, out.stderr
    assert (box.data / "myid").read_text() == "3\n"
    assert box.server_lines()[2] == "server.3=zookeeper-2.zookeeper-headless:2888:3888"
    bad = box.entrypoint(ZOO_MYID_FROM_ORDINAL="true", HOSTNAME="zookeeper", ZOO_SERVERS=servers)
    assert bad.returncode == EXIT_CONFIG


def test_settings_from_the_environment_replace_the_templates(box: Box) -> None:
    out = box.entrypoint(
        ZOO_TICK_TIME="3000",
        ZOO_CLIENT_PORT="2182",
        ZOO_CFG_EXTRA="4lw.commands.whitelist=* maxSessionTimeout=60000",
    )
    assert out.returncode == 0, out.stderr
    settings = box.settings()  # also checks that no key is there twice
    assert settings["tickTime"] == "3000"
    assert settings["clientPort"] == "2182"
    assert settings["4lw.commands.whitelist"] == "*"
    assert settings["maxSessionTimeout"] == "60000"
    assert settings["initLimit"] == "10"
    assert settings["dataDir"] == str(box.data)
    assert box.entrypoint(ZOO_CFG_EXTRA="notakeyvalue").returncode == EXIT_CONFIG


def test_a_template_with_its_own_ensemble_is_kept(box: Box) -> None:
    template = Path(box.env["ZOO_CONF_DIR"]) / "zoo.cfg"
    template.write_text(template.read_text() + "server.1 = x1:2888:3888\nserver.2 = x2:2888:3888\n")
    out = box.entrypoint(MYID="2")
    assert out.returncode == 0, out.stderr
    assert box.server_lines() == ["server.1 = x1:2888:3888", "server.2 = x2:2888:3888"]
    assert box.entrypoint(MYID="2", ZOO_SERVERS="").returncode == 0
    assert box.server_lines() == []


def test_arguments_pass_through(box: Box) -> None:
    assert box.entrypoint("--log-level", "DEBUG").returncode == 0
    assert box.entrypoint("pyzk", "status", "--port", "1").returncode == 0
    assert box.entrypoint("echo", "hello").stdout == "hello\n"
    calls = [c for c in box.stub_log.read_text().splitlines() if not c.startswith("MYID=")]
    assert calls == [f"--config {box.cfg} --log-level DEBUG", "status --port 1"]


# --- ready.sh -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["leader", "follower", "observer", "observing", "standalone"])
def test_ready_passes_for_a_serving_mode(box: Box, mode: str) -> None:
    assert box.entrypoint().returncode == 0
    out = box.ready(STUB_STATUS=f"Mode: {mode}")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"Mode: {mode}\n"
    assert (
        box.stub_log.read_text().splitlines()[-1]
        == "status --host 127.0.0.1 --port 2181 --timeout 3"
    )


@pytest.mark.parametrize(
    ("status", "rc"),
    [("", 1), ("Mode: looking", 0), ("This ZooKeeper instance is not currently serving", 1)],
)
def test_ready_fails_when_not_serving(box: Box, status: str, rc: int) -> None:
    assert box.entrypoint().returncode == 0
    assert box.ready(STUB_STATUS=status, STUB_RC=str(rc)).returncode == 1


def test_ready_refuses_standalone_for_an_ensemble_member(box: Box) -> None:
    assert box.entrypoint(MYID="1").returncode == 0
    out = box.ready(STUB_STATUS="Mode: standalone")
    assert out.returncode == 1
    assert "lists an ensemble of 3" in out.stderr
    assert box.ready(STUB_STATUS="Mode: follower").returncode == 0


def test_ready_asks_the_configured_address_and_port(box: Box) -> None:
    out = box.entrypoint(ZOO_CLIENT_PORT="2999", ZOO_CLIENT_PORT_ADDRESS="127.0.0.5")
    assert out.returncode == 0
    assert box.ready(STUB_STATUS="Mode: standalone").returncode == 0
    assert (
        box.stub_log.read_text().splitlines()[-1]
        == "status --host 127.0.0.5 --port 2999 --timeout 3"
    )


# --- with the real server ---------------------------------------------------------------------


@pytest.fixture
def real_box(tmp_path: Path) -> Iterator[Box]:
    """The layout with the real pyzk (this venv's console script) on PATH."""
    b = _box(tmp_path, Path(sys.executable).parent)
    b.env["ZOO_CLIENT_PORT"] = str(free_port())
    b.env["ZOO_CLIENT_PORT_ADDRESS"] = "127.0.0.1"
    b.env["ZOO_ADMINSERVER_ENABLED"] = "false"
    yield b


def test_the_entrypoint_execs_a_real_server_that_serves_and_stops_on_sigterm(real_box: Box) -> None:
    log = open(real_box.root / "server.log", "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        ["bash", str(ENTRYPOINT)],
        env=real_box.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while real_box.ready().returncode != 0:
            assert proc.poll() is None, (real_box.root / "server.log").read_text()
            assert time.monotonic() < deadline, (real_box.root / "server.log").read_text()
            time.sleep(0.2)
        assert real_box.ready().stdout == "Mode: standalone\n"
        # exec: the process we started is the server itself, so signals reach it.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert any(part.endswith(b"pyzk") for part in cmdline), cmdline
        zk = KazooClient(hosts=f"127.0.0.1:{real_box.env['ZOO_CLIENT_PORT']}", timeout=10.0)
        zk.start(timeout=15)
        try:
            zk.create("/entrypoint", b"served")
            assert zk.get("/entrypoint")[0] == b"served"
        finally:
            zk.stop()
            zk.close()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert real_box.ready().returncode == 1
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
