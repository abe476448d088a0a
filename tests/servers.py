"""Start and stop real servers for tests: pyzk, and Apache ZooKeeper as the reference.

Both run as child processes on a free loopback port with their data in a temp folder,
and are stopped (then killed, if need be) when the test session ends: no process is
left behind.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.ports import free_port

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_CONF = Path("/etc/zookeeper/conf")
SERVLET_API = Path("/usr/share/java/servlet-api.jar")
# Netty's codec jar, which the TLS (NettyServerCnxnFactory) port needs and the manifest omits.
NETTY_CODEC = Path("/usr/share/java/netty-codec.jar")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def four_letter(port: int, word: str, host: str = "127.0.0.1", timeout: float = 5.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


@dataclass
class ServerProcess:
    kind: str  # "pyzk" or "zookeeper"
    port: int
    workdir: Path
    cmd: list[str]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.start_process()
        self.wait_ready()

    def start_process(self) -> None:
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env={**os.environ, **self.env},
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log_tail()}")
            try:
                if "Mode:" in four_letter(self.port, "srvr", self.host, timeout=1.0):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start in {START_TIMEOUT_S}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = (self.workdir / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])


def pyzk_server(
    workdir: Path,
    port: int | None = None,
    extra: dict[str, str | None] | None = None,
    host: str = "127.0.0.1",
) -> ServerProcess:
    """A pyzk process; ``extra`` settings override the defaults, None removes one."""
    port = port or free_port(host)
    settings = _settings({"4lw.commands.whitelist": "*", "admin.enableServer": "false"}, extra)
    cmd = [
        sys.executable,
        "-m",
        "pyzk",
        "--client-address",
        host,
        "--client-port",
        str(port),
        "--data-dir",
        str(workdir / "data"),
    ]
    for k, v in settings.items():
        cmd += ["--set", f"{k}={v}"]
    return ServerProcess("pyzk", port, workdir, cmd, host=host)


def _settings(defaults: dict[str, str], extra: dict[str, str | None] | None) -> dict[str, str]:
    merged: dict[str, str | None] = {**defaults, **(extra or {})}
    return {k: v for k, v in merged.items() if v is not None}


def zookeeper_server(
    workdir: Path,
    port: int | None = None,
    extra: dict[str, str | None] | None = None,
    host: str = "127.0.0.1",
    jvm_flags: list[str] | None = None,
) -> ServerProcess:
    """An Apache ZooKeeper process; ``extra`` as for :func:`pyzk_server`."""
    port = port or free_port(host)
    defaults = {
        "tickTime": "2000",
        "dataDir": str(workdir / "data"),
        "clientPort": str(port),
        "clientPortAddress": host,
        "admin.enableServer": "false",
        "4lw.commands.whitelist": "*",
    }
    settings = _settings(defaults, extra)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    cfg = workdir / "zoo.cfg"
    cfg.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    cmd = [
        "java",
        "-Xmx512m",
        f"-Dzookeeper.log.dir={workdir}",
        *(jvm_flags or []),
        "-cp",
        # The AdminServer's servlets need the servlet API, which the jar's manifest omits.
        f"{ZK_CONF}:{ZK_JAR}:{SERVLET_API}:{NETTY_CODEC}",
        "org.apache.zookeeper.server.quorum.QuorumPeerMain",
        str(cfg),
    ]
    return ServerProcess("zookeeper", port, workdir, cmd, host=host)


def make_server(
    kind: str,
    workdir: Path,
    extra: dict[str, str | None] | None = None,
    jvm_flags: list[str] | None = None,
) -> ServerProcess:
    """A server of ``kind`` with zoo.cfg settings ``extra`` and JVM ``-D`` flags.

    Some ZooKeeper settings are only read as Java system properties (for example
    ``-Dznode.container.checkIntervalMs``); pyzk reads the same flags from
    ``SERVER_JVMFLAGS``, as zkServer.sh passes them.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "pyzk":
        srv = pyzk_server(workdir, extra=extra)
        if jvm_flags:
            srv.env["SERVER_JVMFLAGS"] = " ".join(jvm_flags)
        return srv
    if kind == "zookeeper":
        if not ZK_JAR.exists():
            raise RuntimeError("Apache ZooKeeper is not installed: run `make zookeeper`")
        return zookeeper_server(workdir, extra=extra, jvm_flags=jvm_flags)
    raise ValueError(kind)
