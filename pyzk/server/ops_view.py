"""The running server as the operator commands see it (implements ``ServerView``).

Everything that reads the clock, the file system or the process for an operator command
lives here, so ``pyzk.ops`` stays pure formatting.
"""

from __future__ import annotations

import getpass
import os
import platform
import resource
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyzk.config import Config
from pyzk.ops import ZK_VERSION
from pyzk.ops.fourletter import DEFAULT_TRACE_MASK, SESSIONLESS_TIMEOUT_MS
from pyzk.ops.stats import ServerMetrics, ServerStats
from pyzk.ops.view import ConnInfo
from pyzk.security import redact
from pyzk.storage.snapshot import snapshot_files
from pyzk.tree.datatree import DataTree

if TYPE_CHECKING:
    from pyzk.server.node import Server

_MB = 1024 * 1024
# Java's os.arch names for the machines Python reports.
_JAVA_ARCH = {"x86_64": "amd64", "aarch64": "aarch64", "i686": "x86"}


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


def wall_ms() -> int:
    return int(time.time() * 1000)


class ServerOpsView:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.trace_mask = DEFAULT_TRACE_MASK  # kept for gtmk/stmk; pyzk has no trace log

    @property
    def config(self) -> Config:
        return self.server.config

    @property
    def stats(self) -> ServerStats:
        return self.server.stats

    @property
    def metrics(self) -> ServerMetrics:
        return self.server.metrics

    @property
    def tree(self) -> DataTree:
        return self.server.tree

    @property
    def mode(self) -> str:
        return self.server.mode

    @property
    def serving(self) -> bool:
        return self.server.serving

    def connections(self) -> list[ConnInfo]:
        to_wall = wall_ms() - monotonic_ms()
        out = []
        for conn in self.server.connections:
            handle = conn.handle
            idle_ms = conn.timeout_ms or SESSIONLESS_TIMEOUT_MS
            # ZooKeeper's connection expiry queue: buckets of sessionlessCnxnTimeout.
            due = handle.last_activity_ms + idle_ms
            due = (due // SESSIONLESS_TIMEOUT_MS + 1) * SESSIONLESS_TIMEOUT_MS
            out.append(
                ConnInfo(
                    conn.peer,
                    conn.session_id,
                    conn.timeout_ms,
                    handle.interest_ops(),
                    handle.stats,
                    conn,
                    due + to_wall,
                )
            )
        return out

    def outstanding(self) -> int:
        return self.server.proc.outstanding()

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.server.started_at) * 1000)

    def global_sessions(self) -> int:
        return len(self.server.proc.sessions)

    def session_buckets(self) -> list[tuple[int, list[int]]]:
        to_wall = wall_ms() - monotonic_ms()
        return [(t + to_wall, sids) for t, sids in self.server.proc.sessions.buckets()]

    def dir_sizes(self) -> tuple[int, int]:
        return _tree_size(self.config.data_dir), _tree_size(self.config.log_dir)

    def data_dirs(self) -> tuple[str, str]:
        return str(self.config.data_dir.resolve()), str(self.config.log_dir.resolve())

    def environment(self) -> list[tuple[str, str]]:
        """Environment.list's keys, with the Python process's values."""
        rss, total, available = _memory_mb()
        return [
            ("zookeeper.version", ZK_VERSION),
            ("host.name", socket.gethostname()),  # no DNS lookup on the event loop
            ("java.version", platform.python_version()),
            ("java.vendor", platform.python_implementation()),
            ("java.home", sys.prefix),
            ("java.class.path", os.pathsep.join(p for p in sys.path if p)),
            ("java.library.path", os.environ.get("LD_LIBRARY_PATH", "")),
            ("java.io.tmpdir", tempfile.gettempdir()),
            ("java.compiler", "<NA>"),
            ("os.name", platform.system()),
            ("os.arch", _JAVA_ARCH.get(platform.machine(), platform.machine())),
            ("os.version", platform.release()),
            ("user.name", _user()),
            ("user.home", str(Path.home())),
            ("user.dir", os.getcwd()),
            ("os.memory.free", f"{available}MB"),
            ("os.memory.max", f"{total}MB"),
            ("os.memory.total", f"{rss}MB"),
        ]

    def system_properties(self) -> dict[str, str]:
        props = dict(self.environment())
        props.update(
            {
                "file.encoding": sys.getfilesystemencoding().upper(),
                "file.separator": os.sep,
                "line.separator": "\n",
                "path.separator": os.pathsep,
            }
        )
        props.update({f"zookeeper.{k}": v for k, v in self.config.jvm_settings.items()})
        return dict(sorted(redact.properties(props).items()))

    def initial_config(self) -> str:
        return redact.config_text(self.config.source_text)

    def file_descriptors(self) -> tuple[int, int]:
        try:
            open_fds = len(os.listdir("/proc/self/fd"))
        except OSError:
            open_fds = -1
        return open_fds, resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    def role_gauges(self) -> dict[str, int]:
        return {}

    def voting_view(self) -> dict[str, Any]:
        return {}

    def leader_info(self) -> dict[str, Any]:
        return {"error": "server is not initialized"}

    def zab_state(self) -> dict[str, Any]:
        return {"voting": False, "zabstate": ""}

    def last_snapshot(self) -> tuple[int, int] | None:
        snaps = snapshot_files(self.server.config.data_dir)
        if not snaps:
            return None
        zxid, path = snaps[0]
        try:
            return zxid, int(path.stat().st_mtime)
        except OSError:
            return None


def _tree_size(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file(follow_symlinks=False):
                total += e.stat(follow_symlinks=False).st_size
    return total


def _memory_mb() -> tuple[int, int, int]:
    """(this process's resident size, the machine's memory, memory available) in MB."""
    info: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    return rss // _MB, info.get("MemTotal", 0) // _MB, info.get("MemAvailable", 0) // _MB


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class QuorumOpsView(ServerOpsView):
    """What an ensemble member adds: its role's gauges and ZAB's view of the ensemble."""

    def role_gauges(self) -> dict[str, int]:
        from pyzk.zab.leader import Leader

        server = self.server
        gauges = {"quorum_size": len(server.voters)}  # type: ignore[attr-defined]
        role = server.peer.role  # type: ignore[attr-defined]
        if isinstance(role, Leader):
            learners = role.learners.values()
            synced = [lk for lk in learners if lk.phase == "synced"]
            gauges.update(
                learners=len(role.learners),
                synced_followers=sum(1 for lk in synced if not lk.observer),
                synced_non_voting_followers=0,
                synced_observers=sum(1 for lk in synced if lk.observer),
                pending_syncs=sum(1 for lk in learners if lk.phase != "synced"),
            )
        return gauges

    def voting_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {}
        for sid, spec in sorted(self.server.config.servers.items()):
            if spec.role != "participant":
                continue
            client = f"{spec.client_address or '0.0.0.0'}:{spec.client_port or 0}"
            view[str(sid)] = (
                f"{spec.host}:{spec.quorum_port}:{spec.election_port}:{spec.role};{client}"
            )
        return view

    def leader_info(self) -> dict[str, Any]:
        peer = self.server.peer  # type: ignore[attr-defined]
        leader = peer.leader_id
        if leader is None or not self.serving:
            return {"error": "server is not initialized"}
        spec = self.server.config.servers[leader]
        return {"is_leader": leader == peer.sid, "leader_id": leader, "leader_ip": spec.host}

    def zab_state(self) -> dict[str, Any]:
        peer = self.server.peer  # type: ignore[attr-defined]
        spec = self.server.config.servers[peer.sid]
        if peer.role is None:
            state = "ELECTION"
        elif peer.serving:
            state = "BROADCAST"
        else:
            state = "SYNCHRONIZATION"
        return {
            "myid": peer.sid,
            "is_leader": peer.leader_id == peer.sid and peer.serving,
            "quorum_address": f"{spec.host}:{spec.quorum_port}",
            "election_address": f"{spec.host}:{spec.election_port}",
            "voting": peer.sid in peer.voters,
            "last_zxid": f"0x{peer.history.last:x}",
            "zab_epoch": peer.current_epoch,
            "zab_state": state,
        }
