"""Four-letter words on the client port, in ZooKeeper's text format.

Scripts parse these outputs (``Mode: leader``, ``Zxid: 0x...``), so each keeps the exact
layout of ZooKeeper 3.8's command classes. A word outside ``4lw.commands.whitelist``
gets ZooKeeper's refusal line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pyzk import __version__

if TYPE_CHECKING:
    from pyzk.server.node import Server

# What `srvr` reports as the version: the ZooKeeper release we are compatible with first,
# so tools that parse it (e.g. to pick features) see 3.8.
VERSION_LINE = f"Zookeeper version: 3.8.0-pyzk-{__version__}, built on pyzk"


def answer(server: Server, word: str) -> str:
    wl = server.config.fourlw_whitelist
    if "*" not in wl and word not in wl:
        return f"{word} is not executed because it is not in the whitelist.\n"
    handler = _WORDS.get(word)
    if handler is None:
        return ""
    return handler(server)


def _ruok(server: Server) -> str:
    return "imok"


def _isro(server: Server) -> str:
    return "ro" if server.mode == "read-only" else "rw"


def _summary(server: Server) -> list[str]:
    s = server.stats
    return [
        f"Latency min/avg/max: {s.latency_min_ms}/{s.latency_avg_ms}/{s.latency_max_ms}",
        f"Received: {s.packets_received}",
        f"Sent: {s.packets_sent}",
        f"Connections: {len(server.connections)}",
        f"Outstanding: {server.proc.outstanding()}",
        f"Zxid: 0x{server.tree.last_zxid:x}",
        f"Mode: {server.mode}",
        # ZooKeeper's node map holds the root twice ("" and "/"): its count is one more.
        f"Node count: {server.tree.node_count() + 1}",
    ]


def _srvr(server: Server) -> str:
    return "\n".join([VERSION_LINE, *_summary(server)]) + "\n"


def _stat(server: Server) -> str:
    clients = [f" /{c.peer}[1](queued=0,recved=0,sent=0)" for c in server.connections]
    return "\n".join([VERSION_LINE, "Clients:", *clients, "", *_summary(server)]) + "\n"


_WORDS: dict[str, Callable[[Server], str]] = {
    "ruok": _ruok,
    "isro": _isro,
    "srvr": _srvr,
    "stat": _stat,
}
