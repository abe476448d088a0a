"""Reply bodies for applied writes (ZooKeeper's FinalRequestProcessor, writes)."""

from __future__ import annotations

import struct

from pyzk.jute.codes import Err, OpCode
from pyzk.pipeline.wire import ustring
from pyzk.tree.datatree import Result

_MULTI_HDR = struct.Struct(">i?i").pack
_INT = struct.Struct(">i").pack
_MULTI_DONE = _MULTI_HDR(-1, True, -1)

# Creates whose reply carries the new node's Stat as well as its path.
_CREATE_WITH_STAT = frozenset({OpCode.create2, OpCode.createContainer, OpCode.createTTL})


def write_body(op: int, result: Result, sub_ops: list[int] | None = None) -> bytes:
    """The body of the reply to a write that applied with ``result`` (err == OK)."""
    if op == OpCode.create:
        return ustring(result.path)
    if op in _CREATE_WITH_STAT:
        assert result.stat is not None
        return ustring(result.path) + result.stat
    if op in (OpCode.setData, OpCode.setACL):
        assert result.stat is not None
        return result.stat
    if op == OpCode.multi:
        assert result.multi is not None and sub_ops is not None
        return multi_body(sub_ops, result.multi)
    return b""  # delete, check, closeSession


def multi_body(ops: list[int], results: list[Result]) -> bytes:
    out: list[bytes] = []
    for op, res in zip(ops, results, strict=True):
        if res.op == -1 or res.err != Err.OK:
            out.append(_MULTI_HDR(-1, False, res.err) + _INT(res.err))
        else:
            out.append(_MULTI_HDR(op, False, 0) + write_body(op, res))
    out.append(_MULTI_DONE)
    return b"".join(out)
