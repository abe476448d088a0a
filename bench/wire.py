"""Just enough of the ZooKeeper client protocol for the benchmark's own probes.

The harness speaks the wire format itself (``struct``, no client library) where a
workload needs many sessions or exact timing at little client cost: idle sessions,
watch fan-out, populating a million znodes, readiness probes. It is written against the
protocol, not against pyzk's codec, so that the bench measures pyzk as any client sees
it and keeps working while pyzk's internals change.

Frames are a 4-byte big-endian length and a body. Requests are a ``RequestHeader``
(xid, opcode) and the op's record; replies a ``ReplyHeader`` (xid, zxid, err) and the
op's response. Notifications come with xid -1, ping replies with xid -2.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_PING = 11
OP_CLOSE = -11

XID_NOTIFICATION = -1
XID_PING = -2

ZOK = 0
ZNONODE = -101
ZNODEEXISTS = -110

_INT = struct.Struct(">i")
_REQ_HDR = struct.Struct(">ii")
_REPLY_HDR = struct.Struct(">iqi")
REPLY_HDR_SIZE = _REPLY_HDR.size
# Stat: czxid mzxid ctime mtime (long) version cversion aversion (int) ephemeralOwner
# (long) dataLength numChildren (int) pzxid (long)
_STAT = struct.Struct(">qqqqiiiqiiq")
_WORLD_ANYONE_ALL = (
    _INT.pack(1) + _INT.pack(31) + _INT.pack(5) + b"world" + _INT.pack(6) + b"anyone"
)


def _buf(data: bytes) -> bytes:
    return _INT.pack(len(data)) + data


def frame(body: bytes) -> bytes:
    return _INT.pack(len(body)) + body


def connect_request(timeout_ms: int) -> bytes:
    """ConnectRequest for a new session (protocol 0, no last zxid, zero password)."""
    return frame(struct.pack(">iqiq", 0, 0, timeout_ms, 0) + _buf(b"\0" * 16) + b"\0")


def request(xid: int, op: int, body: bytes = b"") -> bytes:
    return frame(_REQ_HDR.pack(xid, op) + body)


def exists(xid: int, path: str, watch: bool = False) -> bytes:
    return request(xid, OP_EXISTS, _buf(path.encode()) + (b"\1" if watch else b"\0"))


def get_data(xid: int, path: str, watch: bool = False) -> bytes:
    return request(xid, OP_GET_DATA, _buf(path.encode()) + (b"\1" if watch else b"\0"))


def set_data(xid: int, path: str, data: bytes, version: int = -1) -> bytes:
    return request(xid, OP_SET_DATA, _buf(path.encode()) + _buf(data) + _INT.pack(version))


def create(xid: int, path: str, data: bytes, flags: int = 0) -> bytes:
    """create, persistent by default, with the world:anyone ALL ACL."""
    body = _buf(path.encode()) + _buf(data) + _WORLD_ANYONE_ALL + _INT.pack(flags)
    return request(xid, OP_CREATE, body)


def delete(xid: int, path: str, version: int = -1) -> bytes:
    return request(xid, OP_DELETE, _buf(path.encode()) + _INT.pack(version))


def ping() -> bytes:
    return request(XID_PING, OP_PING)


def close_session(xid: int) -> bytes:
    return request(xid, OP_CLOSE)


@dataclass(frozen=True, slots=True)
class Reply:
    xid: int
    zxid: int
    err: int
    body: bytes


def parse_reply(body: bytes) -> Reply:
    xid, zxid, err = _REPLY_HDR.unpack_from(body)
    return Reply(xid, zxid, err, body[REPLY_HDR_SIZE:])


def num_children(stat_body: bytes) -> int:
    """numChildren of the Stat that an exists reply carries."""
    return int(_STAT.unpack_from(stat_body)[9])


class FrameReader:
    """Bytes in, whole frame bodies out; "need more bytes" is not an error."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (n,) = _INT.unpack_from(buf, pos)
            if end - pos - 4 < n:
                break
            out.append(bytes(buf[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        del buf[:pos]
        return out


class ProtocolFailure(Exception):
    """The server closed the connection or answered something unexpected."""


class Session:
    """One blocking session over a TCP socket: handshake, calls, pipelined batches."""

    def __init__(
        self, host: str, port: int, timeout_ms: int = 30000, io_timeout_s: float = 10.0
    ) -> None:
        self.sock = socket.create_connection((host, port), timeout=io_timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = FrameReader()
        self.pending: deque[bytes] = deque()
        self.xid = 0
        self.sock.sendall(connect_request(timeout_ms))
        body = self._next_frame()
        _proto, negotiated, self.session_id = struct.unpack_from(">iiq", body)
        if negotiated <= 0:
            raise ProtocolFailure("session refused (negotiated timeout 0)")

    def next_xid(self) -> int:
        self.xid += 1
        return self.xid

    def _next_frame(self) -> bytes:
        while not self.pending:
            data = self.sock.recv(1 << 16)
            if not data:
                raise ProtocolFailure("connection closed by the server")
            self.pending.extend(self.reader.feed(data))
        return self.pending.popleft()

    def next_reply(self) -> Reply:
        """The next reply to a request of ours (notifications and pings are skipped)."""
        while True:
            reply = parse_reply(self._next_frame())
            if reply.xid >= 0 or reply.xid == OP_CLOSE:
                return reply

    def call(self, req: bytes) -> Reply:
        self.sock.sendall(req)
        return self.next_reply()

    def pipeline(self, requests: Iterable[bytes], window: int = 500) -> dict[int, int]:
        """Send requests keeping at most ``window`` outstanding; count replies by err.

        The window keeps the replies we have not read small, so the server never stops
        reading us for backpressure while we block in send.
        """
        counts: dict[int, int] = {}
        outstanding = 0
        it: Iterator[bytes] = iter(requests)
        done = False
        while not done or outstanding:
            batch: list[bytes] = []
            while not done and outstanding + len(batch) < window:
                nxt = next(it, None)
                if nxt is None:
                    done = True
                else:
                    batch.append(nxt)
            if batch:
                self.sock.sendall(b"".join(batch))
                outstanding += len(batch)
            # read at least one reply, then whatever else has arrived
            reply = self.next_reply()
            counts[reply.err] = counts.get(reply.err, 0) + 1
            outstanding -= 1
            while self.pending and outstanding:
                reply = self.next_reply()
                counts[reply.err] = counts.get(reply.err, 0) + 1
                outstanding -= 1
        return counts

    def close(self) -> None:
        try:
            self.sock.sendall(close_session(self.next_xid()))
            self.next_reply()
        except OSError:
            pass
        except ProtocolFailure:
            pass
        finally:
            self.sock.close()


def probe_ready(host: str, port: int, timeout_s: float) -> float | None:
    """The monotonic time at which a new session first got an answer to exists("/"),
    or None if none did within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            s = Session(host, port, io_timeout_s=1.0)
            try:
                if s.call(exists(s.next_xid(), "/")).err == ZOK:
                    return time.monotonic()
            finally:
                s.close()
        except (OSError, ProtocolFailure, struct.error):
            pass
        time.sleep(0.01)
    return None
