"""Reply framing shared by the stages: precompiled structs, no per-field allocation."""

from __future__ import annotations

import struct

from pyzk.jute.codes import KeeperState, Xid

# Frame length, then the ReplyHeader (xid, zxid, err): packed together in one call.
REPLY = struct.Struct(">iiqi")
REPLY_SIZE = 16  # the ReplyHeader's share of the frame length
_INT = struct.Struct(">i").pack
_EVENT = struct.Struct(">iiqiiii")  # frame len, ReplyHeader, WatcherEvent type and state, path len
NULL = b"\xff\xff\xff\xff"  # a null buffer or vector


def reply(xid: int, zxid: int, err: int, body: bytes = b"") -> bytes:
    return REPLY.pack(REPLY_SIZE + len(body), xid, zxid, err) + body


def buffer(data: bytes | None) -> bytes:
    return NULL if data is None else _INT(len(data)) + data


def ustring(s: str) -> bytes:
    b = s.encode()
    return _INT(len(b)) + b


def strings(items: list[str] | set[str]) -> bytes:
    return _INT(len(items)) + b"".join(ustring(s) for s in items)


def acl_vector(acl: tuple[tuple[int, str, str], ...]) -> bytes:
    """A jute vector<ACL>: (perms, scheme, id) each."""
    return _INT(len(acl)) + b"".join(_INT(p) + ustring(s) + ustring(i) for p, s, i in acl)


def notification(event_type: int, path: str, state: int = KeeperState.SyncConnected) -> bytes:
    """A watch event: xid -1, zxid -1 (ZooKeeper 3.8 sends no zxid with events)."""
    p = path.encode()
    return _EVENT.pack(28 + len(p), Xid.NOTIFICATION, -1, 0, event_type, state, len(p)) + p
