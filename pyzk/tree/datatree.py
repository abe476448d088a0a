"""The data tree: znodes, ephemerals by session, and the watches on them.

Theory of operation
-------------------
Mirrors ZooKeeper's ``DataTree``. Nodes live in one flat dict keyed by full path (as
ZooKeeper's NodeHashMap), each a packed record (see :mod:`pyzk.tree.node`); the nodes
that have children also have a :class:`~pyzk.tree.node.Kids` in ``kids``. ACL lists are
kept once each in a table that records name by index.

:meth:`DataTree.apply` is the **only mutator**. It takes a :class:`~pyzk.tree.txn.Txn`
that the prepare stage built, changes the tree, and returns what happened (for the
reply) plus the watches that fired (for the notifications). Live writes, log replay and
(later) replication all go through it, so they cannot disagree.

Apply is *tolerant* where ZooKeeper's is: replaying a txn over a fuzzy snapshot may
create a node that exists or delete one that does not; such sub-results carry the error
code and leave the tree unchanged, and cversion/pzxid only ever move forward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyzk.jute.codes import Err, EventType
from pyzk.tree.node import (
    AVERSION,
    CONTAINER_OWNER,
    DATA_LENGTH,
    MTIME,
    MZXID,
    STAT,
    STAT_SIZE,
    VERSION,
    Kids,
    acl_id_of,
    child_fields,
    creates,
    data_length,
    data_of,
    fields,
    name_cut,
    new_record,
    record,
    stat_owner,
    ttl_of,
    with_child_fields,
    with_data,
)
from pyzk.tree.quota import (
    BYTES,
    COUNT,
    LIMIT_NODE,
    STAT_NODE,
    QuotaIndex,
    format_stats,
    parse_stats,
    stat_path,
)
from pyzk.tree.txn import (
    AclList,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnBody,
)
from pyzk.tree.watches import Fired, WatchManager

if TYPE_CHECKING:
    from pyzk.tree.snapshot_view import SnapshotView

OPEN_ACL_UNSAFE: AclList = ((31, "world", "anyone"),)
READ_ACL_UNSAFE: AclList = ((1, "world", "anyone"),)

ZOOKEEPER = "/zookeeper"
QUOTA = "/zookeeper/quota"
CONFIG = "/zookeeper/config"


@dataclass(slots=True)
class Result:
    """What applying one txn (or one op of a multi) did."""

    err: int = Err.OK
    path: str = ""  # the created path (sequential creates choose it)
    stat: bytes | None = None  # the node's Stat after the change, where the reply needs it
    multi: list[Result] | None = None  # per-op results of a multi
    # The op kind of a multi sub-result (create, delete, ...), -1 for an error result.
    op: int = 0


# What applying a txn did, and the watches it fired in ZooKeeper's order (a plain tuple:
# one is made per write).
Applied = tuple[Result, list[Fired]]


class DataTree:
    def __init__(self) -> None:
        self.nodes: dict[str, bytes] = {}  # path -> record
        self.kids: dict[str, Kids] = {}  # path -> its children, for nodes that had any
        # session id -> its ephemeral paths, in creation order (getEphemerals shows it)
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.sessions: dict[int, int] = {}  # live session id -> timeout (ms): durable state
        # Containers and TTL nodes, for the reaper (DataTree.getContainers / getTtls); a TTL
        # node's raw ephemeralOwner holds its TTL, which its Stat does not show.
        self.containers: dict[str, None] = {}
        self.ttls: dict[str, int] = {}
        self.quotas = QuotaIndex()  # paths with a quota (their zookeeper_limits exists)
        self.watches = WatchManager()
        self.last_zxid = 0  # the last zxid applied (ZooKeeper's lastProcessedZxid)
        self.data_size = 0  # sum of path and data lengths ("approximate_data_size")
        self.acls: list[AclList] = []  # ACL id -> list (ReferenceCountedACLCache)
        self._acl_ids: dict[AclList, int] = {}
        self.view: SnapshotView | None = None  # a snapshot being written, if any
        self._init_system_nodes()

    # --- reads ------------------------------------------------------------------------

    def get(self, path: str) -> bytes | None:
        """The record of the node at ``path`` (see :mod:`pyzk.tree.node`)."""
        return self.nodes.get(path)

    def acl_of(self, rec: bytes) -> AclList:
        return self.acls[acl_id_of(rec)]

    def owner_of(self, path: str, rec: bytes) -> int:
        """The raw ephemeralOwner: a session id, the container marker or a TTL's."""
        return stat_owner(rec) or self.hidden_owner(path)

    def hidden_owner(self, path: str) -> int:
        """The raw owner of a container or TTL node (their Stat shows 0), else 0."""
        if not (self.containers or self.ttls):
            return 0
        if path in self.containers:
            return CONTAINER_OWNER
        return self.ttls.get(path, 0)

    def child_names(self, path: str) -> list[str]:
        """The children's names in the order ZooKeeper lists them."""
        kids = self.kids.get(path)
        if not kids or not kids.names:
            return []
        cut = name_cut(path)
        return [p[cut:] for p in kids.listing(cut)]

    def num_children(self, path: str) -> int:
        kids = self.kids.get(path)
        return len(kids.names) if kids is not None else 0

    # Whole fields, for tools and tests (the hot paths read records directly).

    def data(self, path: str) -> bytes | None:
        return data_of(self.nodes[path])

    def stat(self, path: str) -> bytes:
        return self.nodes[path][:STAT_SIZE]

    def acl(self, path: str) -> AclList:
        return self.acl_of(self.nodes[path])

    def begin_snapshot(self) -> SnapshotView:
        """A consistent view at the current zxid (one at a time)."""
        from pyzk.tree.snapshot_view import SnapshotView

        assert self.view is None, "a snapshot is already being taken"
        self.view = SnapshotView(self)
        return self.view

    def set_config(self, data: bytes) -> None:
        """Publish the membership in /zookeeper/config (each server writes its own view,
        outside the txn log, as ZooKeeper's QuorumPeer does)."""
        rec = self.nodes[CONFIG]
        f = fields(rec)
        self.data_size += len(data) - f[DATA_LENGTH]
        f[DATA_LENGTH] = len(data)
        self.nodes[CONFIG] = record(STAT.pack(*f), acl_id_of(rec), data)

    def replace_contents(self, other: DataTree) -> None:
        """Become ``other`` (a state reloaded or received whole), keeping our watches."""
        if self.view is not None:
            self.view.aborted = True
            self.view = None
        config = self.data(CONFIG)
        self.nodes, self.kids = other.nodes, other.kids
        self.ephemerals, self.sessions = other.ephemerals, other.sessions
        self.last_zxid, self.data_size = other.last_zxid, other.data_size
        self.containers, self.ttls, self.quotas = other.containers, other.ttls, other.quotas
        self.acls, self._acl_ids = other.acls, other._acl_ids
        if config:
            self.set_config(config)  # membership is this server's, not the leader's state

    def _cow(self, path: str, rec: bytes) -> None:
        """Keep a node's record for the snapshot being written before changing it.

        The write path calls this (and :meth:`_cow_parent`) only while a snapshot is
        being written (``self.view`` set), and fires watches only if there are any:
        each call skipped is a few percent of a small write.
        """
        view = self.view
        if view is not None and path not in view.preserved:
            view.preserved[path] = (rec, self.owner_of(path, rec))

    def _cow_parent(self, path: str, rec: bytes) -> None:
        """As :meth:`_cow`, before a child is added or removed: the children too."""
        view = self.view
        if view is not None:
            self._cow(path, rec)
            if path not in view.children:
                kids = self.kids.get(path)
                view.children[path] = kids.copy() if kids is not None else None

    def descendant_count(self, path: str) -> int:
        """Nodes below ``path`` at any depth (DataTree.getAllChildrenNumber).

        ZooKeeper counts the keys of its node map that start with ``path + "/"``; the map
        also holds the root under "", so for "" it counts every node, the root included.
        """
        if not path:
            return len(self.nodes)
        if path == "/":
            return len(self.nodes) - 1
        count, stack, kids = 0, [path], self.kids
        while stack:
            k = kids.get(stack.pop())
            if k is not None and k.names:
                count += len(k.names)
                stack.extend(k.names)
        return count

    def reap_candidates(self, wall_ms: int, max_never_used_ms: int = 0) -> list[str]:
        """Containers and TTL nodes due for deletion (ContainerManager.getCandidates).

        A container goes once it is empty and has ever had a child (its create count is
        above 0), or, with ``max_never_used_ms``, once it sat unused that long. A TTL node
        goes once it is empty and unmodified for longer than its TTL (by its mtime).
        """
        out: list[str] = []
        for path in self.containers:
            rec = self.nodes.get(path)
            if rec is None or self.num_children(path):
                continue
            f = fields(rec)
            if creates(rec) > 0 or (max_never_used_ms and wall_ms - f[MTIME] > max_never_used_ms):
                out.append(path)
        for path, owner in self.ttls.items():
            rec = self.nodes.get(path)
            if rec is None or self.num_children(path):
                continue
            ttl = ttl_of(owner)
            if ttl and wall_ms - fields(rec)[MTIME] > ttl:
                out.append(path)
        return out

    def node_count(self) -> int:
        return len(self.nodes)

    def ephemeral_count(self) -> int:
        return sum(len(p) for p in self.ephemerals.values())

    # --- the one mutator --------------------------------------------------------------

    def apply(self, txn: Txn) -> Applied:
        """Apply a txn prepared for this tree; see the module docstring."""
        fired: list[Fired] = []
        body = txn.body
        result = _APPLY[type(body)](self, txn, body, fired)  # a multi's too
        if txn.zxid > self.last_zxid:
            self.last_zxid = txn.zxid
        return result, fired

    def _apply_one(self, txn: Txn, body: TxnBody, fired: list[Fired]) -> Result:
        handler: _Apply = _APPLY[type(body)]
        return handler(self, txn, body, fired)

    def _apply_multi(self, txn: Txn, multi: MultiTxn, fired: list[Fired]) -> Result:
        # A multi with an error op applies nothing: ops before the failure report OK, the
        # failed op its error, ops after it RUNTIMEINCONSISTENCY (DataTree.processTxn).
        results: list[Result] = []
        if any(isinstance(op, ErrorTxn) for op in multi.ops):
            after = False
            for op in multi.ops:
                if isinstance(op, ErrorTxn):
                    after = True
                    results.append(Result(err=op.err, op=-1))
                else:
                    err = Err.RUNTIMEINCONSISTENCY if after else Err.OK
                    results.append(Result(err=err, op=-1))
        else:
            for op in multi.ops:
                r = self._apply_one(txn, op, fired)
                r.op = _OP_OF[type(op)]
                results.append(r)
        return Result(multi=results)

    # --- per-txn handlers -------------------------------------------------------------

    def _create(self, txn: Txn, t: CreateTxn, fired: list[Fired]) -> Result:
        path, nodes = t.path, self.nodes
        if path in nodes:
            return Result(err=Err.NODEEXISTS)
        cut = path.rfind("/")
        parent_path = path[:cut] or "/"
        parent = nodes.get(parent_path)
        if parent is None:
            return Result(err=Err.NONODE)
        zxid = txn.zxid
        if self.view is not None:
            self._cow_parent(parent_path, parent)
        nodes[path] = rec = new_record(zxid, txn.time_ms, t.data, t.owner, self.acl_id(t.acl))
        kids = self.kids.get(parent_path)
        if kids is None:
            kids = self.kids[parent_path] = Kids()
        kids.add(path)
        cversion, num_children, pzxid = child_fields(parent)
        parent_creates = (cversion + num_children) // 2
        if t.parent_cversion > parent_creates:
            parent_creates = t.parent_cversion
            pzxid = zxid
        num_children = len(kids.names)
        cversion = 2 * parent_creates - num_children
        nodes[parent_path] = with_child_fields(parent, cversion, num_children, pzxid)
        if t.owner:
            self._track_owner(path, t.owner)
        self.data_size += len(path) + (len(t.data) if t.data else 0)
        if parent_path.startswith(QUOTA):
            name = path[cut + 1 :]
            if name == LIMIT_NODE:
                self.quotas.add(parent_path[len(QUOTA) :])
            elif name == STAT_NODE:
                self._recount_quota(parent_path[len(QUOTA) :])
        if self.quotas.roots:
            self._count_quota(path, len(t.data) if t.data else 0, 1)
        w = self.watches
        if w.data.by_path or w.child.by_path:
            w.trigger_data(path, EventType.NodeCreated, fired)
            w.trigger_child(parent_path, EventType.NodeChildrenChanged, fired)
        # The reply's Stat is the one created, before any quota bookkeeping changed it.
        return Result(Err.OK, path, rec[:STAT_SIZE])  # positional: one per create

    def _delete(self, txn: Txn, t: DeleteTxn, fired: list[Fired]) -> Result:
        path, nodes = t.path, self.nodes
        rec = nodes.get(path)
        if rec is None:
            return Result(err=Err.NONODE)
        cut = path.rfind("/")
        parent_path = path[:cut] or "/"
        parent = nodes[parent_path]
        owner = self.owner_of(path, rec)
        if self.view is not None:
            self._cow(path, rec)
            self._cow_parent(parent_path, parent)
        del nodes[path]
        self.kids.pop(path, None)  # empty, or the txn would not have been prepared
        cversion, num_children, pzxid = child_fields(parent)
        parent_creates = (cversion + num_children) // 2
        kids = self.kids[parent_path]
        kids.names.pop(path, None)
        num_children = len(kids.names)
        cversion = 2 * parent_creates - num_children
        pzxid = max(pzxid, txn.zxid)
        nodes[parent_path] = with_child_fields(parent, cversion, num_children, pzxid)
        if owner:
            self._untrack_owner(path, owner)
        size = data_length(rec)
        self.data_size -= len(path) + size
        if parent_path.startswith(ZOOKEEPER) and path[cut + 1 :] == LIMIT_NODE:
            self.quotas.remove(parent_path[len(QUOTA) :])
        if self.quotas.roots:
            self._count_quota(path, -size, -1)
        w = self.watches
        if w.data.by_path or w.child.by_path:
            seen = w.trigger_data(path, EventType.NodeDeleted, fired)
            w.trigger_child(path, EventType.NodeDeleted, fired, skip=seen)
            w.trigger_child(parent_path, EventType.NodeChildrenChanged, fired)
        return Result()

    def _set_data(self, txn: Txn, t: SetDataTxn, fired: list[Fired]) -> Result:
        path = t.path
        rec = self.nodes.get(path)
        if rec is None:
            return Result(err=Err.NONODE)
        if self.view is not None:
            self._cow(path, rec)
        f = fields(rec)
        old_len = f[DATA_LENGTH]
        new_len = len(t.data) if t.data else 0
        self.data_size += new_len - old_len
        f[MZXID] = txn.zxid
        f[MTIME] = txn.time_ms
        f[VERSION] = t.version
        f[DATA_LENGTH] = new_len
        stat = STAT.pack(*f)
        self.nodes[path] = with_data(rec, stat, t.data)
        if self.quotas.roots:
            self._count_quota(path, new_len - old_len, 0)
        if self.watches.data.by_path:
            self.watches.trigger_data(path, EventType.NodeDataChanged, fired)
        return Result(stat=stat)

    def _set_acl(self, txn: Txn, t: SetACLTxn, fired: list[Fired]) -> Result:
        rec = self.nodes.get(t.path)
        if rec is None:
            return Result(err=Err.NONODE)
        self._cow(t.path, rec)
        f = fields(rec)
        f[AVERSION] = t.version
        stat = STAT.pack(*f)
        self.nodes[t.path] = record(stat, self.acl_id(t.acl), data_of(rec))
        return Result(stat=stat)

    def _check(self, txn: Txn, t: CheckVersionTxn, fired: list[Fired]) -> Result:
        return Result()

    def _error(self, txn: Txn, t: ErrorTxn, fired: list[Fired]) -> Result:
        return Result(err=t.err)

    def _create_session(self, txn: Txn, t: CreateSessionTxn, fired: list[Fired]) -> Result:
        self.sessions[txn.session_id] = t.timeout_ms
        return Result()

    def _close_session(self, txn: Txn, t: CloseSessionTxn, fired: list[Fired]) -> Result:
        # Delete what the close was prepared with, plus anything the session created after
        # (it cannot have: prep refuses a closing session's writes; this is belt and braces).
        paths = set(t.paths) | set(self.ephemerals.get(txn.session_id, ()))
        for path in sorted(paths):
            self._delete(txn, DeleteTxn(path), fired)
        self.ephemerals.pop(txn.session_id, None)
        self.sessions.pop(txn.session_id, None)
        return Result()

    # --- helpers ----------------------------------------------------------------------

    def _count_quota(self, path: str, bytes_diff: int, count_diff: int) -> None:
        """Charge a change to the deepest quota above ``path`` (updateQuotaStat).

        The stats node's data changes in place: no new version or mzxid, as in ZooKeeper.
        Callers skip the call when there are no quotas at all, the usual case on every write.
        """
        prefix = self.quotas.max_prefix(path)
        if prefix is None:
            return
        stats = self.nodes.get(stat_path(prefix))
        if stats is None:
            return
        usage = parse_stats(data_of(stats))
        usage[COUNT] = usage.get(COUNT, -1) + count_diff
        usage[BYTES] = usage.get(BYTES, -1) + bytes_diff
        self._set_quota_data(stat_path(prefix), stats, format_stats(usage))

    def _recount_quota(self, path: str) -> None:
        """Count a quota root's subtree into its stats node (updateQuotaForPath)."""
        count = size = 0
        for p in self._subtree(path):
            count += 1
            size += data_length(self.nodes[p])
        stats = self.nodes.get(stat_path(path))
        if stats is not None:
            usage = format_stats({COUNT: count, BYTES: size})
            self._set_quota_data(stat_path(path), stats, usage)

    def _set_quota_data(self, path: str, rec: bytes, data: bytes) -> None:
        self._cow(path, rec)
        f = fields(rec)
        f[DATA_LENGTH] = len(data)
        self.nodes[path] = record(STAT.pack(*f), acl_id_of(rec), data)

    def _setup_quotas(self) -> None:
        """After loading a snapshot: find every limits node, recount its root (setupQuota)."""
        for path in list(self._subtree(QUOTA)):
            if path.endswith("/" + LIMIT_NODE) and not self.num_children(path):
                root = path[len(QUOTA) : -len(LIMIT_NODE) - 1]
                self._recount_quota(root)
                self.quotas.add(root)

    def _subtree(self, top: str) -> Iterator[str]:
        """Every path under ``top``, itself included (quotas are a small corner)."""
        stack = [top] if top in self.nodes else []
        kids = self.kids
        while stack:
            path = stack.pop()
            yield path
            k = kids.get(path)
            if k is not None:
                stack.extend(k.names)

    def _track_owner(self, path: str, owner: int) -> None:
        """Index a new node by its kind: a session's ephemeral, a container, a TTL node."""
        if owner == 0:
            return
        if owner == CONTAINER_OWNER:
            self.containers[path] = None
        elif ttl_of(owner) is not None:
            self.ttls[path] = owner
        else:
            self.ephemerals.setdefault(owner, {})[path] = None

    def _untrack_owner(self, path: str, owner: int) -> None:
        if owner == 0:
            return
        if owner == CONTAINER_OWNER:
            self.containers.pop(path, None)
        elif ttl_of(owner) is not None:
            self.ttls.pop(path, None)
        else:
            paths = self.ephemerals.get(owner)
            if paths is not None:
                paths.pop(path, None)
                if not paths:
                    del self.ephemerals[owner]

    def acl_id(self, acl: AclList) -> int:
        """The id of an ACL list in the table, added if new (ReferenceCountedACLCache)."""
        aid = self._acl_ids.get(acl)
        if aid is None:
            aid = self._acl_ids[acl] = len(self.acls)
            self.acls.append(acl)
        return aid

    def _init_system_nodes(self) -> None:
        """ "/", "/zookeeper", its quota and config children, exactly as ZooKeeper has them."""
        # Children added without counting as creates: cversion reads -1 and -2 as in ZooKeeper.
        open_acl = self.acl_id(OPEN_ACL_UNSAFE)
        self.nodes["/"] = record(STAT.pack(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0), open_acl, b"")
        self.nodes[ZOOKEEPER] = record(STAT.pack(0, 0, 0, 0, 0, -2, 0, 0, 0, 2, 0), open_acl, b"")
        self.nodes[QUOTA] = record(STAT.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), open_acl, b"")
        config_stat = STAT.pack(0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0)
        self.nodes[CONFIG] = record(config_stat, self.acl_id(READ_ACL_UNSAFE), b"")
        self.kids["/"] = Kids(dict.fromkeys([ZOOKEEPER]))
        self.kids[ZOOKEEPER] = Kids(dict.fromkeys([QUOTA, CONFIG]))
        # approximate_data_size counts the system nodes' paths too (44 bytes in ZooKeeper).
        self.data_size = sum(len(path) for path in self.nodes)


_Apply = Callable[[DataTree, Txn, Any, list[Fired]], Result]
_APPLY: dict[type, _Apply] = {
    CreateTxn: DataTree._create,
    DeleteTxn: DataTree._delete,
    SetDataTxn: DataTree._set_data,
    SetACLTxn: DataTree._set_acl,
    CheckVersionTxn: DataTree._check,
    ErrorTxn: DataTree._error,
    CreateSessionTxn: DataTree._create_session,
    CloseSessionTxn: DataTree._close_session,
    MultiTxn: DataTree._apply_multi,  # only at the top: a multi's ops are never multis
}

# The opcode a multi sub-result reports for each txn kind.
_OP_OF = {
    CreateTxn: 1,
    DeleteTxn: 2,
    SetDataTxn: 5,
    SetACLTxn: 7,
    CheckVersionTxn: 13,
    ErrorTxn: -1,
}
