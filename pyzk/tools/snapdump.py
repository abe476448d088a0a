"""Print a snapshot human-readably: ``python -m pyzk.tools.snapdump SNAPSHOT [-d]``.

Like ZooKeeper's SnapshotFormatter: every znode with its Stat (and data with ``-d``),
then the sessions with their timeouts and ephemerals.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from pyzk.jute.records import Stat
from pyzk.storage.snapshot import SnapshotError, read_snapshot
from pyzk.tree.node import STAT_SIZE, data_of


def dump(path: Path, with_data: bool, out: list[str]) -> int:
    try:
        loaded = read_snapshot(path)
    except SnapshotError as e:
        out.append(f"DAMAGED: {e}")
        return 1
    tree = loaded.tree
    out.append(f"ZNode Details (count={tree.node_count()}, zxid=0x{loaded.zxid:x}):")
    for p, rec in tree.nodes.items():
        st = Stat.from_bytes(rec[:STAT_SIZE])
        out.append("----")
        out.append(p)
        for field in ("czxid", "mzxid", "pzxid"):
            out.append(f"  {field} = 0x{getattr(st, field):x}")
        out.append(f"  ctime = {st.ctime}")
        out.append(f"  mtime = {st.mtime}")
        out.append(f"  version = {st.version}")
        out.append(f"  cversion = {st.cversion}")
        out.append(f"  aversion = {st.aversion}")
        out.append(f"  ephemeralOwner = 0x{st.ephemeralOwner & (2**64 - 1):x}")
        out.append(f"  dataLength = {st.dataLength}")
        data = data_of(rec)
        if with_data and data is not None:
            out.append(f"  data = {base64.b64encode(data).decode()}")
    out.append("----")
    out.append(f"Session Details (sid, timeout, ephemeralCount): {len(tree.sessions)}")
    for sid, timeout in tree.sessions.items():
        eph = len(tree.ephemerals.get(sid, ()))
        out.append(f"0x{sid & (2**64 - 1):x}, {timeout}, {eph}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pyzk snapdump", description=__doc__)
    p.add_argument("snapshot", type=Path)
    p.add_argument("-d", "--data", action="store_true", help="print data (base64)")
    args = p.parse_args(argv)
    out: list[str] = []
    rc = dump(args.snapshot, args.data, out)
    print("\n".join(out))
    return rc


if __name__ == "__main__":
    sys.exit(main())
