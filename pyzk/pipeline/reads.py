"""Read requests, answered from the local tree (ZooKeeper's FinalRequestProcessor, reads).

Each handler takes the tree, the connection (the watcher, for watches it sets) and the
request frame (the body starts at offset 8), and returns the reply body or raises
KeeperError. Handlers decode only what they need: these are the hottest paths.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from pyzk.jute import records as r
from pyzk.jute.codec import MarshallingError
from pyzk.jute.codes import Err, EventType, OpCode, Perms, WatcherType
from pyzk.pipeline.acl import masked_for_reader
from pyzk.pipeline.connection import ClientConnection
from pyzk.pipeline.errors import KeeperError
from pyzk.pipeline.requests import MULTI_READ_RECORDS, decode_multi
from pyzk.pipeline.wire import acl_vector, notification, strings, ustring
from pyzk.tree.datatree import DataTree
from pyzk.tree.java_order import java_hash_order
from pyzk.tree.node import STAT_SIZE, data_and_stat
from pyzk.tree.watches import NoParent, WatchMode

_LEN = struct.Struct(">i").unpack_from
_INT = struct.Struct(">i").pack
_MULTI_HDR = struct.Struct(">i?i").pack
_MULTI_DONE = _MULTI_HDR(-1, True, -1)


def path_watch(frame: bytes) -> tuple[str, bool]:
    """Decode a (path, watch) request body without building a record."""
    (n,) = _LEN(frame, 8)
    end = 12 + n
    if n < 0 or end >= len(frame):
        raise MarshallingError("bad path")
    return str(frame[12:end], "utf-8", "replace"), frame[end] != 0


def path_only(frame: bytes) -> str:
    (n,) = _LEN(frame, 8)
    if n < 0 or 12 + n > len(frame):
        raise MarshallingError("bad path")
    return str(frame[12 : 12 + n], "utf-8", "replace")


def exists(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    path, watch = path_watch(frame)
    if "\0" in path:
        raise KeeperError(Err.BADARGUMENTS, path)
    if watch:  # an exists watch is set whether or not the node exists
        tree.watches.data.add(path, conn)
    rec = tree.nodes.get(path or "/")  # "" names the root too, as in ZooKeeper
    if rec is None:
        raise KeeperError(Err.NONODE, path)
    return rec[:STAT_SIZE]


def _readable(tree: DataTree, conn: ClientConnection, path: str, perm: int = Perms.READ) -> bytes:
    """The record at ``path`` if the connection may read it: NONODE, then NOAUTH."""
    rec = tree.nodes.get(path or "/")  # "" names the root too, as in ZooKeeper
    if rec is None:
        raise KeeperError(Err.NONODE, path)
    conn.auth.check(tree.acl_of(rec), perm)
    return rec


def get_data(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    path, watch = path_watch(frame)
    rec = _readable(tree, conn, path)
    if watch:
        tree.watches.data.add(path, conn)
    return data_and_stat(rec)


def get_children(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    path, watch = path_watch(frame)
    _readable(tree, conn, path)
    if watch:
        tree.watches.child.add(path, conn)
    return strings(tree.child_names(path or "/"))


def get_children2(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    body = get_children(tree, conn, frame)
    return body + tree.nodes[path_watch(frame)[0] or "/"][:STAT_SIZE]


def sync(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    # Standalone: everything before it on this session is applied already.
    return r.PathResponse(path_only(frame)).encode()


def ping(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    return b""


def set_watches(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    """Re-register watches after a reconnect, firing at once for what changed meanwhile.

    ``relativeZxid`` is the last zxid the client saw: a data watch on a node modified
    since fires NodeDataChanged, a child watch on a node whose children changed fires
    NodeChildrenChanged, a watch on a node now gone fires NodeDeleted and an exists watch
    on a node now present fires NodeCreated (DataTree.setWatches). setWatches2 also
    carries persistent and persistent recursive watches, which are re-added as they are.
    """
    if _LEN(frame, 4)[0] == OpCode.setWatches2:
        sw2 = r.SetWatches2.decode(frame, 8)[0]
        sw = r.SetWatches(sw2.relativeZxid, sw2.dataWatches, sw2.existWatches, sw2.childWatches)
        persistent = {
            WatchMode.PERSISTENT: sw2.persistentWatches,
            WatchMode.PERSISTENT_RECURSIVE: sw2.persistentRecursiveWatches,
        }
    else:
        sw, persistent = r.SetWatches.decode(frame, 8)[0], {}
    rel = sw.relativeZxid
    for path in sw.dataWatches:
        rec = tree.nodes.get(path)
        if rec is None:
            conn.queue(notification(EventType.NodeDeleted, path))
        elif struct.unpack_from(">q", rec, 8)[0] > rel:  # mzxid
            conn.queue(notification(EventType.NodeDataChanged, path))
        else:
            tree.watches.data.add(path, conn)
    for path in sw.existWatches:
        if path in tree.nodes:
            conn.queue(notification(EventType.NodeCreated, path))
        else:
            tree.watches.data.add(path, conn)
    for path in sw.childWatches:
        rec = tree.nodes.get(path)
        if rec is None:
            conn.queue(notification(EventType.NodeDeleted, path))
        elif struct.unpack_from(">q", rec, 60)[0] > rel:  # pzxid
            conn.queue(notification(EventType.NodeChildrenChanged, path))
        else:
            tree.watches.child.add(path, conn)
    for mode, paths in persistent.items():
        for path in paths:
            tree.watches.add_persistent(path, conn, mode)
    return b""


def add_watch(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    """A persistent watch (mode 0) or a persistent recursive one (mode 1) on any path."""
    req = r.AddWatchRequest.decode(frame, 8)[0]
    try:
        mode = WatchMode(req.mode)
    except ValueError:
        raise MarshallingError(f"unsupported watch mode {req.mode}") from None
    if mode == WatchMode.STANDARD:
        raise MarshallingError("unsupported watch mode -1")
    tree.watches.add_persistent(req.path, conn, mode)
    return _INT(0)  # an ErrorResponse with err 0


def _watcher_type(frame: bytes) -> tuple[str, int]:
    req = r.WatchesRequest.decode(frame, 8)[0]
    if req.type not in (WatcherType.Children, WatcherType.Data, WatcherType.Any):
        # WatcherType.fromInt throws, and ZooKeeper answers MARSHALLINGERROR.
        raise MarshallingError(f"invalid watcher type {req.type}")
    return req.path, req.type


def check_watches(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    path, kind = _watcher_type(frame)
    try:
        found = tree.watches.contains(path, kind, conn)
    except NoParent as e:
        raise MarshallingError(f"no parent in {e}") from None
    if not found:
        raise KeeperError(Err.NOWATCHER, path)
    return b""


def remove_watches(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    """Remove this connection's watches; the client makes the *WatchRemoved events."""
    path, kind = _watcher_type(frame)
    if not tree.watches.remove(path, kind, conn):
        raise KeeperError(Err.NOWATCHER, path)
    return b""


def multi_read(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    """getData/getChildren ops answered together; each op fails on its own."""
    out: list[bytes] = []
    for op, req in decode_multi(frame, 8, MULTI_READ_RECORDS):
        assert isinstance(req, r.PathWatchRequest)
        try:
            rec = _readable(tree, conn, req.path)
        except KeeperError as e:
            out.append(_MULTI_HDR(-1, False, e.code) + _INT(e.code))
            continue
        if op == OpCode.getData:
            if req.watch:
                tree.watches.data.add(req.path, conn)
            out.append(_MULTI_HDR(op, False, 0) + data_and_stat(rec))
        else:
            if req.watch:
                tree.watches.child.add(req.path, conn)
            out.append(_MULTI_HDR(op, False, 0) + strings(tree.child_names(req.path or "/")))
    out.append(_MULTI_DONE)
    return b"".join(out)


def get_acl(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    """The ACL and Stat; READ or ADMIN needed, and without ADMIN digests are masked."""
    path = path_only(frame)
    rec = _readable(tree, conn, path, Perms.READ | Perms.ADMIN)
    acl = tree.acl_of(rec)
    if not conn.auth.allows(acl, Perms.ADMIN):
        acl = masked_for_reader(acl)
    return acl_vector(acl) + rec[:STAT_SIZE]


def get_all_children_number(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    """How many nodes are below ``path``, at any depth (READ needed on ``path``)."""
    path = path_only(frame)
    _readable(tree, conn, path)
    return _INT(tree.descendant_count(path))


def get_ephemerals(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    """The session's ephemerals whose path starts with the prefix ("" or "/": all)."""
    prefix = path_only(frame)
    mine = java_hash_order(tree.ephemerals.get(conn.session_id, ()))
    if prefix.strip() not in ("", "/"):
        mine = [p for p in mine if p.startswith(prefix)]
    return strings(mine)


def who_am_i(tree: DataTree, conn: ClientConnection, frame: bytes) -> bytes:
    infos = conn.auth.client_infos()
    return _INT(len(infos)) + b"".join(ustring(s) + ustring(u) for s, u in infos)


ReadHandler = Callable[[DataTree, ClientConnection, bytes], bytes]

READS: dict[int, ReadHandler] = {
    OpCode.exists: exists,
    OpCode.getData: get_data,
    OpCode.getChildren: get_children,
    OpCode.getChildren2: get_children2,
    OpCode.sync: sync,
    OpCode.ping: ping,
    OpCode.setWatches: set_watches,
    OpCode.setWatches2: set_watches,
    OpCode.addWatch: add_watch,
    OpCode.checkWatches: check_watches,
    OpCode.removeWatches: remove_watches,
    OpCode.multiRead: multi_read,
    OpCode.getACL: get_acl,
    OpCode.getAllChildrenNumber: get_all_children_number,
    OpCode.getEphemerals: get_ephemerals,
    OpCode.whoAmI: who_am_i,
}
