"""The request pipeline of an ensemble member: leader, follower or observer, without I/O.

Theory of operation
-------------------
ZooKeeper builds different processor chains from the same stages for each role; so do
we, by role:

* **Leader**: writes are prepared here, from local clients and from learners alike (a
  forwarded request is prepared exactly as a local one), and go to ``to_log``, which the
  shell hands to ZAB as proposals (the txn's zxid is the proposal's). The leader expires
  sessions: learners report the sessions they hear from (``Touch``).
* **Follower / observer**: writes, createSession and closeSession are *forwarded* to the
  leader (``to_forward``) and answered when the committed txn comes back through ZAB:
  it is matched to the waiting request by (session id, cxid). Reads are answered from
  the local tree; ``sync`` goes to the leader, whose answer arrives after every commit
  that preceded it, so the reads after it see all of them.

A sync, the leader's own clients' included, is answered only once the leader has made
sure it still leads (a leadership round, see :mod:`pyzk.zab.leader`): the shell starts a
round for the syncs in ``unconfirmed`` and reports when a quorum answered it. A deposed
leader that has not noticed yet cannot answer a sync with its stale state.

Sessions are global: any member can take a client back with its session id and password
(the password is derived from the id, as in ZooKeeper) as long as the session is in the
replicated tree.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable

from pyzk.ensemble.messages import AppMessage, Forward, SyncDone, SyncRequest, Touch
from pyzk.jute import records as r
from pyzk.jute.codes import WRITE_OPS, Err, OpCode
from pyzk.pipeline.acl import AuthInfo
from pyzk.pipeline.connection import ClientConnection
from pyzk.pipeline.processor import _BAD_REQUEST, InFlight, Processor, session_password
from pyzk.pipeline.reads import path_only
from pyzk.pipeline.requests import decode_write
from pyzk.pipeline.wire import reply
from pyzk.tree.txn import CreateSessionTxn, Txn

log = logging.getLogger(__name__)

_TIMEOUT = struct.Struct(">i")
_SESSION_KEY = -(1 << 40)  # stands for the cxid of a createSession (not a real cxid)
SELF = 0  # the "learner" of a sync from the leader's own client (server ids are >= 1)
AUTH_CACHE = 1024  # distinct id sets of forwarded writes kept (clients rarely differ)

LEADER = "leader"
FOLLOWER = "follower"
OBSERVER = "observer"
LOOKING = "looking"
READ_ONLY = "read-only"

# What a read-only server refuses with NOTREADONLY (ReadOnlyRequestProcessor).
_NOT_IN_READ_ONLY = (WRITE_OPS - {OpCode.createSession, OpCode.closeSession}) | {OpCode.sync}


class EnsembleProcessor(Processor):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.role = LOOKING
        self.to_forward: list[AppMessage] = []
        self.replies: list[tuple[int, AppMessage]] = []  # leader -> learner answers
        self._forwarded: dict[tuple[int, int], InFlight] = {}
        self.touched: dict[int, int] = {}  # session -> timeout, heard from since last Touch
        self._syncs: list[tuple[int, int, SyncDone]] = []  # (zxid to reach, learner, answer)
        # Leader: syncs waiting for a leadership round to start, then to be confirmed.
        self.unconfirmed: list[tuple[int, SyncRequest]] = []  # (learner or SELF, request)
        self._confirming: deque[tuple[tuple[int, int], int, SyncRequest]] = deque()
        # Leader: forwarded writes' ids, built once per distinct set (a hash per id).
        self._auths: dict[tuple[tuple[str, str], ...], AuthInfo] = {}

    # --- roles ------------------------------------------------------------------------

    def become(self, role: str, next_zxid: int = 0) -> None:
        """Serve as ``role``; ``next_zxid`` is a new leader's first zxid."""
        self.role = role
        self.read_only = role == READ_ONLY
        self.clear_pending()
        if role == LEADER:
            self.prep.reset()
            self.prep.next_zxid = next_zxid
            self.sessions.timeouts.clear()
            self.restore_sessions()

    def clear_pending(self) -> None:
        """Forget requests in flight: the role that would have answered them is gone."""
        self._inflight.clear()
        self._forwarded.clear()
        self.to_log.clear()
        self.to_forward.clear()
        self.replies.clear()
        self._syncs.clear()
        self.unconfirmed.clear()
        self._confirming.clear()
        self.prep.reset()

    @property
    def forwarding(self) -> bool:
        return self.role in (FOLLOWER, OBSERVER)

    # --- client side ------------------------------------------------------------------

    def connect(self, conn: ClientConnection, req: r.ConnectRequest) -> None:
        if self.read_only and not conn.readonly_flag:
            # Only clients that accept a read-only server may connect (isOldClient, not ro).
            log.info("refusing session for %s: not a read-only client", conn.peer)
            self._close(conn)
            return
        super().connect(conn, req)

    def request(self, conn: ClientConnection, xid: int, op: int, frame: bytes) -> None:
        if self.read_only and not conn.closing:
            if op in _NOT_IN_READ_ONLY:
                self._send(conn, reply(xid, self.tree.last_zxid, Err.NOTREADONLY))
                return
            if op == OpCode.closeSession:
                self._send(conn, reply(xid, self.tree.last_zxid, 0))
                self.sessions.remove(conn.session_id)
                self._close(conn)
                return
        if self.forwarding and not conn.closing:
            self.touched[conn.session_id] = conn.timeout_ms
            if op == OpCode.sync:
                self._forward_sync(conn, xid, frame)
                return
        if self.role == LEADER and op == OpCode.sync and not conn.closing:
            held = self._hold_sync(conn, xid, frame)
            if held is not None:
                self.unconfirmed.append((SELF, held))
            return
        super().request(conn, xid, op, frame)

    def tick(self) -> None:
        if self.role == LEADER:
            super().tick()  # only the leader expires sessions

    def check_containers(self, interval_ms: int) -> int:
        if self.role != LEADER:
            return 0  # only the leader reaps containers and TTL nodes
        return super().check_containers(interval_ms)

    def _prepare(self, conn: ClientConnection, xid: int, op: int, frame: bytes) -> None:
        if not self.forwarding:
            super()._prepare(conn, xid, op, frame)
            return
        sub_ops = None
        if op == OpCode.multi:
            try:
                req = decode_write(op, frame)
                sub_ops = [o for o, _ in req] if isinstance(req, list) else None
            except _BAD_REQUEST:
                pass
        self._forward(conn, xid, op, frame if op != OpCode.closeSession else b"", sub_ops)

    def _forward(
        self,
        conn: ClientConnection,
        xid: int,
        op: int,
        body: bytes,
        sub_ops: list[int] | None = None,
    ) -> None:
        sid = conn.session_id
        key = (sid, _SESSION_KEY if op == OpCode.createSession else xid)
        self._forwarded[key] = InFlight(conn, xid, op, sub_ops)
        conn.held.append((xid, op, None))
        auth = [[scheme, ident] for scheme, ident in conn.auth.ids()]
        self.to_forward.append(Forward(sid, xid, op, body, auth))

    def _forward_sync(self, conn: ClientConnection, xid: int, frame: bytes) -> None:
        held = self._hold_sync(conn, xid, frame)
        if held is not None:
            self.to_forward.append(held)

    def _hold_sync(self, conn: ClientConnection, xid: int, frame: bytes) -> SyncRequest | None:
        """Hold the connection's replies behind a sync until :meth:`sync_done`."""
        try:
            path = path_only(frame)
        except _BAD_REQUEST:
            self._send(conn, reply(xid, self.tree.last_zxid, Err.MARSHALLINGERROR))
            return None
        sid = conn.session_id
        self._forwarded[(sid, xid)] = InFlight(conn, xid, OpCode.sync)
        conn.held.append((xid, OpCode.sync, None))
        return SyncRequest(sid, xid, path)

    def _create_session(self, conn: ClientConnection, timeout: int) -> None:
        if self.read_only:
            # A session of this server alone: nothing can be replicated while partitioned.
            sid = self._next_session
            self._next_session += 1
            conn.session_id = sid
            self.sessions.add(sid, timeout, self.now_ms)
            self._finish_handshake(conn, sid)
            return
        if not self.forwarding:
            super()._create_session(conn, timeout)
            return
        sid = self._next_session
        self._next_session += 1
        conn.session_id = sid
        self._forward(conn, 0, OpCode.createSession, _TIMEOUT.pack(timeout))

    def _reopen_session(
        self, conn: ClientConnection, sid: int, passwd: bytes, timeout: int
    ) -> None:
        if not (self.forwarding or self.read_only):
            super()._reopen_session(conn, sid, passwd, timeout)
            return
        # Sessions are in the replicated tree: any member can take a client back.
        if sid in self.tree.sessions and passwd == session_password(sid):
            self.sessions.timeouts[sid] = timeout
            if self.forwarding:
                self.touched[sid] = timeout
            conn.session_id = sid
            old = self._conn_of.get(sid)
            if old is not None and old is not conn:
                self._close(old)
            self._finish_handshake(conn, sid)
            return
        super()._reopen_session(conn, sid, passwd, timeout)  # answers "expired"

    def _origin_of(self, txn: Txn) -> InFlight | None:
        origin = self._inflight.pop(txn.zxid, None)
        if origin is not None or not self._forwarded:
            return origin
        cxid = _SESSION_KEY if isinstance(txn.body, CreateSessionTxn) else txn.cxid
        return self._forwarded.pop((txn.session_id, cxid), None)

    def sync_done(self, msg: SyncDone) -> None:
        """The leader answered a sync: everything committed before it is applied here."""
        origin = self._forwarded.pop((msg.session_id, msg.cxid), None)
        if origin is None or origin.conn is None:
            return
        conn = origin.conn
        if conn.held:
            conn.held.popleft()
        self._send(
            conn, reply(origin.xid, self.tree.last_zxid, 0, r.PathResponse(msg.path).encode())
        )
        self._release_held(conn)

    def take_touched(self) -> Touch | None:
        if not self.touched:
            return None
        sessions = [[sid, t] for sid, t in self.touched.items()]
        self.touched.clear()
        return Touch(sessions)

    # --- leader side: requests from learners ------------------------------------------

    def remote(self, learner: int, msg: AppMessage) -> None:
        if self.role != LEADER:
            return
        if isinstance(msg, Forward):
            self._remote_write(msg)
        elif isinstance(msg, Touch):
            for sid, _timeout in msg.sessions:
                self.sessions.touch(sid, self.now_ms)
        elif isinstance(msg, SyncRequest):
            self.unconfirmed.append((learner, msg))

    @property
    def confirming(self) -> bool:
        return bool(self._confirming)

    def start_round(self, token: tuple[int, int] | None) -> None:
        """The shell started leadership round ``token`` for the unconfirmed syncs.

        None: we do not lead (any more), so they are never answered; their clients'
        connections close with the role.
        """
        if token is not None:
            self._confirming.extend((token, learner, msg) for learner, msg in self.unconfirmed)
        self.unconfirmed.clear()

    def confirm_rounds(self, confirmed: Callable[[tuple[int, int]], bool | None]) -> None:
        """Answer the syncs whose round a quorum confirmed (oldest rounds first)."""
        while self._confirming:
            token, learner, msg = self._confirming[0]
            ok = confirmed(token)
            if ok is None:
                self._confirming.clear()  # that leadership is over
                return
            if not ok:
                return
            self._confirming.popleft()
            self._answer_sync(learner, msg)

    def _answer_sync(self, learner: int, msg: SyncRequest) -> None:
        """Answer once everything prepared so far is applied (this leader still leads)."""
        done = SyncDone(msg.session_id, msg.cxid, msg.path)
        target = self.prep.next_zxid - 1
        if self.tree.last_zxid >= target:
            self._sync_answered(learner, done)
        else:
            self._syncs.append((target, learner, done))

    def _sync_answered(self, learner: int, done: SyncDone) -> None:
        if learner == SELF:
            self.sync_done(done)  # one of our own clients
        else:
            self.replies.append((learner, done))

    def _remote_write(self, msg: Forward) -> None:
        sid, op = msg.session_id, msg.op
        if op == OpCode.createSession:
            (timeout,) = _TIMEOUT.unpack(msg.body)
            txn = self.prep.create_session(sid, timeout, self.wall_ms)
        elif op == OpCode.closeSession:
            txn = self.prep.close_session(sid, msg.cxid, self.wall_ms)
        elif op not in WRITE_OPS:
            return
        else:
            try:
                req = decode_write(op, msg.body)
            except _BAD_REQUEST:
                req = None
            if req is None:
                txn = self.prep.error(sid, msg.cxid, Err.MARSHALLINGERROR, self.wall_ms)
            else:
                txn = self.prep.write(sid, msg.cxid, op, req, self.wall_ms, self._auth(msg))
        self._inflight[txn.zxid] = InFlight(None, msg.cxid, op)  # answered by the learner
        self.to_log.append(txn)

    def _auth(self, msg: Forward) -> AuthInfo:
        """The ids a forwarded write carries (read-only to the prep stage: shared)."""
        key = tuple((scheme, ident) for scheme, ident in msg.auth)
        auth = self._auths.get(key)
        if auth is None:
            if len(self._auths) >= AUTH_CACHE:
                self._auths.clear()
            auth = self._auths[key] = AuthInfo(self.settings.security)
            for ident in key:
                auth.add(ident)
        return auth

    def commit(self, txns: list[Txn]) -> None:
        super().commit(txns)
        if self._syncs:
            last = self.tree.last_zxid
            ready = [s for s in self._syncs if s[0] <= last]
            self._syncs = [s for s in self._syncs if s[0] > last]
            for _, learner, done in ready:
                self._sync_answered(learner, done)

    def take_replies(self) -> list[tuple[int, AppMessage]]:
        out, self.replies = self.replies, []
        return out

    def take_forward(self) -> list[AppMessage]:
        out, self.to_forward = self.to_forward, []
        return out
