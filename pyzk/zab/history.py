"""A server's transaction history as the consensus core sees it, and the Ready batch.

The core keeps the tail of the log in memory: every entry not yet committed, and up to
``window`` committed ones (ZooKeeper's committedLog, which serves DIFF syncs). Older
entries live only on disk; a learner that needs them gets a snapshot instead.

Changes to the history are recorded in a :class:`Ready` for the shell to make durable.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from pyzk.zab.messages import Message, Snap, State

Entry = tuple[int, bytes]  # (zxid, txn payload)


@dataclass(frozen=True, slots=True)
class Install:
    """Replace the state and the log with the leader's snapshot (SNAP sync)."""

    snap: Snap


@dataclass(frozen=True, slots=True)
class Truncate:
    """Drop every logged entry after ``zxid`` and reload the state from the log (TRUNC).

    Such entries were never committed; the reload applies everything still logged.
    """

    zxid: int


@dataclass(frozen=True, slots=True)
class Epochs:
    """Persist (acceptedEpoch, currentEpoch)."""

    accepted: int
    current: int


@dataclass(slots=True)
class Append:
    """Append these entries to the log."""

    entries: list[Entry]


@dataclass(slots=True)
class Apply:
    """Apply these committed entries to the state, in order."""

    entries: list[Entry]


Op = Install | Truncate | Epochs | Append | Apply


@dataclass(slots=True)
class Ready:
    """What the shell must do before calling ``Peer.advance``.

    1. Carry out ``ops`` in order: they change the log, the epochs and the state.
       Writes may be batched, but everything must be durable (fsync) before step 2.
    2. Send ``messages`` (a Snap's state is the state as applied at this point).

    Persisting before sending is the contract ZAB's safety rests on: an ACK, an epoch
    acknowledgement or a vote never promises what is not on disk.

    ``send_first`` relaxes it where nothing is promised: a leader in broadcast may send
    its proposals and commits before logging them (ZooKeeper's leader does), since its
    own log counts toward a quorum only once ``Peer.advance`` says it is on disk. The
    shell may then send ``messages`` before step 1, so the learners log while it does.
    """

    ops: list[Op] = field(default_factory=list)
    messages: list[tuple[int, Message]] = field(default_factory=list)
    state: State | None = None  # set when the role changed
    send_first: bool = False

    def empty(self) -> bool:
        return not (self.ops or self.messages or self.state is not None)

    def promises_nothing(self) -> bool:
        """Could these messages go before the ops, for a leader in broadcast? Not if the
        ops change epochs or state, or a SNAP must carry the state after them."""
        return all(isinstance(op, Append | Apply) for op in self.ops) and not any(
            isinstance(m, Snap) for _, m in self.messages
        )

    def lone_append(self) -> bool:
        """Is its disk work a single entry to append, and nothing else?"""
        appends = [op for op in self.ops if not isinstance(op, Apply)]
        return len(appends) == 1 and isinstance(appends[0], Append) and len(appends[0].entries) == 1

    def appended(self) -> list[int]:
        return [z for op in self.ops if isinstance(op, Append) for z, _ in op.entries]

    def add_append(self, entry: Entry) -> None:
        last = self.ops[-1] if self.ops else None
        if isinstance(last, Append):
            last.entries.append(entry)
        else:
            self.ops.append(Append([entry]))

    def add_apply(self, entries: list[Entry]) -> None:
        last = self.ops[-1] if self.ops else None
        if isinstance(last, Apply):
            last.entries.extend(entries)
        else:
            self.ops.append(Apply(list(entries)))


class History:
    """The in-memory tail of the log: entries with zxid > ``base``, in zxid order."""

    def __init__(self, base: int, entries: list[Entry], window: int) -> None:
        self.base = base  # the last zxid not kept here (a snapshot point or trimmed)
        self.zxids = [z for z, _ in entries]
        self.payloads = [p for _, p in entries]
        self.window = window

    @property
    def last(self) -> int:
        return self.zxids[-1] if self.zxids else self.base

    def append(self, zxid: int, payload: bytes) -> None:
        assert zxid > self.last, f"zxid 0x{zxid:x} does not follow 0x{self.last:x}"
        self.zxids.append(zxid)
        self.payloads.append(payload)

    def has(self, zxid: int) -> bool:
        if zxid == self.base:
            return True
        i = bisect.bisect_left(self.zxids, zxid)
        return i < len(self.zxids) and self.zxids[i] == zxid

    def floor(self, zxid: int) -> int:
        """The largest zxid held (or the base) that is <= ``zxid``."""
        i = bisect.bisect_right(self.zxids, zxid)
        return self.zxids[i - 1] if i else self.base

    def after(self, zxid: int) -> list[Entry]:
        i = bisect.bisect_right(self.zxids, zxid)
        return list(zip(self.zxids[i:], self.payloads[i:], strict=True))

    def between(self, lo: int, hi: int) -> list[Entry]:
        """Entries with lo < zxid <= hi."""
        i = bisect.bisect_right(self.zxids, lo)
        j = bisect.bisect_right(self.zxids, hi)
        return list(zip(self.zxids[i:j], self.payloads[i:j], strict=True))

    def truncate(self, zxid: int) -> None:
        """Forget entries after ``zxid``."""
        i = bisect.bisect_right(self.zxids, zxid)
        del self.zxids[i:]
        del self.payloads[i:]
        if zxid < self.base:
            self.base = zxid

    def reset(self, base: int) -> None:
        self.base = base
        self.zxids.clear()
        self.payloads.clear()

    def trim(self, committed: int) -> None:
        """Keep at most ``window`` committed entries (uncommitted ones always stay)."""
        n_committed = bisect.bisect_right(self.zxids, committed)
        extra = n_committed - self.window
        if extra > 0:
            self.base = self.zxids[extra - 1]
            del self.zxids[:extra]
            del self.payloads[:extra]
