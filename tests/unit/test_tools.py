"""logdump and snapdump print what is on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.cli import main
from pyzk.storage.snapshot import write_snapshot
from pyzk.storage.wal import TxnLog, log_files
from pyzk.tree.datatree import DataTree
from pyzk.tree.txn import CreateSessionTxn, CreateTxn, Txn, encode_txn


def test_logdump_and_snapdump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = DataTree()
    txns = [
        Txn(0x42, 0, 1, 1_700_000_000_000, CreateSessionTxn(30000)),
        Txn(
            0x42,
            1,
            2,
            1_700_000_000_001,
            CreateTxn("/x", b"hi", ((31, "world", "anyone"),), 0x42, 1),
        ),
    ]
    wal = TxnLog(tmp_path, 64 * 1024)
    for t in txns:
        tree.apply(t)
        wal.append([(t.zxid, encode_txn(t))])
    wal.close()
    assert main(["logdump", str(log_files(tmp_path)[0][1])]) == 0
    out = capsys.readouterr().out
    assert "zxid 0x2 CreateTxn(path='/x'" in out and "session 0x42" in out
    assert "EOF reached after 2 txns" in out
    snap = write_snapshot(tree, tmp_path)
    assert main(["snapdump", "-d", str(snap)]) == 0
    out = capsys.readouterr().out
    assert "/x\n" in out and "ephemeralOwner = 0x42" in out and "aGk=" in out
    assert "0x42, 30000, 1" in out
