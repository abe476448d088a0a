"""The data tree: znodes, ephemerals by session, and the watches on them.

Theory of operation
-------------------
Mirrors ZooKeeper's ``DataTree``. Nodes live in one flat dict keyed by full path (as
ZooKeeper's NodeHashMap), each parent holding the names of its children.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyzk.jute.codes import Err, EventType
from pyzk.tree.node import (
    AVERSION,
    CONTAINER_OWNER,
    CVERSION,
    DATA_LENGTH,
    MTIME,
    MZXID,
    NUM_CHILDREN,
    PZXID,
    STAT,
    VERSION,
    Node,
    new_stat,
    ttl_of,
)
from pyzk.tree.paths import join, split
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


@dataclass(slots=True)
class Applied:
    """The outcome of :meth:`DataTree.apply`."""

    result: Result
    fired: list[Fired] = field(default_factory=list)


class DataTree:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        # session id -> its ephemeral paths, in creation order (getEphemerals shows it)
        self.ephemerals: dict[int, dict[str, None]] = {}
        self.sessions: dict[int, int] = {}  # live session id -> timeout (ms): durable state
        # Containers and TTL nodes, for the reaper (DataTree.getContainers / getTtls).
        self.containers: dict[str, None] = {}
        self.ttls: dict[str, None] = {}
        self.quotas = QuotaIndex()  # paths with a quota (their zookeeper_limits exists)
        self.watches = WatchManager()
        self.last_zxid = 0  # the last zxid applied (ZooKeeper's lastProcessedZxid)
        self.data_size = 0  # sum of path and data lengths ("approximate_data_size")
        self._acl_cache: dict[AclList, AclList] = {}
        self.view: SnapshotView | None = None  # a snapshot being written, if any
        self._init_system_nodes()

    # --- reads ------------------------------------------------------------------------

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def begin_snapshot(self) -> SnapshotView:
        """A consistent view at the current zxid (one at a time)."""
        from pyzk.tree.snapshot_view import SnapshotView

        assert self.view is None, "a snapshot is already being taken"
        self.view = SnapshotView(self)
        return self.view

    def set_config(self, data: bytes) -> None:
        """Publish the membership in /zookeeper/config (each server writes its own view,
        outside the txn log, as ZooKeeper's QuorumPeer does)."""
        node = self.nodes[CONFIG]
        f = node.fields()
        self.data_size += len(data) - f[DATA_LENGTH]
        f[DATA_LENGTH] = len(data)
        node.stat = STAT.pack(*f)
        node.data = data

    def replace_contents(self, other: DataTree) -> None:
        """Become ``other`` (a state reloaded or received whole), keeping our watches."""
        if self.view is not None:
            self.view.aborted = True
            self.view = None
        config = self.nodes[CONFIG].data
        self.nodes, self.ephemerals, self.sessions = other.nodes, other.ephemerals, other.sessions
        self.last_zxid, self.data_size = other.last_zxid, other.data_size
        self.containers, self.ttls, self.quotas = other.containers, other.ttls, other.quotas
        self._acl_cache = other._acl_cache
        if config:
            self.set_config(config)  # membership is this server's, not the leader's state

    def _cow(self, path: str, node: Node) -> None:
        """Keep a node's fields for the snapshot being written before changing them."""
        view = self.view
        if view is not None and path not in view.preserved:
            view.preserved[path] = (node.data, node.stat, node.acl, node.owner)

    def _cow_parent(self, path: str, node: Node) -> None:
        """As :meth:`_cow`, before a child is added or removed: the children too."""
        view = self.view
        if view is not None:
            if path not in view.preserved:
                view.preserved[path] = (node.data, node.stat, node.acl, node.owner)
            if path not in view.children:
                view.children[path] = (dict(node.children or {}), node.capacity)

    def descendant_count(self, path: str) -> int:
        """Nodes below ``path`` at any depth (DataTree.getAllChildrenNumber).

        ZooKeeper counts the keys of its node map that start with ``path + "/"``; the map
        also holds the root under "", so for "" it counts every node, the root included.
        """
        if not path:
            return len(self.nodes)
        if path == "/":
            return len(self.nodes) - 1
        count, stack = 0, [path]
        while stack:
            p = stack.pop()
            node = self.nodes.get(p)
            if node is not None and node.children:
                count += len(node.children)
                stack.extend(p + "/" + c for c in node.children)
        return count

    def reap_candidates(self, wall_ms: int, max_never_used_ms: int = 0) -> list[str]:
        """Containers and TTL nodes due for deletion (ContainerManager.getCandidates).

        A container goes once it is empty and has ever had a child (its create count is
        above 0), or, with ``max_never_used_ms``, once it sat unused that long. A TTL node
        goes once it is empty and unmodified for longer than its TTL (by its mtime).
        """
        out: list[str] = []
        for path in self.containers:
            node = self.nodes.get(path)
            if node is None or node.children:
                continue
            f = node.fields()
            if node.creates() > 0 or (max_never_used_ms and wall_ms - f[MTIME] > max_never_used_ms):
                out.append(path)
        for path in self.ttls:
            node = self.nodes.get(path)
            if node is None or node.children:
                continue
            ttl = ttl_of(node.owner)
            if ttl and wall_ms - node.fields()[MTIME] > ttl:
                out.append(path)
        return out

    def node_count(self) -> int:
        return len(self.nodes)

    def ephemeral_count(self) -> int:
        return sum(len(p) for p in self.ephemerals.values())

    # --- the one mutator --------------------------------------------------------------

    def apply(self, txn: Txn) -> Applied:
        """Apply a txn prepared for this tree; see the module docstring."""
        out = Applied(Result())
        body = txn.body
        if isinstance(body, MultiTxn):
            out.result = self._apply_multi(txn, body, out.fired)
        else:
            out.result = self._apply_one(txn, body, out.fired)
        if txn.zxid > self.last_zxid:
            self.last_zxid = txn.zxid
        return out

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
        path = t.path
        if path in self.nodes:
            return Result(err=Err.NODEEXISTS)
        parent_path, name = split(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            return Result(err=Err.NONODE)
        zxid = txn.zxid
        self._cow_parent(parent_path, parent)
        node = Node(
            t.data, new_stat(zxid, txn.time_ms, t.data, t.owner), self._intern(t.acl), t.owner
        )
        self.nodes[path] = node
        parent.add_child(name)
        f = parent.fields()
        creates = (f[CVERSION] + f[NUM_CHILDREN]) // 2
        if t.parent_cversion > creates:
            creates = t.parent_cversion
            f[PZXID] = zxid
        f[NUM_CHILDREN] = parent.num_children
        f[CVERSION] = 2 * creates - f[NUM_CHILDREN]
        parent.stat = STAT.pack(*f)
        self._track_owner(path, t.owner)
        self.data_size += len(path) + (len(t.data) if t.data else 0)
        created = node.stat  # the reply's Stat is taken before any quota bookkeeping
        if parent_path.startswith(QUOTA):
            if name == LIMIT_NODE:
                self.quotas.add(parent_path[len(QUOTA) :])
            elif name == STAT_NODE:
                self._recount_quota(parent_path[len(QUOTA) :])
        self._count_quota(path, len(t.data) if t.data else 0, 1)
        w = self.watches
        w.trigger_data(path, EventType.NodeCreated, fired)
        w.trigger_child(parent_path, EventType.NodeChildrenChanged, fired)
        return Result(path=path, stat=created)

    def _delete(self, txn: Txn, t: DeleteTxn, fired: list[Fired]) -> Result:
        path = t.path
        node = self.nodes.get(path)
        if node is None:
            return Result(err=Err.NONODE)
        parent_path, name = split(path)
        parent = self.nodes[parent_path]
        self._cow(path, node)
        self._cow_parent(parent_path, parent)
        del self.nodes[path]
        f = parent.fields()
        creates = (f[CVERSION] + f[NUM_CHILDREN]) // 2
        assert parent.children is not None
        parent.children.pop(name, None)
        f[NUM_CHILDREN] = len(parent.children)
        f[CVERSION] = 2 * creates - f[NUM_CHILDREN]
        if txn.zxid > f[PZXID]:
            f[PZXID] = txn.zxid
        parent.stat = STAT.pack(*f)
        self._untrack_owner(path, node.owner)
        self.data_size -= len(path) + (len(node.data) if node.data else 0)
        if parent_path.startswith(ZOOKEEPER) and name == LIMIT_NODE:
            self.quotas.remove(parent_path[len(QUOTA) :])
        self._count_quota(path, -(len(node.data) if node.data else 0), -1)
        w = self.watches
        seen = w.trigger_data(path, EventType.NodeDeleted, fired)
        w.trigger_child(path, EventType.NodeDeleted, fired, skip=seen)
        w.trigger_child(parent_path, EventType.NodeChildrenChanged, fired)
        return Result()

    def _set_data(self, txn: Txn, t: SetDataTxn, fired: list[Fired]) -> Result:
        node = self.nodes.get(t.path)
        if node is None:
            return Result(err=Err.NONODE)
        self._cow(t.path, node)
        f = node.fields()
        self.data_size += (len(t.data) if t.data else 0) - f[DATA_LENGTH]
        f[MZXID] = txn.zxid
        f[MTIME] = txn.time_ms
        f[VERSION] = t.version
        old_len = f[DATA_LENGTH]
        f[DATA_LENGTH] = len(t.data) if t.data else 0
        node.stat = STAT.pack(*f)
        node.data = t.data
        self._count_quota(t.path, f[DATA_LENGTH] - old_len, 0)
        self.watches.trigger_data(t.path, EventType.NodeDataChanged, fired)
        return Result(stat=node.stat)

    def _set_acl(self, txn: Txn, t: SetACLTxn, fired: list[Fired]) -> Result:
        node = self.nodes.get(t.path)
        if node is None:
            return Result(err=Err.NONODE)
        self._cow(t.path, node)
        f = node.fields()
        f[AVERSION] = t.version
        node.stat = STAT.pack(*f)
        node.acl = self._intern(t.acl)
        return Result(stat=node.stat)

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

    # --- loading a snapshot ------------------------------------------------------------

    # --- helpers ----------------------------------------------------------------------

    def _count_quota(self, path: str, bytes_diff: int, count_diff: int) -> None:
        """Charge a change to the deepest quota above ``path`` (updateQuotaStat).

        The stats node's data changes in place: no new version or mzxid, as in ZooKeeper.
        """
        prefix = self.quotas.max_prefix(path)
        if prefix is None:
            return
        stats = self.nodes.get(stat_path(prefix))
        if stats is None:
            return
        usage = parse_stats(stats.data)
        usage[COUNT] = usage.get(COUNT, -1) + count_diff
        usage[BYTES] = usage.get(BYTES, -1) + bytes_diff
        self._set_quota_data(stat_path(prefix), stats, format_stats(usage))

    def _recount_quota(self, path: str) -> None:
        """Count a quota root's subtree into its stats node (updateQuotaForPath)."""
        count = size = 0
        stack = [path] if path in self.nodes else []
        while stack:
            p = stack.pop()
            node = self.nodes[p]
            count += 1
            size += len(node.data) if node.data else 0
            stack.extend(p.rstrip("/") + "/" + c for c in node.children or ())
        stats = self.nodes.get(stat_path(path))
        if stats is not None:
            usage = format_stats({COUNT: count, BYTES: size})
            self._set_quota_data(stat_path(path), stats, usage)

    def _set_quota_data(self, path: str, node: Node, data: bytes) -> None:
        self._cow(path, node)
        f = node.fields()
        f[DATA_LENGTH] = len(data)
        node.stat = STAT.pack(*f)
        node.data = data

    def _setup_quotas(self) -> None:
        """After loading a snapshot: find every limits node, recount its root (setupQuota)."""
        for path in self._subtree(QUOTA):
            if path.endswith("/" + LIMIT_NODE):
                node = self.nodes[path]
                if not node.children:
                    root = path[len(QUOTA) : -len(LIMIT_NODE) - 1]
                    self._recount_quota(root)
                    self.quotas.add(root)

    def _subtree(self, top: str) -> Iterator[str]:
        """Every path under ``top`` (not the whole tree: quotas are a small corner)."""
        stack = [top]
        while stack:
            path = stack.pop()
            node = self.nodes.get(path)
            if node is None:
                continue
            yield path
            stack.extend(join(path, name) for name in node.children or ())

    def _track_owner(self, path: str, owner: int) -> None:
        """Index a new node by its kind: a session's ephemeral, a container, a TTL node."""
        if owner == 0:
            return
        if owner == CONTAINER_OWNER:
            self.containers[path] = None
        elif ttl_of(owner) is not None:
            self.ttls[path] = None
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

    def _intern(self, acl: AclList) -> AclList:
        """Share one tuple per distinct ACL list (ZooKeeper's ReferenceCountedACLCache)."""
        return self._acl_cache.setdefault(acl, acl)

    def _init_system_nodes(self) -> None:
        """ "/", "/zookeeper", its quota and config children, exactly as ZooKeeper has them."""
        empty = STAT.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        for path in ("/", ZOOKEEPER, QUOTA):
            self.nodes[path] = Node(b"", empty, self._intern(OPEN_ACL_UNSAFE))
        self.nodes[CONFIG] = Node(
            b"", STAT.pack(0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0), self._intern(READ_ACL_UNSAFE)
        )
        # Children added without counting as creates: cversion reads -1 and -2 as in ZooKeeper.
        self.nodes["/"].add_child("zookeeper")
        self.nodes[ZOOKEEPER].add_child("quota")
        self.nodes[ZOOKEEPER].add_child("config")
        self.nodes["/"].stat = STAT.pack(0, 0, 0, 0, 0, -1, 0, 0, 0, 1, 0)
        self.nodes[ZOOKEEPER].stat = STAT.pack(0, 0, 0, 0, 0, -2, 0, 0, 0, 2, 0)
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
