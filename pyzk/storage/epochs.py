"""The epoch files ZooKeeper keeps in dataDir: ``acceptedEpoch`` and ``currentEpoch``.

Each holds one decimal number. They are replaced atomically (write, fsync, rename,
fsync the directory) because ZAB's safety rests on them: a server must never forget an
epoch it promised or joined.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyzk.storage.wal import fsync_dir

ACCEPTED = "acceptedEpoch"
CURRENT = "currentEpoch"


def read_epoch(data_dir: Path, name: str) -> int:
    try:
        return int((data_dir / name).read_text().strip())
    except FileNotFoundError:
        return 0


def write_epochs(data_dir: Path, accepted: int, current: int) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, value in ((ACCEPTED, accepted), (CURRENT, current)):
        if read_epoch(data_dir, name) == value:
            continue
        tmp = data_dir / f"{name}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{value}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, data_dir / name)
    fsync_dir(data_dir)
