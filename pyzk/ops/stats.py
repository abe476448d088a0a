"""What the server counts for operators (ZooKeeper's ServerStats, ServerCnxn stats, ServerMetrics).

Plain objects, no I/O and no clock: the asyncio shell (``pyzk/server``) calls them with
the time it read, and the four-letter words, the AdminServer and ``/metrics`` only read
them. Units are ZooKeeper's: latencies in whole milliseconds, sizes in bytes.

* :class:`ServerStats` - packets in and out, request latency min/avg/max, reply sizes
  (``srvr``, ``stat``, ``mntr``).
* :class:`ConnectionStats` - one per client connection: packets, the last operation,
  latencies and the requests still waiting for a reply (``cons``, ``stat``).
* :class:`ServerMetrics` - ZooKeeper's named counters and summaries (``mntr``,
  ``/metrics``); the names are ZooKeeper 3.8's, listed in :mod:`pyzk.ops.metric_names`.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from pyzk.jute.codes import WRITE_OPS, OpCode, Xid
from pyzk.ops import metric_names as names

# Recent samples a summary keeps for its percentiles (a sliding window, as the
# percentile counters of ZooKeeper keep a bounded reservoir).
PERCENTILE_WINDOW = 1024

# ``lop`` in ``cons``: the short names FinalRequestProcessor records per opcode.
LAST_OP: dict[int, str] = {
    OpCode.ping: "PING",
    OpCode.createSession: "SESS",
    OpCode.multi: "MULT",
    OpCode.multiRead: "MLTR",
    OpCode.create: "CREA",
    OpCode.create2: "CREA",
    OpCode.createTTL: "CREA",
    OpCode.createContainer: "CREA",
    OpCode.delete: "DELE",
    OpCode.deleteContainer: "DELE",
    OpCode.setData: "SETD",
    OpCode.reconfig: "RECO",
    OpCode.setACL: "SETA",
    OpCode.closeSession: "CLOS",
    OpCode.sync: "SYNC",
    OpCode.check: "CHEC",
    OpCode.exists: "EXIS",
    OpCode.getData: "GETD",
    OpCode.setWatches: "SETW",
    OpCode.setWatches2: "STW2",
    OpCode.addWatch: "ADDW",
    OpCode.getACL: "GETA",
    OpCode.getChildren: "GETC",
    OpCode.getChildren2: "GETC",
    OpCode.getAllChildrenNumber: "GETACN",
    OpCode.checkWatches: "CHKW",
    OpCode.removeWatches: "REMW",
    OpCode.whoAmI: "HOMI",
    OpCode.getEphemerals: "GETE",
}
# Handled before the request pipeline in ZooKeeper, so they update no latency stats.
_UNTIMED = frozenset({OpCode.auth, OpCode.sasl})
# The pending "op" of a handshake that reopens a session: answered, but not timed
# (ZooKeeper's reopenSession bypasses the pipeline; a new session is a createSession).
REOPEN_SESSION = -1000
_HANDSHAKES = frozenset({OpCode.createSession, REOPEN_SESSION})

# NIOServerCnxn's SendBufferWriter sends a four-letter word's answer whenever more than
# 2048 characters are buffered: each send counts as one packet.
FOUR_LETTER_CHUNK = 2048

_REPLY_HEADER = struct.Struct(">iqi")  # xid, zxid, err (after the 4-byte frame length)


def round_half_up(value: float, places: int = 4) -> float:
    """ZooKeeper rounds averages HALF_UP to 4 places (BigDecimal)."""
    q = Decimal(1).scaleb(-places)
    return float(Decimal(repr(value)).quantize(q, rounding=ROUND_HALF_UP))


def java_double(value: float) -> str:
    """A double as Java's ``Double.toString`` prints it (``0.0``, ``2.5952``, ``1.0E-4``)."""
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(float(value))
    mantissa, exp = f"{value:.16E}".split("E")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa += "0"
    return f"{mantissa}E{int(exp)}"


class Summary:
    """count/sum/min/max of observations, plus a window for percentiles (AvgMinMaxCounter)."""

    __slots__ = ("count", "max", "min", "percentiles", "recent", "total")

    def __init__(self, percentiles: bool = False, window: int = PERCENTILE_WINDOW) -> None:
        self.percentiles = percentiles  # ZooKeeper's DetailLevel.ADVANCED
        self.recent: deque[int] = deque(maxlen=window)
        self.count = self.total = self.min = self.max = 0

    def add(self, value: int) -> None:
        self.add_many((value,))

    def add_many(self, values: list[int] | tuple[int, ...]) -> None:
        """Observe a batch at once (one flush's latencies): builtins do the loop."""
        if not values:
            return
        low, high = min(values), max(values)
        if self.count == 0 or low < self.min:
            self.min = low
        if high > self.max:
            self.max = high
        self.count += len(values)
        self.total += sum(values)
        if self.recent.maxlen:
            self.recent.extend(values)

    @property
    def avg(self) -> float:
        return round_half_up(self.total / self.count) if self.count else 0.0

    def quantile(self, q: float) -> float:
        """The q-quantile of the recent window (nearest rank); 0 when empty."""
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        rank = min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))
        return float(ordered[rank])

    def reset(self) -> None:
        self.recent.clear()
        self.count = self.total = self.min = self.max = 0


@dataclass(slots=True)
class ServerStats:
    """ZooKeeper's ServerStats: what ``srvr`` prints."""

    packets_received: int = 0
    packets_sent: int = 0
    latency: Summary = field(default_factory=lambda: Summary(window=0))  # no percentiles
    # Size of replies to clients (ReplyHeader + body), -1 until the first one.
    last_response_size: int = -1
    min_response_size: int = -1
    max_response_size: int = -1
    fsync_threshold_exceed_count: int = 0
    auth_failed_count: int = 0

    @property
    def latency_min_ms(self) -> int:
        return self.latency.min

    @property
    def latency_max_ms(self) -> int:
        return self.latency.max

    @property
    def latency_avg_ms(self) -> float:
        return self.latency.avg

    def record_response_sizes(self, sizes: list[int]) -> None:
        """Sizes of the replies just sent (ReplyHeader + body), in order."""
        if not sizes:
            return
        self.last_response_size = sizes[-1]
        low, high = min(sizes), max(sizes)
        if self.min_response_size < 0 or low < self.min_response_size:
            self.min_response_size = low
        if high > self.max_response_size:
            self.max_response_size = high

    def reset(self) -> None:
        """``srst``: latency, packet counters and reply sizes back to zero."""
        self.packets_received = self.packets_sent = 0
        self.latency.reset()
        self.last_response_size = self.min_response_size = self.max_response_size = -1
        self.fsync_threshold_exceed_count = 0


class ConnectionStats:
    """One connection's counters (ZooKeeper's ServerCnxn stats), fed by the shell.

    ``pending`` holds the requests read but not yet answered, in arrival order: a
    session's replies leave in that order, so each reply frame matches the oldest
    pending request with its xid (requests that got no reply are dropped on the way).
    """

    __slots__ = (
        "avg_base",
        "established_ms",
        "four_letter",
        "last_cxid",
        "last_latency",
        "last_op",
        "last_response_ms",
        "last_zxid",
        "max_latency",
        "min_latency",
        "packets_received",
        "packets_sent",
        "pending",
        "total_latency",
    )

    def __init__(self, established_ms: int) -> None:
        self.established_ms = established_ms  # wall clock, as ``est=``
        self.four_letter = False  # a four-letter-word connection: its output is untimed
        # (xid, opcode, monotonic ms when read) of requests not answered yet.
        self.pending: deque[tuple[int, int, int]] = deque()
        self.reset()

    def reset(self) -> None:
        """``crst``: as ServerCnxn.resetStats (the pending requests stay)."""
        self.packets_received = self.packets_sent = 0
        self.last_op = "NA"
        self.last_cxid = -1
        self.last_zxid = -1
        self.last_response_ms = 0
        self.last_latency = 0
        self.min_latency = -1  # -1: no sample yet (printed as 0)
        self.max_latency = 0
        self.total_latency = 0
        self.avg_base = 0  # samples in total_latency

    @property
    def outstanding(self) -> int:
        return len(self.pending)

    @property
    def min_latency_ms(self) -> int:
        return max(self.min_latency, 0)

    @property
    def avg_latency_ms(self) -> int:
        return self.total_latency // self.avg_base if self.avg_base else 0

    def request_read(self, xid: int, op: int, now_ms: int) -> None:
        self.pending.append((xid, op, now_ms))

    def answered(
        self, op: int, cxid: int, zxid: int, last_ms: int, now_ms: int, latencies: list[int]
    ) -> None:
        """Requests answered in one flush; the last was ``op``, taking ``last_ms``."""
        if cxid >= 0:  # -1: only special xids (pings, setWatches) in this batch
            self.last_cxid = cxid
        self.last_zxid = zxid
        self.last_op = LAST_OP.get(op, "NA")
        self.last_response_ms = now_ms
        self.last_latency = last_ms
        low = min(latencies)
        if self.min_latency < 0 or low < self.min_latency:
            self.min_latency = low
        self.max_latency = max(self.max_latency, max(latencies))
        self.total_latency += sum(latencies)
        self.avg_base += len(latencies)

    def match_reply(self, xid: int) -> tuple[int, int] | None:
        """The (opcode, start ms) of the pending request this reply answers, if any."""
        pending = self.pending
        if pending and pending[0][0] == xid:  # the usual case: replies leave in order
            _, op, start = pending.popleft()
            return op, start
        if not any(p[0] == xid for p in pending):
            return None
        while pending:
            pxid, op, start = pending.popleft()
            if pxid == xid:
                return op, start
        return None  # pragma: no cover - the any() above found it


class ServerMetrics:
    """ZooKeeper's ServerMetrics: named counters and summaries, all at zero at start."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = dict.fromkeys(names.COUNTERS, 0)
        self.summaries: dict[str, Summary] = {n: Summary() for n in names.BASIC_SUMMARIES}
        self.summaries.update({n: Summary(True) for n in names.ADVANCED_SUMMARIES})

    def inc(self, name: str, delta: int = 1) -> None:
        self.counters[name] += delta

    def observe(self, name: str, value: int) -> None:
        self.summaries[name].add(value)

    def reset(self) -> None:
        for name in self.counters:
            self.counters[name] = 0
        for summary in self.summaries.values():
            summary.reset()


def account_frames(
    frames: list[bytes],
    conn: ConnectionStats,
    server: ServerStats,
    metrics: ServerMetrics,
    now_ms: int,
    last_zxid: int,
) -> None:
    """Count the frames queued for one connection, as ZooKeeper counts what it sends.

    Each frame is one packet sent. A reply (ReplyHeader with the xid of a pending
    request) also records that request's latency; a notification (xid -1) counts its
    bytes as ``watch_bytes``; the connect response that ends a handshake is matched to
    the pending handshake (op createSession, or :data:`REOPEN_SESSION`). The answer to
    a four-letter word counts as packets too, but times nothing.
    """
    if conn.four_letter:
        # ZooKeeper writes a word's answer in chunks of about 2 KiB, a packet each.
        size = sum(len(f) for f in frames)
        chunks = -(-size // FOUR_LETTER_CHUNK)
        conn.packets_sent += chunks
        server.packets_sent += chunks
        return
    conn.packets_sent += len(frames)
    server.packets_sent += len(frames)
    counters = metrics.counters
    counters["response_bytes"] += sum(map(len, frames))
    pending, unpack = conn.pending, _REPLY_HEADER.unpack_from  # locals: the hot loop
    reads: list[int] = []
    writes: list[int] = []
    sizes: list[int] = []
    last: tuple[int, int, int] | None = None  # (op, zxid, ms) of the last answer
    last_cxid = -1  # of the last answer with a real (non-negative) xid
    for frame in frames:
        if pending and pending[0][1] in _HANDSHAKES:
            _, op, start = pending.popleft()
            if op == OpCode.createSession:
                writes.append(now_ms - start)
                last, last_cxid = (op, last_zxid, now_ms - start), 0
            continue
        if len(frame) < 20:
            continue
        xid, zxid, _err = unpack(frame, 4)
        sizes.append(len(frame) - 4)
        if xid == Xid.NOTIFICATION:
            counters["watch_bytes"] += len(frame)
            continue
        matched = conn.match_reply(xid)
        if matched is None:
            continue
        op, start = matched
        if op in _UNTIMED:
            continue
        elapsed = now_ms - start
        (writes if op in WRITE_OPS or op < 0 else reads).append(elapsed)
        last = (op, zxid, elapsed)
        if xid >= 0:
            last_cxid = xid
    server.record_response_sizes(sizes)
    if last is not None:
        conn.answered(last[0], last_cxid, last[1], last[2], now_ms, reads + writes)
        server.latency.add_many(reads + writes)
        metrics.summaries["readlatency"].add_many(reads)
        metrics.summaries["updatelatency"].add_many(writes)
