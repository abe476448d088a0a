"""Recovery at start-up: the newest valid snapshot, then the log after it (ZKDatabase.loadDataBase).

A damaged snapshot is skipped for an older one (the log still holds what it covered, as
long as retention kept it). A torn or corrupt log tail is truncated with a log line;
damage in the middle of the log raises :class:`~pyzk.storage.wal.LogCorruptError`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pyzk.storage.nogc import gc_paused
from pyzk.storage.snapshot import SnapshotError, read_snapshot, snapshot_files
from pyzk.storage.wal import LogTail, read_log, truncate_tail
from pyzk.tree.datatree import DataTree
from pyzk.tree.txn import decode_txn

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Recovered:
    tree: DataTree
    snapshot_zxid: int  # 0 when no snapshot was used
    replayed: int  # txns applied from the log
    truncated: list[LogTail]


def recover(data_dir: Path, log_dir: Path) -> Recovered:
    with gc_paused():
        return _recover(data_dir, log_dir)


def _recover(data_dir: Path, log_dir: Path) -> Recovered:
    tree, snap_zxid = _load_snapshot(data_dir)
    replayed = 0
    truncated: list[LogTail] = []
    apply, expected = tree.apply, tree.last_zxid + 1  # once per replayed txn: locals
    for item in read_log(log_dir, tree.last_zxid):
        if isinstance(item, LogTail):
            if item.reason not in ("end", "zeros"):
                truncate_tail(item)
                truncated.append(item)
            continue
        zxid, payload = item
        if zxid != expected:
            log.warning("transaction log jumps from zxid 0x%x to 0x%x", expected - 1, zxid)
        apply(decode_txn(payload))
        expected = zxid + 1
        replayed += 1
    log.info(
        "recovered zxid 0x%x: snapshot 0x%x + %d txns from the log, %d znodes, %d sessions",
        tree.last_zxid,
        snap_zxid,
        replayed,
        tree.node_count(),
        len(tree.sessions),
    )
    return Recovered(tree, snap_zxid, replayed, truncated)


def _load_snapshot(data_dir: Path) -> tuple[DataTree, int]:
    for zxid, path in snapshot_files(data_dir):
        try:
            loaded = read_snapshot(path)
        except (SnapshotError, OSError) as e:
            log.warning("skipping snapshot %s: %s", path, e)
            continue
        log.info("loaded snapshot %s (zxid 0x%x)", path.name, zxid)
        return loaded.tree, loaded.zxid
    return DataTree(), 0
