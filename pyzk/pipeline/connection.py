"""One client connection's protocol state, without I/O (ZooKeeper's ServerCnxn).

Theory of operation
-------------------
Bytes in (:meth:`ClientConnection.receive_data`), events out; replies go to ``outbox``,
which the socket layer writes in one call per batch.

The stream is a sequence of length-prefixed frames. The first frame is the handshake
(a ConnectRequest, optionally followed by a ``readOnly`` byte); every later frame is a
RequestHeader plus a request body. Before the handshake, the first four bytes may
instead be a four-letter word ("ruok", "srvr", ...), which ZooKeeper recognises by
reading them as the frame length.

A frame over ``max_frame`` bytes, a negative length or a handshake that does not parse
is the peer's fault: :class:`ProtocolError` is raised and the connection must be closed.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

from pyzk.jute.codec import MarshallingError
from pyzk.jute.records import ConnectRequest
from pyzk.pipeline.acl import AuthInfo

# Default jute.maxbuffer: the largest frame ZooKeeper accepts (0xfffff bytes).
DEFAULT_MAX_FRAME = 0xFFFFF

_LEN = struct.Struct(">i").unpack_from
_HDR = struct.Struct(">ii").unpack_from

FOUR_LETTER_WORDS = frozenset(
    {
        "ruok", "stat", "srvr", "conf", "cons", "crst", "srst", "envi", "dump", "wchs",
        "wchc", "wchp", "mntr", "isro", "dirs", "gtmk", "stmk", "hash",
    }
)  # fmt: skip


class ProtocolError(Exception):
    """The client broke the protocol; close its connection (and only it)."""


# Event kinds returned by receive_data.
CONNECT = 0  # (CONNECT, ConnectRequest, sent_readonly_flag: bool | None)
REQUEST = 1  # (REQUEST, xid, opcode, frame bytes; the body starts at offset 8)
FOUR_LETTER = 2  # (FOUR_LETTER, word)

Event = tuple[Any, ...]


class ClientConnection:
    """Protocol state of one client connection; see the module docstring."""

    __slots__ = (
        "auth",
        "closing",
        "handle",
        "handshaken",
        "held",
        "inbuf",
        "max_frame",
        "outbox",
        "peer",
        "readonly_flag",
        "sasl",
        "session_id",
        "timeout_ms",
        "writes_in_flight",
    )

    def __init__(
        self, max_frame: int = DEFAULT_MAX_FRAME, handle: Any = None, peer: str = ""
    ) -> None:
        self.max_frame = max_frame
        self.handle = handle  # the socket layer's object for this connection
        self.peer = peer  # "ip:port", for logs and four-letter words
        # The ids this connection has proven: its address, then each addauth.
        self.auth = AuthInfo()
        self.auth.add(("ip", self.ip))
        self.inbuf = bytearray()
        self.outbox: list[bytes] = []  # framed replies not yet written
        self.handshaken = False
        self.readonly_flag: bool | None = None  # did the handshake carry readOnly?
        self.session_id = 0
        self.sasl: Any = None  # the SASL server of this connection's login, once begun
        self.timeout_ms = 0
        self.closing = False  # close once the outbox is written
        # Session ordering: requests wait behind this connection's writes in flight.
        self.writes_in_flight = 0
        # (xid, op, frame) of held reads; frame None marks a write in flight.
        self.held: deque[tuple[int, int, bytes | None]] = deque()

    @property
    def ip(self) -> str:
        """The client's address, without the port (ZooKeeper's ``ip`` auth id)."""
        return self.peer.rsplit(":", 1)[0].strip("[]") if self.peer else ""

    def receive_data(self, data: bytes, max_events: int = 0) -> list[Event]:
        """Complete frames in the buffer, decoded as far as their header.

        With ``max_events``, at most that many; the rest stay buffered for a later call
        (``receive_data(b"")``), so the caller can stop taking requests mid-buffer.
        """
        buf = self.inbuf
        buf += data
        events: list[Event] = []
        pos, end, limit = 0, len(buf), self.max_frame
        if not self.handshaken and end >= 4:
            word = bytes(buf[:4])
            if word.isascii() and word.decode() in FOUR_LETTER_WORDS:
                del buf[:]
                self.closing = True
                return [(FOUR_LETTER, word.decode())]
        while end - pos >= 4 and (not max_events or len(events) < max_events):
            (n,) = _LEN(buf, pos)
            if n < 0 or n > limit:
                raise ProtocolError(f"Len error {n}")
            if end - pos - 4 < n:
                break
            frame = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            if self.handshaken:
                if n < 8:
                    raise ProtocolError("request shorter than its header")
                xid, op = _HDR(frame)
                events.append((REQUEST, xid, op, frame))
            else:
                events.append(self._handshake(frame))
        del buf[:pos]
        return events

    def _handshake(self, frame: bytes) -> Event:
        try:
            req, pos = ConnectRequest.decode(frame)
        except (struct.error, MarshallingError) as e:
            raise ProtocolError(f"bad ConnectRequest: {e}") from e
        flag = frame[pos] != 0 if len(frame) > pos else None
        self.handshaken = True
        self.readonly_flag = flag
        return (CONNECT, req, flag)

    def queue(self, frame: bytes) -> None:
        self.outbox.append(frame)

    def take_output(self) -> bytes:
        out = b"".join(self.outbox)
        self.outbox.clear()
        return out
