"""Request bodies by opcode: which record each opcode carries, and multi's framing."""

from __future__ import annotations

from pyzk.jute import records as r
from pyzk.jute.codec import MarshallingError, Record
from pyzk.jute.codes import OpCode

# The request record of each write opcode.
WRITE_RECORDS: dict[int, type[Record]] = {
    OpCode.create: r.CreateRequest,
    OpCode.create2: r.CreateRequest,
    OpCode.createContainer: r.CreateRequest,
    OpCode.createTTL: r.CreateTTLRequest,
    OpCode.delete: r.DeleteRequest,
    OpCode.reconfig: r.ReconfigRequest,
    OpCode.setData: r.SetDataRequest,
    OpCode.setACL: r.SetACLRequest,
    OpCode.check: r.CheckVersionRequest,
}

# Ops a multi (transaction) may hold, and ops a multiRead may hold.
MULTI_WRITE_OPS = frozenset(
    {
        OpCode.create,
        OpCode.create2,
        OpCode.createTTL,
        OpCode.createContainer,
        OpCode.delete,
        OpCode.setData,
        OpCode.check,
    }
)
MULTI_READ_RECORDS: dict[int, type[Record]] = {
    OpCode.getChildren: r.PathWatchRequest,
    OpCode.getData: r.PathWatchRequest,
}


def decode_multi(
    frame: bytes, pos: int, allowed: dict[int, type[Record]]
) -> list[tuple[int, Record]]:
    """The ops of a MultiOperationRecord: (MultiHeader, op record)* up to a done header."""
    ops: list[tuple[int, Record]] = []
    while True:
        hdr, pos = r.MultiHeader.decode(frame, pos)
        if hdr.done:
            return ops
        cls = allowed.get(hdr.type)
        if cls is None:
            raise MarshallingError(f"invalid op type {hdr.type} in multi")
        rec, pos = cls.decode(frame, pos)
        ops.append((hdr.type, rec))


def decode_write(op: int, frame: bytes) -> object:
    """The request record of a write (a list of (op, record) for multi)."""
    if op == OpCode.deleteContainer:
        # ZooKeeper reads the whole request buffer, header included, as the UTF-8 path
        # (meant for its own container reaper); from a client that "path" holds the
        # header's NUL bytes, so the delete fails with BADARGUMENTS, as here.
        return r.PathRequest(str(frame, "utf-8", "replace"))
    if op == OpCode.multi:
        allowed = {k: v for k, v in WRITE_RECORDS.items() if k in MULTI_WRITE_OPS}
        return decode_multi(frame, 8, allowed)
    return WRITE_RECORDS[op].decode(frame, 8)[0]
