"""The log stage's choice of where to sync: a lone write on the loop, batches on the thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pyzk.server.log_stage import (
    INLINE_FSYNC_MS,
    SNAP_SHARE,
    SNAP_SLICE_MAX_MS,
    SNAP_SLICE_MIN_MS,
    LogStage,
    snap_slice_ms,
)
from pyzk.storage.snapshot import FOOTER, read_snapshot
from pyzk.storage.wal import LogTail, TxnLog, read_log
from pyzk.tree.datatree import OPEN_ACL_UNSAFE, DataTree
from pyzk.tree.txn import CreateSessionTxn, CreateTxn, Txn


class Recorder:
    def __init__(self) -> None:
        self.durable: list[list[int]] = []
        self.failed: list[list[int]] = []

    def on_durable(self, txns: list[Txn]) -> None:
        self.durable.append([t.zxid for t in txns])

    def on_failed(self, txns: list[Txn], exc: OSError) -> None:
        self.failed.append([t.zxid for t in txns])


class CountingExecutor(ThreadPoolExecutor):
    """The writer thread, counting the batches handed to it."""

    def __init__(self) -> None:
        super().__init__(1)
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def stage(tmp_path: Path, rec: Recorder) -> tuple[LogStage, CountingExecutor]:
    ls = LogStage(TxnLog(tmp_path), DataTree(), tmp_path, rec.on_durable, rec.on_failed)
    ls._writer = writer = CountingExecutor()
    return ls, writer


def txn(zxid: int) -> Txn:
    return Txn(zxid, 0, zxid, 0, CreateSessionTxn(30000))


def logged(d: Path) -> list[int]:
    return [item[0] for item in read_log(d, 0) if not isinstance(item, LogTail)]


async def test_a_lone_write_is_synced_without_the_thread(tmp_path: Path) -> None:
    rec = Recorder()
    ls, writer = stage(tmp_path, rec)
    ls.append([txn(1)])
    await ls.drain()
    assert rec.durable == [[1]] and writer.submitted == 0
    assert logged(tmp_path) == [1]


async def test_writes_arriving_together_go_to_the_thread_as_one_batch(tmp_path: Path) -> None:
    rec = Recorder()
    ls, writer = stage(tmp_path, rec)
    ls.append([txn(1)])  # two connections' writes read in one turn of the loop
    ls.append([txn(2)])
    await ls.drain()
    assert rec.durable == [[1, 2]] and writer.submitted == 1


async def test_after_a_slow_fsync_a_lone_write_goes_to_the_thread(tmp_path: Path) -> None:
    rec = Recorder()
    ls, writer = stage(tmp_path, rec)
    ls.last_fsync_ms = INLINE_FSYNC_MS * 10
    ls.append([txn(1)])
    await ls.drain()
    assert rec.durable == [[1]] and writer.submitted == 1


async def test_a_roll_due_meanwhile_sends_the_lone_write_to_the_thread(tmp_path: Path) -> None:
    # A snapshot asks for a new log file while the lone write waits for its turn: the
    # roll happens before that write, on the writer thread, as for any batch.
    rec = Recorder()
    ls, writer = stage(tmp_path, rec)
    ls.append([txn(1)])
    await ls.drain()
    ls.last_fsync_ms = 0.0  # the write that made the file may have been slow
    ls.append([txn(2)])
    ls._roll_next = True
    await ls.drain()
    assert rec.durable == [[1], [2]] and writer.submitted == 1
    assert logged(tmp_path) == [1, 2] and len(list(tmp_path.glob("log.*"))) == 2


async def test_a_lone_write_that_fails_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    ls, writer = stage(tmp_path, rec)

    def full(records: list[tuple[int, bytes]]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ls.log, "append", full)
    ls.append([txn(1)])
    await ls.drain()
    assert rec.failed == [[1]] and rec.durable == [] and writer.submitted == 0


async def test_snap_points_passed_during_a_snapshot_wait_for_it_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    ls = LogStage(TxnLog(tmp_path), DataTree(), tmp_path, rec.on_durable, rec.on_failed, 2)
    gate = asyncio.Event()

    async def running() -> None:
        await gate.wait()

    ls._snapshot_task = asyncio.create_task(running())
    for zxid in (1, 2, 3):  # a snap point at every batch (snapCount 2)
        ls.append([txn(zxid)])
        await ls.drain()
    busy = [r for r in caplog.records if "Too busy to snap" in r.getMessage()]
    assert len(busy) == 1 and ls.snapshots_taken == 0
    gate.set()
    await ls._snapshot_task
    ls.append([txn(4)])  # the first batch after it: the deferred snapshot starts
    await ls.drain()
    await ls._snapshot_task
    assert ls.snapshots_taken == 1 and list(tmp_path.glob("snapshot.*"))
    await ls.close()


def test_a_snapshot_slice_follows_the_loop_s_other_work_within_bounds() -> None:
    assert snap_slice_ms(0.0) == SNAP_SLICE_MIN_MS  # idle: short slices
    assert snap_slice_ms(12.0) == 12.0 * SNAP_SHARE  # busy: a share of the loop
    assert snap_slice_ms(1000.0) == SNAP_SLICE_MAX_MS


async def test_a_snapshot_writes_what_a_slice_encodes_at_once(tmp_path: Path) -> None:
    tree = DataTree()
    for p in range(40):  # 40 small families, each a chunk of the encoder
        for node in (f"/p{p}", f"/p{p}/a", f"/p{p}/b"):
            create = CreateTxn(node, b"", OPEN_ACL_UNSAFE, 0, 1)
            tree.apply(Txn(0, 0, tree.last_zxid + 1, 0, create))
    rec = Recorder()
    ls = LogStage(TxnLog(tmp_path), tree, tmp_path, rec.on_durable, rec.on_failed)
    ls._snapper = snapper = CountingExecutor()
    path = await ls.snapshot()
    assert path is not None
    items = FOOTER.unpack(path.read_bytes()[-FOOTER.size :])[0]
    # open, header, the body, footer, finish: the body's ~45 chunks in a few writes
    assert items > 40 and snapper.submitted < 4 + items // 4
    assert read_snapshot(path).tree.nodes == tree.nodes
    await ls.close()
