"""Retention: keep the newest snapshots and the log files recovery needs (PurgeTxnLog)."""

from __future__ import annotations

import logging
from pathlib import Path

from pyzk.storage.snapshot import snapshot_files
from pyzk.storage.wal import log_files

log = logging.getLogger(__name__)

MIN_RETAIN = 3  # ZooKeeper refuses to keep fewer snapshots than this


def purge(data_dir: Path, log_dir: Path, retain: int) -> list[Path]:
    """Delete snapshots beyond the newest ``retain`` and logs only they needed."""
    retain = max(retain, MIN_RETAIN)
    snaps = snapshot_files(data_dir)  # newest first
    if len(snaps) <= retain:
        return []
    oldest_kept = snaps[retain - 1][0]
    doomed = [p for _, p in snaps[retain:]]
    logs = log_files(log_dir)  # oldest first
    # The newest log starting at or before the oldest kept snapshot may hold txns after
    # it; it and everything later stay.
    keep_from = 0
    for i, (first, _) in enumerate(logs):
        if first <= oldest_kept + 1:
            keep_from = i
    doomed += [p for _, p in logs[:keep_from]]
    for p in doomed:
        p.unlink(missing_ok=True)
    if doomed:
        log.info("purged %d old snapshot and log files", len(doomed))
    return doomed
