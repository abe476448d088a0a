"""The log stage's choice of where to sync a batch: inline for a lone write, else the thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.server.log_stage import INLINE_FSYNC_MS, LogStage
from pyzk.storage.wal import LogTail, TxnLog, read_log
from pyzk.tree.datatree import DataTree
from pyzk.tree.txn import CreateSessionTxn, Txn


class Recorder:
    def __init__(self) -> None:
        self.durable: list[list[int]] = []
        self.failed: list[list[int]] = []

    def on_durable(self, txns: list[Txn]) -> None:
        self.durable.append([t.zxid for t in txns])

    def on_failed(self, txns: list[Txn], exc: OSError) -> None:
        self.failed.append([t.zxid for t in txns])


def stage(tmp_path: Path, rec: Recorder) -> LogStage:
    return LogStage(TxnLog(tmp_path), DataTree(), tmp_path, rec.on_durable, rec.on_failed)


def txn(zxid: int) -> Txn:
    return Txn(zxid, 0, zxid, 0, CreateSessionTxn(30000))


def logged(d: Path) -> list[int]:
    return [item[0] for item in read_log(d, 0) if not isinstance(item, LogTail)]


async def test_a_lone_write_is_durable_before_append_returns(tmp_path: Path) -> None:
    rec = Recorder()
    ls = stage(tmp_path, rec)
    ls.append([txn(1)])
    assert rec.durable == [[1]]  # synced on this thread: nothing to await
    assert logged(tmp_path) == [1]
    await ls.drain()


async def test_batches_and_slow_disks_go_to_the_writer_thread(tmp_path: Path) -> None:
    rec = Recorder()
    ls = stage(tmp_path, rec)
    ls.append([txn(1), txn(2)])
    assert rec.durable == []  # a batch is written by the thread
    await ls.drain()
    assert rec.durable == [[1, 2]]
    ls.last_fsync_ms = INLINE_FSYNC_MS * 10  # the disk was slow a moment ago
    ls.append([txn(3)])
    assert rec.durable == [[1, 2]]
    await ls.drain()
    assert rec.durable == [[1, 2], [3]] and logged(tmp_path) == [1, 2, 3]


async def test_a_lone_write_that_fails_inline_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    ls = stage(tmp_path, rec)
    ls.append([txn(1)])

    def full(records: list[tuple[int, bytes]]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ls.log, "append", full)
    ls.last_fsync_ms = 0.0  # the first write, which made the file, may have been slow
    ls.append([txn(2)])
    assert rec.failed == [[2]] and rec.durable == [[1]]
    await ls.drain()
