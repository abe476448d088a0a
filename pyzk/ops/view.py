"""What the operator commands may ask of a running server.

The four-letter words, the AdminServer commands and ``/metrics`` are pure functions of
a :class:`ServerView`: the asyncio shell implements it (``pyzk.server.ops_view``) and
the unit tests fake it. Anything that needs the wall clock, the file system or the
process (directory sizes, the environment, file descriptors) is a method here, so the
formatting code never touches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pyzk.config import Config
from pyzk.ops.stats import ConnectionStats, ServerMetrics, ServerStats
from pyzk.tree.datatree import DataTree


@dataclass(frozen=True, slots=True)
class ConnInfo:
    """One client connection as the operator commands show it."""

    peer: str  # "ip:port"
    session_id: int  # 0 before the handshake
    timeout_ms: int
    interest_ops: int  # as Java NIO: 1 reading, 4 writing, 0 neither
    stats: ConnectionStats
    watcher: object  # the key its watches are registered under
    expiry_wall_ms: int  # when the connection would expire if it stays idle


class ServerView(Protocol):
    trace_mask: int  # gtmk/stmk

    @property
    def config(self) -> Config: ...

    @property
    def stats(self) -> ServerStats: ...

    @property
    def metrics(self) -> ServerMetrics: ...

    @property
    def tree(self) -> DataTree: ...

    @property
    def mode(self) -> str:
        """``standalone``, ``leader``, ``follower``, ``observer`` or ``read-only``."""
        ...

    @property
    def serving(self) -> bool:
        """Is the server answering clients (else most words say it is not serving)?"""
        ...

    def connections(self) -> list[ConnInfo]: ...

    def outstanding(self) -> int: ...

    def uptime_ms(self) -> int: ...

    def global_sessions(self) -> int: ...

    def session_buckets(self) -> list[tuple[int, list[int]]]:
        """(expiry as wall-clock ms, session ids) per expiry bucket, oldest first."""
        ...

    def dir_sizes(self) -> tuple[int, int]:
        """Bytes in dataDir and in dataLogDir."""
        ...

    def data_dirs(self) -> tuple[str, str]:
        """Absolute dataDir and dataLogDir."""
        ...

    def environment(self) -> list[tuple[str, str]]: ...

    def system_properties(self) -> dict[str, str]: ...

    def initial_config(self) -> str: ...

    def file_descriptors(self) -> tuple[int, int]:
        """(open, max) file descriptors of the process."""
        ...

    def role_gauges(self) -> dict[str, int]:
        """Gauges of a quorum role (quorum_size, learners, ...); empty when standalone."""
        ...

    def voting_view(self) -> dict[str, Any]:
        """sid -> its server addresses (the AdminServer's voting_view); empty standalone."""
        ...

    def leader_info(self) -> dict[str, Any]:
        """is_leader, leader_id, leader_ip of a quorum member."""
        ...

    def zab_state(self) -> dict[str, Any]:
        """myid, addresses, voting, last_zxid, zab_epoch ... of a quorum member."""
        ...

    def last_snapshot(self) -> tuple[int, int] | None:
        """(zxid, time in s) of the newest snapshot, None when there is none."""
        ...
