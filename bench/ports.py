"""Free loopback ports for servers that the bench and the tests start.

A port the kernel hands out as "free" (bind to port 0) comes from the ephemeral range,
which is also where the source ports of outgoing connections come from: in the moment
between choosing the port and the server binding it, a connection of some other
process (an ensemble's peers dial each other constantly) can take it, and the server
fails to start with EADDRINUSE. Ports below that range are only ever taken by an
explicit bind, so they are chosen there, checked bindable, and never offered twice by
one process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _below_ephemeral() -> range:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return range(max(1024, low - 12000), low)


_PORTS = _below_ephemeral()
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports that ``host`` can bind now and this process has not handed out."""
    rng = random.Random()
    out: list[int] = []
    while len(out) < n:
        port = rng.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        out.append(port)
    return out
