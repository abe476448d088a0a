"""Print a transaction log human-readably: ``python -m pyzk.tools.logdump LOGFILE``.

One line per txn, as ZooKeeper's LogFormatter prints them: time, session, cxid, zxid,
type and the txn's fields; then where and why the log ends.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from pyzk.storage.wal import LogCorruptError, LogTail, read_file
from pyzk.tree.txn import Txn, decode_txn


def describe(txn: Txn) -> str:
    when = datetime.fromtimestamp(txn.time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    body = txn.body
    fields = ", ".join(f"{k}={getattr(body, k)!r}" for k in body.__slots__)
    return (
        f"{when[:-3]} session 0x{txn.session_id & (2**64 - 1):x} cxid 0x{txn.cxid:x} "
        f"zxid 0x{txn.zxid:x} {type(body).__name__}({fields})"
    )


def dump(path: Path, out: list[str]) -> int:
    count = 0
    try:
        for item in read_file(path, is_last=True):
            if isinstance(item, LogTail):
                out.append(f"EOF reached after {count} txns: {item.reason} at offset {item.offset}")
            else:
                out.append(describe(decode_txn(item[1])))
                count += 1
    except LogCorruptError as e:
        out.append(f"CORRUPT: {e}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pyzk logdump", description=__doc__)
    p.add_argument("log", type=Path)
    args = p.parse_args(argv)
    out: list[str] = []
    rc = dump(args.log, out)
    print("\n".join(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
