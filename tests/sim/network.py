"""A simulated network: per-link FIFO connections that delay, break and partition.

Quorum traffic (ZAB) rides TCP in the real server, so here it is FIFO per ordered pair
and a fault *breaks the connection*: everything in flight is lost and both ends are told
(after a delay, as a real peer notices a reset). Election traffic tolerates loss, so it
may also be dropped or duplicated one message at a time.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from pyzk.zab.messages import Message, Notification


@dataclass(frozen=True)
class Profile:
    """A fault profile, drawn from the seed."""

    min_delay_ms: int = 1
    max_delay_ms: int = 20
    election_drop: float = 0.0
    election_dup: float = 0.0
    notice_delay_ms: int = 30  # how long a broken connection takes to be noticed

    @classmethod
    def draw(cls, rng: random.Random) -> Profile:
        return cls(
            min_delay_ms=rng.choice([0, 1, 2]),
            max_delay_ms=rng.choice([5, 20, 60, 150]),
            election_drop=rng.choice([0.0, 0.05, 0.3]),
            election_dup=rng.choice([0.0, 0.1]),
            notice_delay_ms=rng.choice([1, 30, 200]),
        )


@dataclass(order=True)
class Pending:
    at: int
    seq: int
    kind: str = field(compare=False)  # "msg" or "broken"
    src: int = field(compare=False)
    dst: int = field(compare=False)
    msg: Message | None = field(compare=False, default=None)
    conn: int = field(compare=False, default=0)


class Network:
    def __init__(self, rng: random.Random, profile: Profile) -> None:
        self.rng = rng
        self.profile = profile
        self.blocked: set[frozenset[int]] = set()
        self._queue: list[Pending] = []
        self._seq = 0
        self._conn: dict[frozenset[int], int] = {}  # current connection id per pair
        # The connection each end believes it has: it learns of a break only from the
        # notice, and until then keeps writing into the dead connection (as with TCP).
        self._view: dict[tuple[int, int], int] = {}
        self._last_at: dict[tuple[int, int], int] = {}  # FIFO: no overtaking on a link
        self.sent = 0
        self.dropped = 0

    def _push(self, p: Pending) -> None:
        self._seq += 1
        p.seq = self._seq
        heapq.heappush(self._queue, p)

    def send(self, now: int, src: int, dst: int, msg: Message) -> None:
        self.sent += 1
        pair = frozenset((src, dst))
        pf = self.profile
        if isinstance(msg, Notification):
            if pair in self.blocked or self.rng.random() < pf.election_drop:
                self.dropped += 1
                return
            copies = 2 if self.rng.random() < pf.election_dup else 1
            for _ in range(copies):
                at = now + self.rng.randint(pf.min_delay_ms, pf.max_delay_ms)
                self._push(Pending(at, 0, "msg", src, dst, msg))
            return
        if pair in self.blocked:
            self.dropped += 1
            self.break_link(now, src, dst)
            return
        conn = self._view.get((src, dst), self._conn.get(pair, 1))
        at = now + self.rng.randint(pf.min_delay_ms, pf.max_delay_ms)
        at = max(at, self._last_at.get((src, dst), 0))
        self._last_at[(src, dst)] = at
        self._push(Pending(at, 0, "msg", src, dst, msg, conn))

    def break_link(self, now: int, a: int, b: int) -> None:
        """Reset the connection between a and b: in-flight packets are lost."""
        pair = frozenset((a, b))
        old = self._conn.get(pair, 1)
        self._view.setdefault((a, b), old)  # both ends still write into the old one
        self._view.setdefault((b, a), old)
        self._conn[pair] = old + 1
        delay = self.profile.notice_delay_ms
        self._push(Pending(now + delay, 0, "broken", b, a))  # a learns b is gone
        self._push(Pending(now + delay, 0, "broken", a, b))

    def partition(self, now: int, side: set[int], everyone: set[int]) -> None:
        for a in side:
            for b in everyone - side:
                self.blocked.add(frozenset((a, b)))
                self.break_link(now, a, b)

    def heal(self) -> None:
        self.blocked.clear()

    def isolate(self, now: int, node: int, everyone: set[int]) -> None:
        for other in everyone - {node}:
            self.break_link(now, node, other)

    def noticed(self, node: int, other: int) -> None:
        """``node`` learnt its connection to ``other`` broke; its next one is fresh."""
        self._view[(node, other)] = self._conn.get(frozenset((node, other)), 1)

    def restarted(self, node: int) -> None:
        for key in [k for k in self._view if k[0] == node]:
            del self._view[key]

    def due(self, now: int) -> list[Pending]:
        """Deliveries and connection-loss notices due by ``now``, in order."""
        out = []
        while self._queue and self._queue[0].at <= now:
            p = heapq.heappop(self._queue)
            quorum_msg = p.kind == "msg" and not isinstance(p.msg, Notification)
            if quorum_msg and self._conn.get(frozenset((p.src, p.dst)), 1) != p.conn:
                continue  # sent on a connection that has since broken
            out.append(p)
        return out
