"""The request pipeline's own cost, in process: ``python -m bench.pipeline [OP...]``.

Feeds batches of 64 pipelined requests (setData, create+delete or getData, 100 bytes)
through one connection's decoder, the processor, the txn encoding the log stage does
and the apply stage, with no socket, no fsync and no event loop, and prints the best
of ``--reps`` runs in microseconds per request. ZooKeeper has no counterpart: this is
for comparing two versions of pyzk.

Wall-clock figures on a shared machine move by ±20% between runs, so a change to the
hot path is better judged by instructions, which do not depend on the neighbours::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python -m bench.pipeline set --reps 1        # and again with --reps 3

A run is 19,200 requests (38,400 for createdelete: a create and a delete each), so the
difference of the two "Collected" totals divided by twice that is one request's cost.
"""

from __future__ import annotations

import argparse
import gc
import struct
import time

from pyzk.jute import records as r
from pyzk.jute.codec import Record
from pyzk.jute.codes import OpCode
from pyzk.pipeline.connection import ClientConnection
from pyzk.pipeline.processor import Processor, Settings
from pyzk.tree.datatree import DataTree
from pyzk.tree.txn import encode_txn

OPS = ("set", "createdelete", "get")
KEYS = 1024
BATCHES = 300  # of 64 requests (128 for createdelete: a create and a delete each)
OPEN = [r.ACL(31, r.Id("world", "anyone"))]


def _frame(xid: int, op: int, rec: Record) -> bytes:
    body: bytes = struct.pack(">ii", xid, op) + rec.encode()
    return struct.pack(">i", len(body)) + body


class Pipeline:
    """A processor with one session, its log stage replaced by encoding and applying."""

    def __init__(self) -> None:
        self.proc = Processor(DataTree(), Settings(tick_ms=2000), start_wall_ms=1_000_000)
        self.conn = ClientConnection()
        hello = r.ConnectRequest(0, 0, 30000, 0, b"\0" * 16).encode()
        (event,) = self.conn.receive_data(struct.pack(">i", len(hello)) + hello)
        self.proc.connect(self.conn, event[1])
        self.flush()
        creates = (_frame(k + 1, OpCode.create, _create(f"/key{k}")) for k in range(KEYS))
        self.feed(b"".join(creates))

    def feed(self, data: bytes) -> int:
        """Hand ``data`` to the connection, run every request in it; how many there were."""
        n = 0
        for event in self.conn.receive_data(data):
            self.proc.request(self.conn, event[1], event[2], event[3])
            n += 1
        self.flush()
        return n

    def flush(self) -> None:
        txns = self.proc.take_to_log()
        for txn in txns:
            encode_txn(txn)
        self.proc.commit(txns)
        self.conn.outbox.clear()


def _create(path: str) -> r.CreateRequest:
    return r.CreateRequest(path, b"x" * 100, OPEN, 0)


def batch(op: str, i: int) -> bytes:
    out = []
    for j in range(64):
        key = f"/key{(i * 64 + j) % KEYS}"
        if op == "set":
            out.append(_frame(j + 1, OpCode.setData, r.SetDataRequest(key, b"y" * 100, -1)))
        elif op == "get":
            out.append(_frame(j + 1, OpCode.getData, r.PathWatchRequest(key, False)))
        else:
            path = f"/cd{i}-{j}"
            out.append(_frame(j + 1, OpCode.create, _create(path)))
            out.append(_frame(j + 1, OpCode.delete, r.DeleteRequest(path, -1)))
    return b"".join(out)


def measure(op: str, reps: int) -> float:
    """Best CPU microseconds per request over ``reps`` runs of every batch."""
    pipe = Pipeline()
    data = [batch(op, i) for i in range(BATCHES)]
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        t0, n = time.process_time(), 0
        for chunk in data:
            n += pipe.feed(chunk)
        best = min(best, (time.process_time() - t0) / n * 1e6)
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    p.add_argument("ops", nargs="*", metavar="OP", help=f"any of {', '.join(OPS)} (all)")
    p.add_argument("--reps", type=int, default=9)
    args = p.parse_args(argv)
    unknown = set(args.ops) - set(OPS)
    if unknown:
        p.error(f"unknown op: {', '.join(sorted(unknown))}")
    for op in args.ops or OPS:
        print(f"{op}: {measure(op, args.reps):.2f} us/request")


if __name__ == "__main__":
    main()
