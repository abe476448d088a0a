"""Start, watch and stop the servers under test: pyzk and Apache ZooKeeper, alone or three.

Equivalence by construction: both kinds read the *same* zoo.cfg text (only ports and
folders differ), written by :func:`zoo_cfg`; pyzk takes it with ``--config``. Both
keep their data in folders under one run folder, so on the same disk. ZooKeeper gets
the heap zkServer.sh gives it (``-Xmx1000m``) and the Debian log4j settings.

Every server runs in a session of its own (``start_new_session``) pinned with
``taskset``; we stop it by its process group id, first with SIGTERM, then SIGKILL.
:func:`stop_all` stops whatever is still running; the command line calls it on every
exit path, so no process is left behind.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench import wire
from bench.ports import free_port

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_CONF = Path("/etc/zookeeper/conf")  # log4j.properties
KINDS = ("zookeeper", "pyzk")
# A server that does not answer within this long after exec has failed to start (1
# million znodes take a while to load from disk).
START_TIMEOUT_S = 300.0
# After SIGTERM, how long a server may take to exit before SIGKILL.
STOP_GRACE_S = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Settings:
    """What both kinds of server share; written into each zoo.cfg."""

    tick_time_ms: int = 2000
    heap_mb: int = 1000  # ZooKeeper's JVM heap, as zkServer.sh sets it
    force_sync: bool = True  # ZooKeeper's default: fsync the log before acking
    snap_count: int = 100000  # ZooKeeper's default
    server_cpus: str | None = None  # taskset -c list for servers, e.g. "0"

    def keys(self) -> dict[str, str]:
        return {
            "tickTime": str(self.tick_time_ms),
            "initLimit": "10",
            "syncLimit": "5",
            "maxClientCnxns": "0",
            "admin.enableServer": "false",
            "4lw.commands.whitelist": "*",
            "autopurge.purgeInterval": "0",
            "forceSync": "yes" if self.force_sync else "no",
            "snapCount": str(self.snap_count),
        }


def zoo_cfg(
    settings: Settings, workdir: Path, port: int, peers: list[tuple[int, int]] | None = None
) -> str:
    """The zoo.cfg both kinds read; ``peers`` are (quorum, election) ports of an ensemble."""
    keys = {
        **settings.keys(),
        "dataDir": str(workdir / "data"),
        "dataLogDir": str(workdir / "log"),
        "clientPort": str(port),
        "clientPortAddress": "127.0.0.1",
    }
    for sid, (qp, ep) in enumerate(peers or [], start=1):
        keys[f"server.{sid}"] = f"127.0.0.1:{qp}:{ep}"
    return "".join(f"{k}={v}\n" for k, v in keys.items())


def four_letter(port: int, word: str, timeout: float = 2.0) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
    except OSError:
        pass
    else:
        return b"".join(chunks).decode(errors="replace")
    return ""


def mode(port: int) -> str | None:
    """The Mode line of ``srvr``: standalone, leader, follower; None if no answer."""
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


_live: dict[int, Server] = {}
_live_lock = threading.Lock()


@dataclass
class Server:
    """One server process: a kind, a folder with its zoo.cfg, data and log, a port."""

    kind: str
    workdir: Path
    port: int
    settings: Settings
    myid: int | None = None
    peers: list[tuple[int, int]] | None = None
    proc: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0
    startups_ms: list[float] = field(default_factory=list)

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        cfg = str(self.workdir / "zoo.cfg")
        if self.kind == "zookeeper":
            return [
                "java",
                f"-Xmx{self.settings.heap_mb}m",
                "-Dzookeeper.admin.enableServer=false",
                f"-Dzookeeper.log.dir={self.workdir}",
                "-Dzookeeper.root.logger=INFO,ROLLINGFILE",
                "-cp",
                f"{ZK_CONF}:{ZK_JAR}",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                cfg,
            ]
        return [sys.executable, "-m", "pyzk", "--config", cfg]

    def prepare(self) -> None:
        for sub in ("data", "log"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        (self.workdir / "zoo.cfg").write_text(
            zoo_cfg(self.settings, self.workdir, self.port, self.peers)
        )
        if self.myid is not None:
            (self.workdir / "data" / "myid").write_text(f"{self.myid}\n")

    def spawn(self) -> None:
        """Exec the server (pinned); :meth:`wait_ready` tells when it answers."""
        self.prepare()
        cmd = self.command()
        if self.settings.server_cpus:
            cmd = ["taskset", "-c", self.settings.server_cpus, *cmd]
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the child owns it
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
        )
        log.close()
        with _live_lock:
            _live[self.proc.pid] = self

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Milliseconds from exec to the first answered request; raise if it never came."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"{self.kind} on port {self.port} exited:\n{self.log_tail()}")
            t = wire.probe_ready("127.0.0.1", self.port, timeout_s=1.0)
            if t is not None:
                ms = (t - self.spawned_at) * 1000
                self.startups_ms.append(ms)
                return ms
        raise RuntimeError(f"{self.kind} on port {self.port} did not answer in {timeout_s:.0f}s")

    def start(self) -> float:
        self.spawn()
        return self.wait_ready()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        with _live_lock:
            _live.pop(self.proc.pid, None)

    def forget(self) -> None:
        """The process was killed by someone else (the failover probe): reap it."""
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.stop(signal.SIGKILL)
            with _live_lock:
                _live.pop(self.proc.pid, None)

    # --- resources ----------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """user + system CPU of the whole process (all threads) so far."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_bytes(self) -> int:
        try:
            statm = Path(f"/proc/{self.pid}/statm").read_text().split()
        except OSError:
            return 0
        return int(statm[1]) * PAGE

    def data_bytes(self) -> int:
        """Bytes on disk under the data and log folders (snapshots, logs, myid)."""
        total = 0
        for sub in ("data", "log"):
            for root, _dirs, files in os.walk(self.workdir / sub):
                for f in files:
                    with suppress(OSError):
                        total += os.stat(os.path.join(root, f)).st_blocks * 512
        return total

    def log_tail(self, n: int = 30) -> str:
        texts = []
        for name in ("server.log", "zookeeper.log"):
            p = self.workdir / name
            if p.exists():
                texts += p.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(texts[-n:])


def stop_all() -> None:
    """Stop every server this process started and has not stopped (any exit path)."""
    with _live_lock:
        servers = list(_live.values())
    for srv in servers:
        srv.stop()


@dataclass
class Cluster:
    """The servers of one target: one (standalone) or three (an ensemble) of one kind."""

    kind: str
    servers: list[Server]

    @property
    def hosts(self) -> str:
        return ",".join(s.hosts for s in self.servers if s.alive)

    def start(self) -> float:
        """Start every member; the slowest member's start-up in ms."""
        for s in self.servers:
            s.spawn()
        return max(s.wait_ready() for s in self.servers)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds() for s in self.servers if s.alive)

    def rss_bytes(self) -> int:
        return sum(s.rss_bytes() for s in self.servers if s.alive)

    def modes(self) -> list[str | None]:
        return [mode(s.port) if s.alive else None for s in self.servers]

    def leader(self) -> Server | None:
        for s, m in zip(self.servers, self.modes(), strict=True):
            if m == "leader":
                return s
        return None


def standalone(kind: str, workdir: Path, settings: Settings) -> Cluster:
    return Cluster(kind, [Server(kind, workdir, free_port(), settings)])


def ensemble(kind: str, workdir: Path, settings: Settings, size: int = 3) -> Cluster:
    peers = [(free_port(), free_port()) for _ in range(size)]
    servers = [
        Server(kind, workdir / f"s{i}", free_port(), settings, myid=i, peers=peers)
        for i in range(1, size + 1)
    ]
    return Cluster(kind, servers)


def parse_cpus(spec: str | None) -> list[int]:
    """taskset's list syntax: ``0``, ``0,2``, ``0-3``."""
    out: list[int] = []
    for part in (spec or "").split(","):
        if "-" in part:
            lo, hi = part.split("-")
            out += range(int(lo), int(hi) + 1)
        elif part.strip():
            out.append(int(part))
    return out


def cpu_time(cpus: list[int]) -> tuple[float, float]:
    """(busy, steal) seconds of these CPUs so far, from /proc/stat."""
    busy = steal = 0
    wanted = {f"cpu{c}" for c in cpus}
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f and f[0] in wanted:
            user, nice, system, _idle, _iowait, irq, softirq, st = map(int, f[1:9])
            busy += user + nice + system + irq + softirq
            steal += st
    return busy / CLK_TCK, steal / CLK_TCK


class ResourceWatch:
    """Samples a cluster's CPU and RSS every ``period_s`` while a workload runs.

    ``server_cpu_pct`` is the median of the per-period CPU (100 = one core), so the
    setup and cleanup at the edges of a zkload run do not dilute the steady state.
    When the servers are pinned, it also measures interference: CPU time that other
    processes (``others_cpu_pct``) and the hypervisor (``steal_pct``) took on the
    servers' cores, in % of those cores, over the run.
    """

    def __init__(self, cluster: Cluster, period_s: float = 0.5) -> None:
        self.cluster = cluster
        self.period_s = period_s
        self.samples: list[tuple[float, float, int]] = []
        self.cpus = parse_cpus(cluster.servers[0].settings.server_cpus)
        self._cores: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ResourceWatch:
        self._cores.append(cpu_time(self.cpus))
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self._cores.append(cpu_time(self.cpus))

    def _sample(self) -> None:
        c = self.cluster
        self.samples.append((time.monotonic(), c.cpu_seconds(), c.rss_bytes()))

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def result(self) -> dict[str, float]:
        s = self.samples
        rates = sorted(
            100 * (b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(s) if b[0] > a[0]
        )
        wall = s[-1][0] - s[0][0]
        out = self._interference(wall, s[-1][1] - s[0][1])
        return {
            **out,
            "server_cpu_pct": round(rates[len(rates) // 2], 1) if rates else 0.0,
            "server_cpu_s": round(s[-1][1] - s[0][1], 3),
            "server_cpu_pct_avg": round(100 * (s[-1][1] - s[0][1]) / wall, 1) if wall else 0.0,
            "server_rss_mb": round(s[-1][2] / 2**20, 1),
            "server_rss_max_mb": round(max(x[2] for x in s) / 2**20, 1),
        }

    def _interference(self, wall: float, server_cpu_s: float) -> dict[str, float]:
        if not self.cpus or len(self._cores) < 2 or wall <= 0:
            return {}
        (b0, s0), (b1, s1) = self._cores[0], self._cores[-1]
        cores = wall * len(self.cpus) / 100
        return {
            "others_cpu_pct": round(max(0.0, b1 - b0 - server_cpu_s) / cores, 1),
            "steal_pct": round((s1 - s0) / cores, 1),
        }
