"""The real image: built from docker/Dockerfile with podman, run, and used by a client.

No registry is reachable, so the Dockerfile's base image is a local stand-in
(standin-base.sh: debootstrap of bookworm with Python 3.11, cached under
~/.cache/pyzk), and the build runs with --pull=never and --network=none: pyzk is
installed from a wheelhouse that docker/build.sh --wheelhouse fills, the offline way
the Dockerfile documents. Clients reach the containers through ports published on
127.0.0.1 only (the NodePort stand-in). Everything made here is removed at the end.

Marked ``container`` (slow: minutes the first time on a machine); skip with
``-m 'not container'``. Where podman is missing they skip, except in CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from bench.ports import free_port
from tests.deploy.manifests import DOCKER, ROOT
from tests.deploy.podman import LABEL, PREFIX, RUN_ID, Podman

pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

STANDIN = Path(__file__).with_name("standin-base.sh")
IMAGE = f"localhost/pyzk-test:{RUN_ID}"
STANDIN_TIMEOUT_S = 600  # debootstrap, the first time on a machine
BUILD_TIMEOUT_S = 300
READY_TIMEOUT_S = 60
ENSEMBLE_READY_TIMEOUT_S = 120
SERVERS = (1, 2, 3)
POLL_S = 0.5


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    pm = Podman.find()
    if pm is None:
        if os.environ.get("CI"):
            pytest.fail("podman is not installed (make test installs it: make container-tools)")
        pytest.skip("podman is not installed (make container-tools)")
    pm.remove_stale()
    yield pm
    pm.cleanup()


def _base_image() -> str:
    m = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    assert m
    return m[1]


def _context(dest: Path) -> Path:
    """What the build context needs, copied, so the checkout gets no wheels."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.whl")
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy(ROOT / name, dest / name)
    for name in ("pyzk", "docker"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = _base_image()
    had_base = podman("image", "exists", base, check=False).returncode == 0
    subprocess.run(
        ["bash", str(STANDIN), base, "podman"],
        env=podman.env,
        check=True,
        timeout=STANDIN_TIMEOUT_S,
    )
    ctx = _context(tmp_path_factory.mktemp("context"))
    t0 = time.monotonic()
    out = subprocess.run(
        ["bash", str(ctx / "docker" / "build.sh"), "--engine", "podman", "--wheelhouse", RUN_ID,
         "--", "--pull=never", "--network=none", "--label", LABEL],
        env={**podman.env, "IMAGE": IMAGE.rsplit(":", 1)[0], "PYTHON": sys.executable},
        capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    print(f"image built in {time.monotonic() - t0:.1f}s")
    yield IMAGE
    # Containers first, with their volumes: `rmi -f` would remove them but keep those.
    podman.cleanup()
    podman("rmi", "-f", IMAGE, check=False)
    if not had_base:  # the stand-in stays cached as a tarball; the image goes
        podman("rmi", "-f", base, check=False)


def _kazoo(port: int) -> KazooClient:
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10.0)
    zk.start(timeout=30)
    return zk


def _published(port: int) -> tuple[str, str]:
    return ("-p", f"127.0.0.1:{port}:2181")


# --- the image -----------------------------------------------------------------------------------


def test_the_image_keeps_what_the_dockerfile_declares(podman: Podman, image: str) -> None:
    (info,) = json.loads(podman("image", "inspect", image).stdout)
    config = info["Config"]
    assert config["User"] == "1000:1000"
    assert set(config["ExposedPorts"]) == {f"{p}/tcp" for p in (2181, 2888, 3888, 7000, 8080)}
    assert set(config["Volumes"]) == {"/usr/local/zookeeper/data", "/usr/local/zookeeper/wal"}
    # (kept because build.sh builds podman images in the docker format)
    assert info["Healthcheck"]["Test"] == ["CMD", "ready.sh"]
    assert config["Entrypoint"] == ["entrypoint.sh"]
    assert config["Cmd"] == ["pyzk"]


# As the Kubernetes pods run it (k8s/: readOnlyRootFilesystem, emptyDirs on run/ and /tmp,
# no capabilities, no privilege escalation). podman's tmpfs needs chown=true for uid 1000,
# where a Kubernetes emptyDir is world-writable.
HARDENED = (
    "--read-only",
    "--mount", "type=tmpfs,dst=/usr/local/zookeeper/run,chown=true",
    "--mount", "type=tmpfs,dst=/tmp,chown=true",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
)  # fmt: skip


def test_a_standalone_container_serves_a_client_on_a_loopback_port(
    podman: Podman, image: str
) -> None:
    """Run hardened as the pods are; served through a published loopback port."""
    port = free_port()
    name = podman.run(f"{PREFIX}standalone", image, *HARDENED, *_published(port))
    assert podman.wait_ready(name, READY_TIMEOUT_S) == "Mode: standalone\n"
    assert podman("healthcheck", "run", name, check=False).returncode == 0
    zk = _kazoo(port)
    try:
        zk.create("/from-the-host", b"through 127.0.0.1")
        assert zk.get("/from-the-host")[0] == b"through 127.0.0.1"
    finally:
        zk.stop()
        zk.close()
    # The entrypoint exec'd the server: it is PID 1, as the image's non-root user.
    assert "pyzk" in podman.exec(name, "cat", "/proc/1/cmdline").stdout
    assert podman.exec(name, "id", "-u").stdout.strip() == "1000"
    # SIGTERM reaches the server, which stops cleanly.
    podman("stop", "-t", "20", name)
    assert podman.inspect(name)["State"]["ExitCode"] == 0


def test_a_restarted_member_keeps_its_id_and_one_server_list(podman: Podman, image: str) -> None:
    """The seed's entrypoint appended the server lines at each start of the container."""
    # `pyzk --version` runs the whole configuration step, then exits: no server involved.
    name = f"{PREFIX}restart"
    podman("run", "--name", name, "--label", LABEL, "-e", "MYID=2", image, "--version")
    for _ in range(2):
        podman("start", "--attach", name)
    cfg = podman("cp", f"{name}:/usr/local/zookeeper/run/zoo.cfg", "-").stdout
    servers = re.findall(r"^server\.\d+=.*$", cfg, re.M)
    assert servers == [f"server.{n}=zookeeper{n}:2888:3888" for n in SERVERS]
    myid = podman("cp", f"{name}:/usr/local/zookeeper/data/myid", "-").stdout
    assert "2\n" in myid
    podman("rm", "-f", "-v", name)


def test_an_invalid_myid_stops_the_container_with_status_2(podman: Podman, image: str) -> None:
    name = f"{PREFIX}badid"
    out = podman("run", "--name", name, "--label", LABEL, "-e", "MYID=0", image, check=False)
    assert out.returncode == 2
    assert "MYID" in out.stderr
    podman("rm", "-f", "-v", name)


# --- the seed's topology: three containers zookeeper1..3 -----------------------------------


def _host(podman: Podman, image: str, network: str, n: int, *opts: str, tag: str = "") -> str:
    """Container zookeeperN on the network, known there by its seed host name."""
    return podman.run(
        f"{PREFIX}{tag}zookeeper{n}", image,
        "--network", network, "--hostname", f"zookeeper{n}", "--network-alias", f"zookeeper{n}",
        *opts,
    )  # fmt: skip


def test_members_reach_each_other_by_the_seeds_host_names(podman: Podman, image: str) -> None:
    """The plumbing the ensemble needs, checked without it: three standalone servers
    on a network of their own, each answering the others by name on the client port."""
    network = f"{PREFIX}names"
    podman("network", "create", "--label", LABEL, network)
    names = [_host(podman, image, network, n, tag="names-") for n in SERVERS]
    for name in names:
        podman.wait_ready(name, READY_TIMEOUT_S)
    for name in names:
        for n in SERVERS:
            out = podman.exec(name, "pyzk", "status", "--host", f"zookeeper{n}", "--timeout", "5")
            assert out.stdout == "Mode: standalone\n", (name, n, out.stderr)
    podman("rm", "-f", "-v", *names)
    podman("network", "rm", network)


def _mode(podman: Podman, name: str) -> str:
    return podman.exec(name, "pyzk", "status", "--timeout", "2").stdout.strip()


def test_three_containers_form_the_seeds_ensemble_and_survive_losing_one(
    podman: Podman, image: str
) -> None:
    network = f"{PREFIX}net"
    podman("network", "create", "--label", LABEL, network)
    ports = {n: free_port() for n in SERVERS}
    names = {1: _host(podman, image, network, 1, "-e", "MYID=1", *_published(ports[1]))}
    for n in SERVERS[1:]:
        names[n] = _host(podman, image, network, n, "-e", f"MYID={n}", *_published(ports[n]))
    for name in names.values():
        podman.wait_ready(name, ENSEMBLE_READY_TIMEOUT_S)
    modes = {n: _mode(podman, name) for n, name in names.items()}
    assert sorted(modes.values()) == ["Mode: follower", "Mode: follower", "Mode: leader"], modes

    writer = _kazoo(ports[1])
    try:
        writer.create("/seed-topology", b"written on zookeeper1")
    finally:
        writer.stop()
        writer.close()
    for n in SERVERS[1:]:
        reader = _kazoo(ports[n])
        try:
            reader.sync("/seed-topology")
            assert reader.get("/seed-topology")[0] == b"written on zookeeper1"
        finally:
            reader.stop()
            reader.close()

    (leader,) = [n for n, mode in modes.items() if mode == "Mode: leader"]
    podman("kill", names[leader])
    survivors = [n for n in SERVERS if n != leader]
    for n in survivors:
        podman.wait_ready(names[n], ENSEMBLE_READY_TIMEOUT_S)
    client = KazooClient(hosts=",".join(f"127.0.0.1:{ports[n]}" for n in survivors), timeout=10.0)
    client.start(timeout=60)
    try:
        client.create("/after-losing-the-leader", b"still serving")
        assert client.get("/seed-topology")[0] == b"written on zookeeper1"
    finally:
        client.stop()
        client.close()
    for n in survivors:
        reader = _kazoo(ports[n])
        try:
            reader.sync("/after-losing-the-leader")
            assert reader.get("/after-losing-the-leader")[0] == b"still serving"
        finally:
            reader.stop()
            reader.close()
