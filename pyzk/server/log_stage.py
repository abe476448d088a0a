"""The log stage of the pipeline: group commit to the write-ahead log, and snapshots.

Theory of operation
-------------------
Mirrors ZooKeeper's SyncRequestProcessor. Prepared txns arrive with :meth:`append`.
One batch at a time is written and fdatasync'ed by a writer thread; everything that
arrives while that fsync is in flight waits and goes into the next batch, so throughput
grows with concurrency instead of being capped at one fsync per write.

When a batch is durable, ``on_durable`` gets it (the pipeline then applies and answers).
When a batch fails, ``on_failed`` gets it *and everything queued behind it*: nothing of
it was acknowledged and nothing after it may be, since zxids must stay contiguous.

Every ``snapCount/2 + random(snapCount/2)`` txns the log is rolled to a new file and a
snapshot of the tree is written, chunk by chunk, while the server keeps serving (the
tree keeps a copy-on-write view meanwhile; see DataTree.begin_snapshot).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyzk.storage.purge import purge
from pyzk.storage.snapshot import SnapshotEncoder, SnapshotFile
from pyzk.storage.wal import TxnLog
from pyzk.tree.datatree import DataTree
from pyzk.tree.snapshot_view import SnapshotView
from pyzk.tree.txn import Txn, encode_txn

log = logging.getLogger(__name__)

# A lone write is synced on the event loop's thread while the last fsync took less than
# this (see LogStage._write_lone).
INLINE_FSYNC_MS = 1.0

# A snapshot shares the event loop with the requests. After each write of it, it encodes
# for as long as the loop did other work meanwhile (SNAP_SHARE of it), within bounds:
# idle, slices stay short, so a request waits a couple of ms at most; under load the
# snapshot gets about half the loop, as a snapshot thread would get half a core. (One
# family per turn, as before, took 12.2 s for 770k nodes while a million znodes were
# created, 3.5-4.6 s so; encoding them takes about 1 s.)
SNAP_SHARE = 1.0
SNAP_SLICE_MIN_MS = 2.0
SNAP_SLICE_MAX_MS = 20.0


def snap_slice_ms(other_ms: float) -> float:
    """How long the snapshot may encode now, the loop having done ``other_ms`` of other
    work (and the last write) since it last did."""
    return min(SNAP_SLICE_MAX_MS, max(SNAP_SLICE_MIN_MS, SNAP_SHARE * other_ms))


class LogStage:
    def __init__(
        self,
        txn_log: TxnLog,
        tree: DataTree,
        data_dir: Path,
        on_durable: Callable[[list[Txn]], None],
        on_failed: Callable[[list[Txn], OSError], None],
        snap_count: int = 100000,
        fsync_warn_ms: int = 1000,
        snap_retain: int = 3,
        purge_on_snapshot: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.log = txn_log
        self.tree = tree
        self.data_dir = data_dir
        self.on_durable = on_durable
        self.on_failed = on_failed
        self.snap_count = snap_count
        self.fsync_warn_ms = fsync_warn_ms
        self.snap_retain = snap_retain
        self.purge_on_snapshot = purge_on_snapshot
        self._rng = rng or random.Random()
        self._queue: list[Txn] = []
        self._writing = False
        self._lone_pending = False  # a lone write waits for _write_lone
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pyzk-log")
        self._snapper = ThreadPoolExecutor(1, thread_name_prefix="pyzk-snap")
        self._since_snap = 0
        self._snap_at = self.next_snap_point()
        self._roll_next = False
        self._snapshot_task: asyncio.Task[Path | None] | None = None
        self._snap_deferred = False  # a snap point passed while a snapshot was running
        self.last_fsync_ms = 0.0  # for metrics
        self.fsync_count = 0
        # Where fsync and snapshot times are reported (fsynctime, snapshottime); set by
        # the server, so this stage needs no metrics library of its own.
        self.observe: Callable[[str, int], None] = lambda name, value: None
        self.slow_fsync: Callable[[], None] = lambda: None
        self.snapshots_taken = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def next_snap_point(self) -> int:
        half = max(self.snap_count // 2, 1)
        return half + self._rng.randrange(half)  # randomised: members do not snap together

    # --- appending --------------------------------------------------------------------

    def append(self, txns: list[Txn]) -> None:
        self._queue.extend(txns)
        self._maybe_write()

    def _maybe_write(self) -> None:
        if self._writing or not self._queue:
            return
        if self._is_lone():
            if not self._lone_pending:  # see _write_lone
                self._lone_pending = True
                self._idle.clear()
                loop = asyncio.get_running_loop()
                loop.call_soon(loop.call_soon, self._write_lone)
            return
        batch, self._queue = self._queue, []
        records = [(t.zxid, encode_txn(t)) for t in batch]
        roll, self._roll_next = self._roll_next, False
        self._writing = True
        self._idle.clear()
        fut = asyncio.get_running_loop().run_in_executor(self._writer, self._write, records, roll)
        fut.add_done_callback(lambda f: self._written(f, batch))

    def _write_lone(self) -> None:
        """A lone write while nothing else is being written: synced on this thread.

        Handing a write to the writer thread and its answer back costs two thread
        wake-ups, about 130 us on this kind of machine, more than half of what a lone
        write waits for its fdatasync. This runs two callbacks later, so the event loop
        has polled its sockets once more (uvloop runs callbacks before it polls) and
        handled what was waiting: writes that arrive together, such as a crowd of
        clients opening sessions, still go to the thread as one batch (while it syncs,
        the loop reads more for the next). Only a write that is still alone, a single
        client's or a lock recipe's, is synced here, with anything arriving meanwhile
        waiting in the socket buffers. Only while the disk is fast: a slow fsync sends
        the next writes to the thread again, so a stalling disk cannot freeze the loop
        more than once.
        """
        self._lone_pending = False
        if self._writing or not self._is_lone():  # things changed in the two callbacks
            self._maybe_write()
            return
        batch, self._queue = self._queue, []
        self._writing = True
        self._idle.clear()
        try:
            ms = self._write([(batch[0].zxid, encode_txn(batch[0]))], False)
        except Exception as e:
            self._finish(batch, 0.0, e)
        else:
            self._finish(batch, ms, None)

    def _is_lone(self) -> bool:
        """One write queued, no roll due, and the disk fast: see :meth:`_write_lone`."""
        return (
            len(self._queue) == 1 and not self._roll_next and self.last_fsync_ms < INLINE_FSYNC_MS
        )

    def _write(self, records: list[tuple[int, bytes]], roll: bool) -> float:
        """Writer thread: one write and one fdatasync for the whole batch."""
        if roll:
            self.log.roll()
        t0 = time.monotonic()
        self.log.append(records)
        return (time.monotonic() - t0) * 1000

    def _written(self, fut: asyncio.Future[float], batch: list[Txn]) -> None:
        exc = fut.exception()
        self._finish(batch, 0.0 if exc is not None else fut.result(), exc)

    def _finish(self, batch: list[Txn], ms: float, exc: BaseException | None) -> None:
        self._writing = False
        if exc is not None:
            failed, self._queue = batch + self._queue, []
            log.error("transaction log write failed, %d writes refused: %s", len(failed), exc)
            self.on_failed(failed, exc if isinstance(exc, OSError) else OSError(str(exc)))
        else:
            self.report_fsync(ms)
            self.on_durable(batch)
            self._since_snap += len(batch)
            if self._since_snap >= self._snap_at:
                self.start_snapshot()
        if not self._writing and not self._queue:
            self._idle.set()
        self._maybe_write()

    def report_fsync(self, ms: float) -> None:
        """A write and fdatasync of the log took ``ms`` (also an ensemble member's)."""
        self.last_fsync_ms = ms
        self.fsync_count += 1
        self.observe("fsynctime", int(ms))
        if ms > self.fsync_warn_ms:
            self.slow_fsync()
            log.warning(
                "fsync-ing the write ahead log took %.0fms which will adversely "
                "effect operation latency",
                ms,
            )

    async def drain(self) -> None:
        """Wait until everything appended is written (or failed)."""
        while not self._idle.is_set():
            await self._idle.wait()

    # --- snapshots --------------------------------------------------------------------

    def start_snapshot(self) -> None:
        """Snapshot what is applied now, in the background (deferred while one is running)."""
        if self._snapshot_task is not None and not self._snapshot_task.done():
            # Deferred: the first batch after it ends starts one. (ZooKeeper skips to its
            # next snap point, which can leave twice snapCount of log to replay at a
            # restart.) One warning for the wait, not one per batch meanwhile.
            if not self._snap_deferred:
                self._snap_deferred = True
                log.warning("Too busy to snap, deferring until the running snapshot ends")
            return
        self._snap_deferred = False
        self._since_snap = 0
        self._snap_at = self.next_snap_point()
        self._roll_next = True  # the next batch starts a new log file
        view = self.tree.begin_snapshot()  # now: exactly what is applied so far
        self._snapshot_task = asyncio.get_running_loop().create_task(self.snapshot(view))

    async def snapshot(self, view: SnapshotView | None = None) -> Path | None:
        """Write a snapshot of the tree as of now, yielding to the loop between chunks."""
        loop = asyncio.get_running_loop()
        if view is None:
            view = self.tree.begin_snapshot()
        enc = SnapshotEncoder(view)
        t0 = time.monotonic()
        f: SnapshotFile | None = None
        try:
            f = await loop.run_in_executor(self._snapper, SnapshotFile, self.data_dir, view.zxid)
            await loop.run_in_executor(self._snapper, f.write, enc.header())
            slice_s = SNAP_SLICE_MIN_MS / 1000
            while chunks := _encode_for(enc, slice_s):
                t = time.monotonic()
                await loop.run_in_executor(self._snapper, f.write, b"".join(chunks))
                slice_s = snap_slice_ms((time.monotonic() - t) * 1000) / 1000
            await loop.run_in_executor(self._snapper, f.write, enc.footer())
            if view.aborted:  # the state was replaced meanwhile (a leader's SNAP or TRUNC)
                await loop.run_in_executor(self._snapper, f.abort)
                return None
            path = await loop.run_in_executor(self._snapper, f.finish)
        except OSError as e:
            log.error("snapshot at zxid 0x%x failed: %s", view.zxid, e)
            if f is not None:
                await loop.run_in_executor(self._snapper, f.abort)
            return None
        finally:
            view.close()
        self.snapshots_taken += 1
        self.observe("snapshottime", int((time.monotonic() - t0) * 1000))
        log.info(
            "Snapshot taken: %s, %d items in %.0f ms",
            path.name,
            enc.items,
            (time.monotonic() - t0) * 1000,
        )
        if self.purge_on_snapshot:
            await loop.run_in_executor(
                self._snapper, purge, self.data_dir, self.log.dir, self.snap_retain
            )
        return path

    async def purge(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            self._snapper, purge, self.data_dir, self.log.dir, self.snap_retain
        )

    async def close(self) -> None:
        await self.drain()
        if self._snapshot_task is not None and not self._snapshot_task.done():
            await self._snapshot_task
        await asyncio.get_running_loop().run_in_executor(self._writer, self.log.close)
        self._writer.shutdown(wait=True)
        self._snapper.shutdown(wait=True)


def _encode_for(enc: SnapshotEncoder, seconds: float) -> list[bytes]:
    """The snapshot's next chunks, as many as ``seconds`` of encoding make (at least one,
    none when the body is complete)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    while (chunk := enc.next_chunk()) is not None:
        chunks.append(chunk)
        if time.monotonic() >= deadline:
            break
    return chunks
