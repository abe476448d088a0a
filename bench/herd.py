"""Many raw sessions in one thread: a socket each, one selector for all.

Cheap on the client side (no client library, no thread per session), so 10,000 idle
sessions or 1,000 watchers cost the load core little and the figures are the server's.
Opening is done in small batches: ZooKeeper's accept backlog is 50, and a full backlog
makes the kernel retry a SYN after a whole second, which would measure the backlog
rather than the server.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections.abc import Callable

from bench import wire

# Connections opened at once; below ZooKeeper's accept backlog (50).
OPEN_BATCH = 32


class Herd:
    def __init__(self, host: str, port: int, timeout_ms: int) -> None:
        self.host, self.port, self.timeout_ms = host, port, timeout_ms
        self.socks: list[socket.socket] = []
        self.readers: list[wire.FrameReader] = []
        self.sel = selectors.DefaultSelector()

    def __len__(self) -> int:
        return len(self.socks)

    def open(self, n: int, io_timeout_s: float = 30.0) -> None:
        """Open ``n`` sessions (handshake done); raise if the server refuses one.

        Opening many can outlast the session timeout (ZooKeeper logs and fsyncs each new
        session), so every third of the timeout the sessions opened so far are pinged.
        """
        hello = wire.connect_request(self.timeout_ms)
        keepalive_s = self.timeout_ms / 3000
        last_ping = time.monotonic()
        while len(self.socks) < n:
            if time.monotonic() - last_ping > keepalive_s:
                self.ping_all(io_timeout_s)
                last_ping = time.monotonic()
            batch: list[socket.socket] = []
            for _ in range(min(OPEN_BATCH, n - len(self.socks) - len(batch))):
                s = socket.create_connection((self.host, self.port), timeout=io_timeout_s)
                s.sendall(hello)
                batch.append(s)
            for s in batch:
                reader = wire.FrameReader()
                frames: list[bytes] = []
                while not frames:
                    data = s.recv(4096)
                    if not data:
                        raise wire.ProtocolFailure(f"session {len(self.socks)} refused")
                    frames = reader.feed(data)
                (negotiated,) = struct.unpack_from(">i", frames[0], 4)
                if negotiated <= 0:
                    raise wire.ProtocolFailure("session refused (negotiated timeout 0)")
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ, len(self.socks))
                self.socks.append(s)
                self.readers.append(reader)

    def ping_all(self, timeout_s: float = 30.0) -> int:
        """Ping every session; how many answered within ``timeout_s``."""
        self.send_all(lambda i: wire.ping())
        return len(self.collect(lambda r: r.xid == wire.XID_PING, timeout_s))

    def send_all(self, make: Callable[[int], bytes]) -> None:
        """Send ``make(i)`` on every session (small requests: no partial-send handling)."""
        for i, s in enumerate(self.socks):
            data = make(i)
            try:
                s.send(data)
            except BlockingIOError:
                s.setblocking(True)
                s.sendall(data)
                s.setblocking(False)

    def collect(self, want: Callable[[wire.Reply], bool], timeout_s: float) -> dict[int, float]:
        """Per session, the monotonic time of the first frame that satisfies ``want``.

        Returns when every session has one or at ``timeout_s``; other frames are dropped.
        """
        got: dict[int, float] = {}
        n = len(self.socks)
        deadline = time.monotonic() + timeout_s
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in self.sel.select(min(left, 0.5)):
                i = key.data
                try:
                    data = self.socks[i].recv(65536)
                except BlockingIOError:
                    continue
                now = time.monotonic()
                if not data:
                    self.sel.unregister(self.socks[i])
                    continue
                for body in self.readers[i].feed(data):
                    if i not in got and want(wire.parse_reply(body)):
                        got[i] = now
        return got

    def close(self) -> None:
        """closeSession on every session, then close the sockets."""
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.send(wire.close_session(1 << 30))
        time.sleep(0.1)
        for s in self.socks:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(s)
            s.close()
        self.socks.clear()
        self.readers.clear()
        self.sel.close()
