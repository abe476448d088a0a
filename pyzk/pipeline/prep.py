"""The prepare stage: a write request becomes a transaction (ZooKeeper's PrepRequestProcessor).

Theory of operation
-------------------
Prepare validates a write against the state the tree *will* have once every transaction
already prepared is applied, because those may still be on their way to disk. That
future state is the tree overlaid with :class:`Pending` records, one per path touched by
a prepared but not yet applied txn (ZooKeeper's ``outstandingChanges``). A record is
dropped once its txn is applied (:meth:`Prep.applied`).

Every write consumes a zxid, including one that fails: the failure becomes an ErrorTxn
that is logged and applied like any other, exactly as ZooKeeper does, so zxids (and the
czxid/mzxid clients see) match the reference server's.

The checks run in ZooKeeper's order, which decides the error code when several apply
(e.g. a missing parent is NONODE before a bad path is BADARGUMENTS for a create).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pyzk.jute import records as r
from pyzk.jute.codes import CreateMode, Err, OpCode, Perms
from pyzk.pipeline.acl import AuthInfo, fixup_acl
from pyzk.pipeline.errors import KeeperError
from pyzk.tree.datatree import CONFIG, QUOTA, ZOOKEEPER, DataTree
from pyzk.tree.node import CONTAINER_OWNER, STAT, data_of, is_session_owner, ttl_owner
from pyzk.tree.paths import parent_of, path_error
from pyzk.tree.quota import exceeded, limit_path, parse_stats, stat_path
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

# Nodes no client may delete (DataTree.isSpecialPath).
SPECIAL_PATHS = frozenset({"/", ZOOKEEPER, QUOTA, CONFIG})

_STAT_AT = STAT.unpack_from
_CREATES = (r.CreateRequest, r.CreateTTLRequest)  # a tuple: "A | B" builds a Union per call
# flags -> (sequential, ephemeral, TTL): a dict and a tuple, not the enum's own lookup
# and properties, on every create.
_MODES = {m.value: (m.is_sequential, m.is_ephemeral, m.is_ttl) for m in CreateMode}


@dataclass(slots=True)
class Pending:
    """A node as it will be once the prepared txns are applied (ZooKeeper's ChangeRecord).

    ``exists`` False records a pending delete.
    """

    zxid: int
    path: str
    exists: bool
    version: int = 0
    aversion: int = 0
    creates: int = 0  # children ever created: names the next sequential child
    num_children: int = 0
    owner: int = 0  # raw ephemeralOwner
    acl: AclList = ()
    data_length: int = 0  # bytes of data (quota checks of setData)

    def changed(self, zxid: int) -> Pending:
        """A copy for the txn ``zxid``; the caller then sets what its txn changes."""
        return Pending(
            zxid,
            self.path,
            self.exists,
            self.version,
            self.aversion,
            self.creates,
            self.num_children,
            self.owner,
            self.acl,
            self.data_length,
        )


class Prep:
    """Turns write requests into txns against the tree plus pending changes."""

    def __init__(
        self, tree: DataTree, extended_types: bool = False, enforce_quota: bool = False
    ) -> None:
        self.tree = tree
        self.extended_types = extended_types  # zookeeper.extendedTypesEnabled (TTL nodes)
        self.enforce_quota = enforce_quota  # zookeeper.enforceQuota: hard limits fail writes
        self.next_zxid = tree.last_zxid + 1
        self._pending: dict[str, Pending] = {}
        self._order: deque[Pending] = deque()
        # Sessions that may write: created (perhaps not yet applied) and not closing.
        self.live: set[int] = set(tree.sessions)
        # Sessions whose close is prepared: their further writes fail (SessionTracker).
        self.closing: set[int] = set()
        self._auth: AuthInfo | None = None  # the ids of the request being prepared
        # reconfigEnabled: off, so reconfig answers RECONFIGDISABLED as a standalone
        # ZooKeeper does; the ensemble turns it on and adds the handler.
        self.reconfig_enabled = False

    # --- the pending view -------------------------------------------------------------

    def record(self, path: str) -> Pending:
        """The future state of ``path``; NONODE when it does not (or will not) exist."""
        rec = self._pending.get(path)
        if rec is None:
            tree = self.tree
            node = tree.nodes.get(path)
            if node is None:
                raise KeeperError(Err.NONODE, path)
            f = _STAT_AT(node)
            n = f[9]
            owner = f[7]
            if not owner and (tree.containers or tree.ttls):
                owner = tree.hidden_owner(path)
            rec = Pending(
                -1, path, True, f[4], f[6], (f[5] + n) // 2, n, owner, tree.acl_of(node), f[8]
            )
        elif not rec.exists:
            raise KeeperError(Err.NONODE, path)
        return rec

    def _exists(self, path: str) -> bool:
        rec = self._pending.get(path)
        if rec is not None:
            return rec.exists
        return path in self.tree.nodes

    def _shrink(self, parent: Pending, zxid: int) -> None:
        """The parent of a node the txn ``zxid`` deletes."""
        shrunk = parent.changed(zxid)
        shrunk.num_children -= 1
        self._add(shrunk)

    def _add(self, rec: Pending) -> None:
        self._pending[rec.path] = rec
        self._order.append(rec)

    def applied(self, zxid: int) -> None:
        """Forget pending records of txns up to ``zxid``: the tree now shows them."""
        order, pending = self._order, self._pending
        while order and order[0].zxid <= zxid:
            rec = order.popleft()
            if pending.get(rec.path) is rec:
                del pending[rec.path]

    def pending_count(self) -> int:
        return len(self._order)

    # --- entry points -----------------------------------------------------------------

    def write(
        self,
        session_id: int,
        cxid: int,
        op: int,
        req: object,
        time_ms: int,
        auth: AuthInfo | None = None,
    ) -> Txn:
        """Prepare one write request; a failure becomes an ErrorTxn with its own zxid.

        ``auth`` is the requesting connection's ids; None for the server's own requests
        (container deletion), which ZooKeeper does not check against ACLs either.
        """
        zxid = self._take_zxid()
        self._auth = auth
        try:
            if op == OpCode.multi:
                assert isinstance(req, list)
                body: TxnBody = self._multi(session_id, zxid, req, time_ms)
            else:
                body = self._one(session_id, zxid, op, req, time_ms)
        except KeeperError as e:
            body = ErrorTxn(e.code)
        finally:
            self._auth = None
        return Txn(session_id, cxid, zxid, time_ms, body)

    def error(self, session_id: int, cxid: int, err: int, time_ms: int) -> Txn:
        """A write that failed before it could be prepared (e.g. an undecodable body)."""
        return Txn(session_id, cxid, self._take_zxid(), time_ms, ErrorTxn(err))

    def create_session(self, session_id: int, timeout_ms: int, time_ms: int) -> Txn:
        self.live.add(session_id)
        return Txn(session_id, 0, self._take_zxid(), time_ms, CreateSessionTxn(timeout_ms))

    def close_session(self, session_id: int, cxid: int, time_ms: int) -> Txn:
        """Prepare a session's close: it takes its ephemerals, pending creates included."""
        zxid = self._take_zxid()
        paths = set(self.tree.ephemerals.get(session_id, ()))
        for rec in self._order:
            if not rec.exists:
                paths.discard(rec.path)
            elif rec.owner == session_id:
                paths.add(rec.path)
        for path in sorted(paths):
            self._delete_record(zxid, path)
        self.closing.add(session_id)
        self.live.discard(session_id)
        return Txn(session_id, cxid, zxid, time_ms, CloseSessionTxn(tuple(sorted(paths))))

    def reset(self) -> None:
        """Forget everything prepared but not applied: the log refused it (disk trouble).

        zxids restart after the last applied one; the refused txns never happened.
        """
        self._pending.clear()
        self._order.clear()
        self.next_zxid = self.tree.last_zxid + 1
        self.live = set(self.tree.sessions)
        self.closing.clear()

    def session_closed(self, session_id: int) -> None:
        """The close of a session is applied: it is gone for good."""
        self.closing.discard(session_id)
        self.live.discard(session_id)

    def _take_zxid(self) -> int:
        zxid = self.next_zxid
        self.next_zxid += 1
        return zxid

    # --- one op -----------------------------------------------------------------------

    def _one(self, sid: int, zxid: int, op: int, req: object, time_ms: int) -> TxnBody:
        if op == OpCode.reconfig and not self.reconfig_enabled:
            raise KeeperError(Err.RECONFIGDISABLED)  # checked before anything else
        if sid not in self.live and op != OpCode.deleteContainer:
            raise KeeperError(Err.SESSIONEXPIRED)  # (the reaper's deletes have no session)
        handler = _HANDLERS.get(op)
        if handler is None:
            raise KeeperError(Err.UNIMPLEMENTED)
        return handler(self, sid, zxid, op, req, time_ms)

    def _create(self, sid: int, zxid: int, op: int, req: object, time_ms: int) -> TxnBody:
        assert isinstance(req, _CREATES)
        mode = _MODES.get(req.flags)
        if mode is None:
            raise KeeperError(Err.BADARGUMENTS, req.path)
        sequential, ephemeral, ttl_mode = mode
        ttl = req.ttl if isinstance(req, r.CreateTTLRequest) else -1
        if ttl_mode or op == OpCode.createTTL:
            self._validate_ttl(op, ttl_mode, ttl, req.path)
        path = req.path
        slash = path.rfind("/")
        if slash == -1 or "\0" in path:
            raise KeeperError(Err.BADARGUMENTS, path)
        parent_path = path[:slash] or "/"
        acl = self._fixup_acl(req.acl, path)
        parent = self.record(parent_path)
        self._check_acl(parent.acl, Perms.CREATE)
        if sequential:
            path = f"{path}{parent.creates:010d}"
        if path_error(path) is not None:
            raise KeeperError(Err.BADARGUMENTS, path)
        if self._exists(path):
            raise KeeperError(Err.NODEEXISTS, path)
        if is_session_owner(parent.owner):
            raise KeeperError(Err.NOCHILDRENFOREPHEMERALS, path)
        data_len = len(req.data) if req.data else 0
        self._check_quota(path, data_len, 1)
        owner = self._owner_for(op, ephemeral, sid, ttl)
        creates = parent.creates + 1
        grown = parent.changed(zxid)
        grown.creates, grown.num_children = creates, parent.num_children + 1
        self._add(grown)
        self._add(Pending(zxid, path, True, owner=owner, acl=acl, data_length=data_len))
        return CreateTxn(path, req.data, acl, owner, creates)

    def _validate_ttl(self, op: int, ttl_mode: bool, ttl: int, path: str) -> None:
        if op == OpCode.createTTL and not ttl_mode:
            raise KeeperError(Err.BADARGUMENTS, path)
        if ttl_mode:
            if not self.extended_types:
                raise KeeperError(Err.UNIMPLEMENTED, path)
            if not 0 < ttl <= (1 << 40) - 1:
                raise KeeperError(Err.BADARGUMENTS, path)

    @staticmethod
    def _owner_for(op: int, ephemeral: bool, sid: int, ttl: int) -> int:
        """The new node's raw ephemeralOwner, as ZooKeeper's txn for ``op`` records it.

        The opcode decides, not the flags: createContainer (19) makes a container even
        with flags 0, and create/create2 with the CONTAINER flag make a plain persistent
        node, because their CreateTxn only says "ephemeral or not" (DataTree.processTxn).
        """
        if op == OpCode.createContainer:
            return CONTAINER_OWNER
        if op == OpCode.createTTL:
            return ttl_owner(ttl)
        return sid if ephemeral else 0

    def _fixup_acl(self, acl: list[r.ACL], path: str) -> AclList:
        if len(acl) == 1:  # the usual world:anyone ACL, which fixup_acl keeps as it is
            perms, ident = acl[0].perms, acl[0].id
            if ident.scheme == "world" and ident.id == "anyone":
                return ((perms, "world", "anyone"),)
        return fixup_acl([(a.perms, a.id.scheme, a.id.id) for a in acl], self._auth)

    def _check_acl(self, acl: AclList, perm: int) -> None:
        """NOAUTH unless the requester may ``perm`` (the server's own requests may)."""
        auth = self._auth
        if auth is not None and not auth.allows(acl, perm):
            raise KeeperError(Err.NOAUTH)

    def _delete(self, sid: int, zxid: int, op: int, req: object, time_ms: int) -> TxnBody:
        assert isinstance(req, r.DeleteRequest)
        path = req.path
        # ZooKeeper checks only for a slash, a NUL and the system nodes here (no full
        # path validation): "/a//b" is NONODE, not BADARGUMENTS.
        slash = path.rfind("/")
        if slash == -1 or "\0" in path or path in SPECIAL_PATHS:
            raise KeeperError(Err.BADARGUMENTS, path)
        parent = self.record(path[:slash] or "/")
        self._check_acl(parent.acl, Perms.DELETE)
        node = self.record(path)
        self._check_version(node.version, req.version, path)
        if node.num_children > 0:
            raise KeeperError(Err.NOTEMPTY, path)
        self._shrink(parent, zxid)
        self._add(Pending(zxid, path, False))
        return DeleteTxn(path)

    def _delete_container(self, sid: int, zxid: int, op: int, req: object, time_ms: int) -> TxnBody:
        """The reaper's delete of an empty container or an expired TTL node.

        No ACL or version check; NOTEMPTY if a child appeared meanwhile and BADVERSION
        if the path is now a plain ephemeral node (PrepRequestProcessor, deleteContainer).
        """
        assert isinstance(req, r.PathRequest)
        path = req.path
        slash = path.rfind("/")
        if slash == -1 or "\0" in path or path in SPECIAL_PATHS:
            raise KeeperError(Err.BADARGUMENTS, path)
        node = self.record(path)
        if node.num_children > 0:
            raise KeeperError(Err.NOTEMPTY, path)
        if is_session_owner(node.owner):
            raise KeeperError(Err.BADVERSION, path)
        parent = self.record(path[:slash] or "/")
        self._shrink(parent, zxid)
        self._add(Pending(zxid, path, False))
        return DeleteTxn(path)

    def _delete_record(self, zxid: int, path: str) -> None:
        parent = self.record(parent_of(path))
        self._shrink(parent, zxid)
        self._add(Pending(zxid, path, False))

    def _set_data(self, sid: int, zxid: int, op: int, req: object, time_ms: int) -> TxnBody:
        assert isinstance(req, r.SetDataRequest)
        path = req.path
        if path_error(path) is not None:
            raise KeeperError(Err.BADARGUMENTS, path)
        node = self.record(path)
        self._check_acl(node.acl, Perms.WRITE)
        new_len = len(req.data) if req.data else 0
        self._check_quota(path, new_len - node.data_length, 0)
        version = self._check_version(node.version, req.version, path)
        new = node.changed(zxid)
        new.version, new.data_length = version, new_len
        self._add(new)
        return SetDataTxn(path, req.data, version)

    def _set_acl(self, sid: int, zxid: int, op: int, req: object, time_ms: int) -> TxnBody:
        assert isinstance(req, r.SetACLRequest)
        path = req.path
        if path_error(path) is not None:
            raise KeeperError(Err.BADARGUMENTS, path)
        acl = self._fixup_acl(req.acl, path)
        node = self.record(path)
        self._check_acl(node.acl, Perms.ADMIN)
        version = self._check_version(node.aversion, req.version, path)
        new = node.changed(zxid)
        new.aversion, new.acl = version, acl
        self._add(new)
        return SetACLTxn(path, acl, version)

    def _check(self, sid: int, zxid: int, op: int, req: object, time_ms: int) -> TxnBody:
        assert isinstance(req, r.CheckVersionRequest)
        path = req.path
        if path_error(path) is not None:
            raise KeeperError(Err.BADARGUMENTS, path)
        node = self.record(path)
        self._check_acl(node.acl, Perms.READ)
        return CheckVersionTxn(path, self._check_version(node.version, req.version, path))

    def _check_quota(self, path: str, bytes_diff: int, count_diff: int) -> None:
        """QUOTAEXCEEDED if the change takes a quota root past a hard limit.

        As ZooKeeper, this reads the applied tree's limits and usage, not pending ones.
        """
        if not self.enforce_quota:
            return
        prefix = self.tree.quotas.max_prefix(path)
        if prefix is None:
            return
        limits = self.tree.get(limit_path(prefix))
        usage = self.tree.get(stat_path(prefix))
        if limits is None or usage is None:
            return
        limit, used = parse_stats(data_of(limits)), parse_stats(data_of(usage))
        if exceeded(limit, used, count_diff, bytes_diff):
            raise KeeperError(Err.QUOTAEXCEEDED, prefix)

    @staticmethod
    def _check_version(current: int, expected: int, path: str) -> int:
        if expected != -1 and expected != current:
            raise KeeperError(Err.BADVERSION, path)
        return current + 1

    # --- multi ------------------------------------------------------------------------

    def _multi(self, sid: int, zxid: int, ops: list[tuple[int, object]], time_ms: int) -> MultiTxn:
        """All ops or none: after the first failure the rest are not even tried."""
        mark = len(self._order)
        saved = dict(self._pending)
        bodies: list[TxnBody] = []
        failed = False
        for op, req in ops:
            if failed:
                bodies.append(ErrorTxn(Err.RUNTIMEINCONSISTENCY))
                continue
            try:
                bodies.append(self._one(sid, zxid, op, req, time_ms))
            except KeeperError as e:
                bodies.append(ErrorTxn(e.code))
                failed = True
                # Roll back the records this multi added (rollbackPendingChanges).
                while len(self._order) > mark:
                    self._order.pop()
                self._pending = saved
        return MultiTxn(tuple(bodies))


_Handler = Callable[[Prep, int, int, int, object, int], TxnBody]
_HANDLERS: dict[int, _Handler] = {
    OpCode.create: Prep._create,
    OpCode.create2: Prep._create,
    OpCode.createContainer: Prep._create,
    OpCode.createTTL: Prep._create,
    OpCode.delete: Prep._delete,
    OpCode.deleteContainer: Prep._delete_container,
    OpCode.setData: Prep._set_data,
    OpCode.setACL: Prep._set_acl,
    OpCode.check: Prep._check,
}
