"""A history of operations on ZooKeeper registers, as clients saw them.

Every operation is recorded twice: when it is *invoked* (before the request leaves the
client) and when it *completes* (after the reply arrived). Times are positions in one
global event order, taken under a lock, so "A completed before B was invoked" is exact
whichever threads recorded them. An operation whose outcome the client never learnt (a
timeout, connection loss, an expired session) stays *indeterminate*: it may or may not
have taken effect, and the checker must allow both.

The registers are znodes holding unique values; every setData bumps the znode's
version, so a version names a position in that key's write order.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, replace

# Outcomes
OK = "ok"  # completed, with the result recorded
FAIL = "fail"  # completed with an error that proves it took no effect (BADVERSION, ...)
INFO = "info"  # indeterminate: no reply, connection loss, session expired

# Kinds
READ = "read"  # getData: may be stale (sequentially consistent)
SREAD = "sread"  # sync then getData on the same session: may not be stale
WRITE = "write"  # setData without a version
CAS = "cas"  # setData with the expected version (compare-and-set)

READS = (READ, SREAD)


@dataclass(frozen=True, slots=True)
class Op:
    """One operation: what was asked, when, and what came back."""

    id: int
    process: int  # the client thread; each thread runs one operation at a time
    session: int  # the ZooKeeper session it ran in (0: unknown)
    kind: str
    key: str
    invoke: int  # event index when it was invoked (for SREAD: when the sync was)
    complete: int | None  # event index when it completed; None: indeterminate
    status: str  # OK, FAIL or INFO
    value: str | None = None  # written (WRITE, CAS) or read (READ, SREAD)
    version: int | None = None  # version after the write, or the version read
    expected: int | None = None  # CAS: the version it requires
    zxid: int | None = None  # mzxid of the write, or of what was read

    @property
    def is_read(self) -> bool:
        return self.kind in READS

    def describe(self) -> str:
        """One line, as the checker prints offending sub-histories."""
        end = "…" if self.complete is None else str(self.complete)
        what = {
            READ: f"read  {self.key}",
            SREAD: f"sync+read {self.key}",
            WRITE: f"write {self.key} := {self.value}",
            CAS: f"cas   {self.key} := {self.value} if version {self.expected}",
        }[self.kind]
        if self.status == INFO:
            out = "indeterminate"
            if self.version is not None:
                out += f", made v{self.version} (a read saw it)"
        elif self.status == FAIL:
            out = "failed (no effect)"
        elif self.is_read:
            out = f"-> {self.value} @v{self.version}"
        else:
            out = f"ok @v{self.version}"
        if self.zxid is not None and self.status == OK:
            out += f" zxid 0x{self.zxid:x}"
        return (
            f"  #{self.id:<5} p{self.process:<3} s{self.session & 0xFFFF:04x} "
            f"[{self.invoke:>6} .. {end:>6}]  {what:<38} {out}"
        )


class Recorder:
    """Thread-safe: hands out event indices and collects finished operations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clock = itertools.count(1)
        self._ids = itertools.count(1)
        self.ops: list[Op] = []

    def now(self) -> int:
        with self._lock:
            return next(self._clock)

    def invoke(self, process: int, session: int, kind: str, key: str, **kw: object) -> Op:
        with self._lock:
            t, i = next(self._clock), next(self._ids)
        return Op(i, process, session, kind, key, t, None, INFO, **kw)  # type: ignore[arg-type]

    def complete(self, op: Op, status: str, **kw: object) -> Op:
        """Record ``op`` as finished now (``status`` INFO keeps it indeterminate)."""
        with self._lock:
            t = next(self._clock)
            done = replace(op, complete=None if status == INFO else t, status=status, **kw)  # type: ignore[arg-type]
            self.ops.append(done)
        return done
