"""Transactions: the only way state changes.

Every write request becomes one :class:`Txn` in the prepare stage (``prep.py``). A txn is
self-contained and deterministic to apply: it carries the exact path a sequential create
chose, the new versions, the parent's new cversion and the wall-clock time the leader
stamped, so replaying it from the log, or on a follower, produces the same tree.

Txns are serialised with msgpack as small arrays ``[tag, field, ...]`` for the log and the
quorum protocol. They are never changed once built; the dataclasses are not frozen only
because a frozen one's constructor costs a ``object.__setattr__`` per field, on every write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

# An ACL as stored in txns and the tree: (perms, scheme, id).
AclEntry = tuple[int, str, str]
AclList = tuple[AclEntry, ...]


@dataclass(slots=True)
class CreateTxn:
    path: str
    data: bytes | None
    acl: AclList
    owner: int  # raw ephemeralOwner: session id, container marker or TTL encoding; 0 = none
    parent_cversion: int  # the parent's create count once this create is applied


@dataclass(slots=True)
class DeleteTxn:
    path: str


@dataclass(slots=True)
class SetDataTxn:
    path: str
    data: bytes | None
    version: int  # the node's version after the change


@dataclass(slots=True)
class SetACLTxn:
    path: str
    acl: AclList
    version: int  # the node's aversion after the change


@dataclass(slots=True)
class CheckVersionTxn:
    path: str
    version: int


@dataclass(slots=True)
class ErrorTxn:
    err: int


@dataclass(slots=True)
class MultiTxn:
    ops: tuple[TxnBody, ...]


@dataclass(slots=True)
class CreateSessionTxn:
    timeout_ms: int


@dataclass(slots=True)
class CloseSessionTxn:
    paths: tuple[str, ...]  # the session's ephemerals when the close was prepared


TxnBody = (
    CreateTxn
    | DeleteTxn
    | SetDataTxn
    | SetACLTxn
    | CheckVersionTxn
    | ErrorTxn
    | MultiTxn
    | CreateSessionTxn
    | CloseSessionTxn
)


@dataclass(slots=True)
class Txn:
    """A transaction with its header (ZooKeeper's TxnHeader + record)."""

    session_id: int
    cxid: int
    zxid: int
    time_ms: int  # wall clock at prepare, in ms: becomes ctime/mtime
    body: TxnBody


# --- wire form ---------------------------------------------------------------------------

_TAGS: dict[type, int] = {
    CreateTxn: 1,
    DeleteTxn: 2,
    SetDataTxn: 5,
    SetACLTxn: 7,
    CheckVersionTxn: 13,
    MultiTxn: 14,
    ErrorTxn: -1,
    CreateSessionTxn: -10,
    CloseSessionTxn: -11,
}
_BY_TAG = {v: k for k, v in _TAGS.items()}


# Each body kind as the list its wire form holds (tag first), spelled out per kind: this
# runs once per write. ACLs are tuples of tuples, which msgpack writes as arrays as it
# would lists: no copy.
_TO_LIST: dict[type, Callable[[Any], list[Any]]] = {
    CreateTxn: lambda b: [1, b.path, b.data, b.acl, b.owner, b.parent_cversion],
    DeleteTxn: lambda b: [2, b.path],
    SetDataTxn: lambda b: [5, b.path, b.data, b.version],
    SetACLTxn: lambda b: [7, b.path, b.acl, b.version],
    CheckVersionTxn: lambda b: [13, b.path, b.version],
    MultiTxn: lambda b: [14, [_body_to_list(op) for op in b.ops]],
    ErrorTxn: lambda b: [-1, b.err],
    CreateSessionTxn: lambda b: [-10, b.timeout_ms],
    CloseSessionTxn: lambda b: [-11, b.paths],
}


def _body_to_list(body: TxnBody) -> list[Any]:
    return _TO_LIST[type(body)](body)


def _body_from_array(item: tuple[Any, ...]) -> TxnBody:
    """A body from its wire array, read as tuples: ACLs and paths need no conversion."""
    cls = _BY_TAG[item[0]]
    if cls is MultiTxn:
        return MultiTxn(tuple(_body_from_array(op) for op in item[1]))
    body: TxnBody = cls(*item[1:])
    return body


_pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


def encode_txn(txn: Txn) -> bytes:
    """msgpack form of a txn (header fields, then the body array)."""
    return _pack([txn.session_id, txn.cxid, txn.zxid, txn.time_ms, _body_to_list(txn.body)])


def decode_txn(raw: bytes) -> Txn:
    sid, cxid, zxid, time_ms, body = msgpack.unpackb(raw, raw=False, use_list=False)
    return Txn(sid, cxid, zxid, time_ms, _body_from_array(body))
