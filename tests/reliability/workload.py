"""Concurrent kazoo clients reading, writing and compare-and-setting a few znodes, recorded.

Each process is a thread with its own KazooClient (its own session) on the whole
ensemble, running one operation at a time: a plain read, a ``sync`` + read, a blind
write, or a read-modify-write (a read, then setData with the version it read). Every
operation is recorded in a :class:`~tests.reliability.history.Recorder` around the
blocking call; an error that proves nothing happened (BADVERSION) is a failure, any
other (connection loss, timeout, expired session) leaves the operation indeterminate.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, KazooException, NoNodeError
from kazoo.handlers.threading import KazooTimeoutError

from tests.reliability.history import CAS, FAIL, INFO, OK, READ, SREAD, WRITE, Op, Recorder

# How long one operation may take before we stop waiting and call it indeterminate:
# beyond a session timeout, so a client normally learns the outcome (or loses the
# connection) first.
OP_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 30.0
SESSION_TIMEOUT_S = 10.0  # asked for; the ensemble caps it (20 ticks)

_INDETERMINATE = (KazooException, KazooTimeoutError, TimeoutError, OSError)

# Quiet kazoo: it logs every dropped connection, and faults drop many on purpose.
logging.getLogger("kazoo").setLevel(logging.CRITICAL)


@dataclass
class Workload:
    hosts: str
    keys: dict[str, str]  # key name -> znode path
    processes: int
    recorder: Recorder
    seed: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    completed: int = 0  # operations with an outcome (any), for progress checks
    errors: list[str] = field(default_factory=list)  # unexpected failures, by process
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for p in range(self.processes):
            t = threading.Thread(target=self._run, args=(p,), name=f"worker-{p}", daemon=True)
            t.start()
            self._threads.append(t)

    def join(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(OP_TIMEOUT_S * 3 + CONNECT_TIMEOUT_S)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"workers did not stop: {alive}"

    def ok_count(self) -> int:
        return sum(1 for op in self.recorder.ops if op.status == OK)

    # --- one process ---------------------------------------------------------------

    def _run(self, p: int) -> None:
        rng = random.Random(self.seed * 1000 + p)
        zk = KazooClient(hosts=self.hosts, timeout=SESSION_TIMEOUT_S, randomize_hosts=True)
        try:
            zk.start(timeout=CONNECT_TIMEOUT_S)
        except Exception as e:
            self.errors.append(f"process {p}: cannot connect: {e!r}")
            return
        proc = _Process(p, zk, self, rng)
        try:
            while not self.stop.is_set():
                proc.step()
        except Exception as e:
            self.errors.append(f"process {p}: {e!r}")
        finally:
            with contextlib.suppress(Exception):
                zk.stop()
                zk.close()

    def _done(self) -> None:
        with self._lock:
            self.completed += 1


class _Process:
    def __init__(self, p: int, zk: KazooClient, w: Workload, rng: random.Random) -> None:
        self.p, self.zk, self.w, self.rng = p, zk, w, rng
        self.n = 0  # writes issued, for unique values

    def session(self) -> int:
        cid = self.zk.client_id
        return int(cid[0]) if cid else 0

    def step(self) -> None:
        key = self.rng.choice(list(self.w.keys))
        r = self.rng.random()
        if r < 0.3:
            self.read(key, synced=False)
        elif r < 0.5:
            self.read(key, synced=True)
        elif r < 0.7:
            self.write(key)
        else:
            seen = self.read(key, synced=self.rng.random() < 0.5)
            if seen is not None:
                self.cas(key, seen.version or 0)

    def _finish(self, op: Op, status: str, **kw: Any) -> Op:
        self.w._done()
        return self.w.recorder.complete(op, status, **kw)

    def read(self, key: str, synced: bool) -> Op | None:
        path = self.w.keys[key]
        rec = self.w.recorder
        op = rec.invoke(self.p, self.session(), SREAD if synced else READ, key)
        try:
            if synced:
                self.zk.sync_async(path).get(timeout=OP_TIMEOUT_S)
            data, stat = self.zk.get_async(path).get(timeout=OP_TIMEOUT_S)
        except NoNodeError:
            self._finish(op, FAIL)
            self.w.errors.append(f"process {self.p}: {path} is gone")  # created before the run
            return None
        except _INDETERMINATE:
            self._finish(op, INFO)
            return None
        return self._finish(op, OK, value=data.decode(), version=stat.version, zxid=stat.mzxid)

    def _value(self) -> str:
        self.n += 1
        return f"p{self.p}-{self.n}"

    def write(self, key: str) -> None:
        self._set(key, WRITE, -1)

    def cas(self, key: str, expected: int) -> None:
        self._set(key, CAS, expected)

    def _set(self, key: str, kind: str, expected: int) -> None:
        value = self._value()
        op = self.w.recorder.invoke(
            self.p,
            self.session(),
            kind,
            key,
            value=value,
            expected=expected if kind == CAS else None,
        )
        try:
            stat = self.zk.set_async(self.w.keys[key], value.encode(), expected).get(
                timeout=OP_TIMEOUT_S
            )
        except BadVersionError:
            self._finish(op, FAIL)
            return
        except NoNodeError:
            self._finish(op, FAIL)
            self.w.errors.append(f"process {self.p}: {self.w.keys[key]} is gone")
            return
        except _INDETERMINATE:
            self._finish(op, INFO)
            return
        self._finish(op, OK, version=stat.version, zxid=stat.mzxid)
