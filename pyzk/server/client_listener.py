"""The client port (2181): one asyncio Protocol per connection, driving the pipeline.

The protocol is thin: it feeds bytes to the connection's sans-IO state, hands the events
to the server, and writes what the pipeline queued. Every complete frame in one
``data_received`` is handled in that call, and replies of a batch go out in one write.

Backpressure: when the transport's write buffer passes its high-water mark (the client
does not read its replies) or too many of its requests wait in the pipeline, the
protocol stops reading from that socket, so a slow client cannot grow our memory.
Frames already received are handled a batch at a time, and the same test stops the
batches: what is left waits in the connection's buffer until the client drains its
replies (one read of the socket can hold thousands of requests, each asking for a
megabyte). Reads waiting behind a write count too, as its commit answers them at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from pyzk.jute.codes import OpCode
from pyzk.ops.stats import REOPEN_SESSION, ConnectionStats, account_frames
from pyzk.pipeline.connection import (
    CONNECT,
    FOUR_LETTER,
    REQUEST,
    ClientConnection,
    Event,
    ProtocolError,
)
from pyzk.server.secure_port import add_certificate_ids

if TYPE_CHECKING:
    from pyzk.server.node import Server

log = logging.getLogger(__name__)

# Replies buffered for one client before we stop reading its requests.
WRITE_HIGH_WATER = 4 * 1024 * 1024
WRITE_LOW_WATER = 1024 * 1024
# Requests of one connection waiting in the pipeline before we stop reading it
# (ZooKeeper's globalOutstandingLimit is 1000 across all clients).
MAX_HELD_PER_CONNECTION = 1000
# Frames handled between two looks at the backpressure: a batch of replies passes the
# high-water mark by this many at most (64 MB of the largest, 1 MB getData replies),
# while pipelined small requests are still handled in bulk (smaller batches cost
# throughput: a socket write each).
FRAMES_PER_BATCH = 64
# Reads waiting behind a write of their session before we stop reading: its commit
# answers them all at once, so this bounds that burst of replies the same way.
HELD_READS_PER_CONNECTION = 32


class ClientProtocol(asyncio.Protocol):
    def __init__(self, node: Server, secure: bool = False) -> None:
        self.node = node
        self.secure = secure  # on the secure client port: inside TLS
        self.transport: asyncio.Transport | None = None
        self.conn: ClientConnection | None = None
        self._write_paused = False
        self._read_paused = False
        self._backlog = False  # frames may wait in conn.inbuf, held back by backpressure
        self._backlog_scheduled = False
        self.stats = ConnectionStats(int(time.time() * 1000))  # for cons, stat, mntr
        self.last_activity_ms = _now_ms()

    # --- asyncio callbacks ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = transport  # type: ignore[assignment]
        assert self.transport is not None
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.conn = ClientConnection(
            self.node.config.jute_maxbuffer, handle=self, peer=f"{peer[0]}:{peer[1]}"
        )
        self.transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
        if self.secure:
            add_certificate_ids(self.conn, transport, self.node.config.security)
        if not self.node.accept_connection(self.conn):
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.node.metrics.counters["bytes_received_count"] += len(data)
        self._receive(data)

    def _receive(self, data: bytes) -> None:
        """Handle the complete frames received, a batch at a time, while no backpressure."""
        conn, transport = self.conn, self.transport
        assert conn is not None and transport is not None
        while True:
            try:
                events = conn.receive_data(data, FRAMES_PER_BATCH)
            except ProtocolError as e:
                log.warning("Closing connection to %s: %s", conn.peer, e)
                self._abort()
                return
            data = b""
            if not events:
                self._backlog = False
                break
            self._count_received(events)
            self.node.handle_events(conn, events)
            if conn.closing or transport.is_closing():
                return
            if self._must_wait():
                self._backlog = True
                break
        self._update_reading()

    def _receive_backlog(self) -> None:
        """The frames held back, now that the backpressure is off (run from the loop)."""
        self._backlog_scheduled = False
        transport = self.transport
        closed = transport is None or transport.is_closing()
        if self._backlog and not closed and not self._must_wait():
            self._receive(b"")

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.node.connection_lost(self.conn)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    # --- called by the node -----------------------------------------------------------

    def flush(self) -> None:
        """Write what the pipeline queued for this connection; close if it is done."""
        conn, transport = self.conn, self.transport
        if conn is None or transport is None or transport.is_closing():
            return
        if conn.outbox:
            now = _now_ms()
            node = self.node
            account_frames(
                conn.outbox, self.stats, node.stats, node.metrics, now, node.tree.last_zxid
            )
            transport.write(conn.take_output())
        if conn.closing:
            transport.close()
        else:
            self._update_reading()

    def _count_received(self, events: list[Event]) -> None:
        """Packets in, and the requests that now wait for a reply (ServerCnxn stats)."""
        now = self.last_activity_ms = _now_ms()
        stats = self.stats
        stats.packets_received += len(events)
        self.node.stats.packets_received += len(events)
        for ev in events:
            kind = ev[0]
            if kind == REQUEST:
                stats.request_read(ev[1], ev[2], now)
            elif kind == CONNECT:
                self.node.metrics.counters["connection_request_count"] += 1
                op = OpCode.createSession if ev[1].sessionId == 0 else REOPEN_SESSION
                stats.request_read(0, op, now)
            elif kind == FOUR_LETTER:
                stats.four_letter = True

    def interest_ops(self) -> int:
        """What Java NIO would be selecting for: 1 read, 4 write (shown by cons/stat)."""
        transport = self.transport
        if self.stats.four_letter or transport is None or transport.is_closing():
            return 0
        ops = 0 if self._read_paused else 1
        return ops | (4 if transport.get_write_buffer_size() else 0)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _must_wait(self) -> bool:
        """Backpressure: replies pile up unread, or too many requests are in flight."""
        conn = self.conn
        if self._write_paused or conn is None:
            return self._write_paused
        held = conn.held
        if len(held) > MAX_HELD_PER_CONNECTION:
            return True
        # Reads held behind a write (a frame of None marks a write in flight).
        return len(held) > HELD_READS_PER_CONNECTION and (
            sum(1 for _, _, frame in held if frame is not None) > HELD_READS_PER_CONNECTION
        )

    def _update_reading(self) -> None:
        transport, conn = self.transport, self.conn
        if transport is None or conn is None or transport.is_closing():
            return
        want_pause = self._must_wait()
        if want_pause and not self._read_paused:
            transport.pause_reading()
            self._read_paused = True
        elif not want_pause and self._read_paused:
            transport.resume_reading()
            self._read_paused = False
        if not want_pause and self._backlog and not self._backlog_scheduled:
            # Not from here: this runs inside other connections' flushes.
            self._backlog_scheduled = True
            asyncio.get_running_loop().call_soon(self._receive_backlog)


def _now_ms() -> int:
    return int(time.monotonic() * 1000)
