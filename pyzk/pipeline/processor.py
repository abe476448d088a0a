"""The request pipeline of a standalone server: prepare → log → apply, without I/O.

Theory of operation
-------------------
Shaped like ZooKeeper's processor chain (PrepRequestProcessor → SyncRequestProcessor →
FinalRequestProcessor), as an etcd-style core:

* :meth:`Processor.connect` and :meth:`Processor.request` take what a connection sent.
  A write is *prepared* at once: it becomes a :class:`~pyzk.tree.txn.Txn` with the next
  zxid and joins :attr:`Processor.to_log`.
* The shell persists ``to_log`` (an in-memory no-op, or the write-ahead log) and then
  calls :meth:`Processor.commit` with those txns, in zxid order. **A txn is applied and
  answered only after it is logged**: that is the durability contract.
* Commit applies the txn to the tree (the only mutator), queues the watch events it
  fired, then the reply, on the connections' outboxes; the shell writes every connection
  in :attr:`Processor.dirty`.

Session order: a connection's requests are answered in the order they were sent. A read
is answered at once unless one of the connection's writes is still in flight; then it
waits in ``conn.held`` behind that write (ZooKeeper's CommitProcessor). Reads of other
sessions never wait.

Time is passed in: ``now_ms`` (monotonic, for session expiry) and ``wall_ms`` (stamped
into txns as ctime/mtime) are set by the shell before each call.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass, field

from pyzk.jute import records as r
from pyzk.jute.codec import MarshallingError
from pyzk.jute.codes import WRITE_OPS, Err, OpCode, Xid
from pyzk.pipeline.acl import Security
from pyzk.pipeline.connection import ClientConnection
from pyzk.pipeline.errors import KeeperError
from pyzk.pipeline.prep import Prep
from pyzk.pipeline.reads import READS
from pyzk.pipeline.replies import write_body
from pyzk.pipeline.requests import decode_write
from pyzk.pipeline.session_ops import SESSION_OPS
from pyzk.pipeline.wire import notification, reply
from pyzk.tree.datatree import DataTree, Result
from pyzk.tree.sessions import SessionTracker
from pyzk.tree.txn import CloseSessionTxn, CreateSessionTxn, Txn

log = logging.getLogger(__name__)

# Derives a session's password from its id, so that any server can check it without
# storing it (ZooKeeper derives it the same way, from a fixed "super secret").
_PASSWD_KEY = b"pyzk-session-passwd-v1"
_PASSWD_LEN = 16
_CLOSE_SESSION = OpCode.closeSession
_SESSION_TXNS = frozenset({CreateSessionTxn, CloseSessionTxn})  # see _session_effects
_BAD_REQUEST = (struct.error, MarshallingError, IndexError, UnicodeDecodeError)


def session_password(session_id: int) -> bytes:
    sid = session_id.to_bytes(8, "big", signed=True)
    return hashlib.blake2b(sid, key=_PASSWD_KEY, digest_size=_PASSWD_LEN).digest()


@dataclass(slots=True)
class Settings:
    tick_ms: int = 2000
    min_session_timeout_ms: int = 0  # 0: 2 x tick, as ZooKeeper
    max_session_timeout_ms: int = 0  # 0: 20 x tick
    server_id: int = 1  # the top byte of session ids (standalone ZooKeeper uses 1)
    extended_types: bool = False
    enforce_quota: bool = False
    security: Security = field(default_factory=Security)  # skipACL, superDigest
    # The container reaper: deletions per minute at most, and when a container that never
    # had a child goes (0: never), as znode.container.maxPerMinute / maxNeverUsedIntervalMs.
    container_max_per_minute: int = 10000
    container_max_never_used_ms: int = 0

    def clamp_timeout(self, requested: int) -> int:
        lo = self.min_session_timeout_ms or 2 * self.tick_ms
        hi = self.max_session_timeout_ms or 20 * self.tick_ms
        return max(lo, min(hi, requested))


@dataclass(slots=True)
class InFlight:
    """Where a prepared txn came from, so its commit can answer it."""

    conn: ClientConnection | None  # None: the server's own (session expiry)
    xid: int
    op: int
    sub_ops: list[int] | None = None  # a multi's op types, for its reply


class Processor:
    def __init__(self, tree: DataTree, settings: Settings, start_wall_ms: int) -> None:
        self.tree = tree
        self.settings = settings
        self.prep = Prep(tree, settings.extended_types, settings.enforce_quota)
        self.sessions = SessionTracker(settings.tick_ms)
        self.now_ms = 0
        self.wall_ms = start_wall_ms
        self.to_log: list[Txn] = []
        self.dirty: dict[ClientConnection, None] = {}
        self._inflight: dict[int, InFlight] = {}
        self.read_only = False  # a partitioned ensemble member serving reads only
        self._conn_of: dict[int, ClientConnection] = {}  # session id -> its connection
        # Session ids: the low 40 bits of the start time, shifted up 16 bits, with the
        # server id in the top byte (ZooKeeper's initializeNextSession).
        base = (start_wall_ms & ((1 << 40) - 1)) << 16
        self._next_session = base | (settings.server_id << 56)

    # --- input ------------------------------------------------------------------------

    def connect(self, conn: ClientConnection, req: r.ConnectRequest) -> None:
        """A handshake: create a session, or reattach the connection to an existing one."""
        if req.lastZxidSeen > self.tree.last_zxid:
            # The client has seen a newer state than ours: it must try another server.
            log.info(
                "refusing session for %s: client has seen zxid 0x%x, ours is 0x%x",
                conn.peer,
                req.lastZxidSeen,
                self.tree.last_zxid,
            )
            self._close(conn)
            return
        timeout = self.settings.clamp_timeout(req.timeOut)
        conn.timeout_ms = timeout
        conn.auth.security = self.settings.security
        if req.sessionId == 0:
            self._create_session(conn, timeout)
        else:
            self._reopen_session(conn, req.sessionId, req.passwd or b"", timeout)

    def request(self, conn: ClientConnection, xid: int, op: int, frame: bytes) -> None:
        """A request after the handshake; answered now, held, or prepared as a txn."""
        if conn.closing:
            return
        self.sessions.touch(conn.session_id, self.now_ms)
        if op == OpCode.ping:
            xid = Xid.PING  # FinalRequestProcessor answers every ping with PING_XID
        session_op = SESSION_OPS.get(op)
        if session_op is not None:
            # auth and sasl are answered at once, outside the pipeline (processPacket).
            try:
                close = session_op(conn, xid, frame)
            except _BAD_REQUEST:
                close = True  # an undecodable packet: ZooKeeper drops the connection
            self.dirty[conn] = None
            if close:
                self._close(conn)
        elif op in WRITE_OPS:
            self._prepare(conn, xid, op, frame)
        elif conn.held:
            conn.held.append((xid, op, frame))
        else:
            self._read(conn, xid, op, frame)

    def disconnected(self, conn: ClientConnection) -> None:
        """The connection is gone: its watches go; its session lives on until it expires."""
        conn.closing = True
        self.tree.watches.drop_watcher(conn)
        if self._conn_of.get(conn.session_id) is conn:
            del self._conn_of[conn.session_id]
        self.dirty.pop(conn, None)

    def tick(self) -> None:
        """Expire sessions not heard from within their timeout (call once per tick)."""
        for sid in self.sessions.expire(self.now_ms):
            log.info(
                "Expiring session 0x%x, timeout of %dms exceeded",
                sid,
                self.tree.sessions.get(sid, 0),
            )
            txn = self.prep.close_session(sid, 0, self.wall_ms)
            self._inflight[txn.zxid] = InFlight(None, 0, _CLOSE_SESSION)
            self.to_log.append(txn)

    def check_containers(self, interval_ms: int) -> int:
        """Delete empty containers and expired TTL nodes (ZooKeeper's ContainerManager).

        Called every ``interval_ms``. Each deletion is a deleteContainer request of the
        server's own, prepared like any write: the tree changes only when it is applied.
        At most ``maxPerMinute`` deletions a minute. Returns how many were prepared.
        """
        s = self.settings
        budget = max(1, interval_ms * s.container_max_per_minute // 60000)
        paths = self.tree.reap_candidates(self.wall_ms, s.container_max_never_used_ms)
        for path in paths[:budget]:
            log.info("Attempting to delete candidate container: %s", path)
            txn = self.prep.write(
                0, 0, OpCode.deleteContainer, r.PathRequest(path), self.wall_ms, auth=None
            )
            self._inflight[txn.zxid] = InFlight(None, 0, OpCode.deleteContainer)
            self.to_log.append(txn)
        return min(len(paths), budget)

    # --- the apply stage --------------------------------------------------------------

    def commit(self, txns: list[Txn]) -> None:
        """Apply logged txns in zxid order and answer them."""
        if not txns:
            return
        tree = self.tree
        for txn in txns:
            result, fired = tree.apply(txn)
            for watcher, event, path in fired:
                self._send(watcher, notification(event, path))  # type: ignore[arg-type]
            origin = self._origin_of(txn)
            if type(txn.body) in _SESSION_TXNS:
                self._session_effects(txn, origin)
            if origin is None or origin.conn is None:
                continue
            conn = origin.conn
            held = conn.held
            if held:
                held.popleft()  # this write's place in the session order
            self._answer_write(conn, origin, txn, result)
            if held:
                self._release_held(conn)
        # The prepare stage needs no pending records for what the tree now shows; nothing
        # above prepares a write, so dropping them once for the batch is the same.
        self.prep.applied(txns[-1].zxid)

    def _origin_of(self, txn: Txn) -> InFlight | None:
        """Who is waiting for this txn here (and so must be answered)."""
        return self._inflight.pop(txn.zxid, None)

    def abort(self, txns: list[Txn], err: int = Err.SYSTEMERROR) -> None:
        """The log refused these txns, and nothing prepared after them may be applied.

        Each gets ``err`` instead of an acknowledgement (a new session is closed instead),
        and the prepare stage forgets them: zxids continue from the last applied txn.
        """
        for txn in [*txns, *self.take_to_log()]:
            origin = self._inflight.pop(txn.zxid, None)
            if origin is None:
                continue
            if origin.conn is None:  # a session expiry: retry at the next tick
                timeout = self.tree.sessions.get(txn.session_id)
                if timeout is not None:
                    self.sessions.add(txn.session_id, timeout, self.now_ms - timeout)
                continue
            conn = origin.conn
            if conn.held:
                conn.held.popleft()
            if origin.op == OpCode.createSession:
                self._close(conn)
                continue
            self._send(conn, reply(origin.xid, self.tree.last_zxid, err))
            self._release_held(conn)
        self.prep.reset()

    def restore_sessions(self) -> None:
        """After recovery: every session in the tree starts a fresh timeout from now."""
        for sid, timeout in self.tree.sessions.items():
            self.sessions.add(sid, timeout, self.now_ms)

    def _answer_write(
        self, conn: ClientConnection, origin: InFlight, txn: Txn, result: Result
    ) -> None:
        if origin.op == OpCode.createSession:
            self._finish_handshake(conn, txn.session_id)
            return
        body = write_body(origin.op, result, origin.sub_ops) if result.err == Err.OK else b""
        self._send(conn, reply(origin.xid, txn.zxid, result.err, body))
        if origin.op == _CLOSE_SESSION:
            self._close(conn)

    def _session_effects(self, txn: Txn, origin: InFlight | None) -> None:
        body = txn.body
        if isinstance(body, CreateSessionTxn):
            self.sessions.add(txn.session_id, body.timeout_ms, self.now_ms)
        elif isinstance(body, CloseSessionTxn):
            self.sessions.remove(txn.session_id)
            self.prep.session_closed(txn.session_id)
            conn = self._conn_of.pop(txn.session_id, None)
            if conn is not None and (origin is None or origin.conn is not conn):
                self._close(conn)  # an expired session's connection is closed

    def _release_held(self, conn: ClientConnection) -> None:
        """Answer the reads that waited for the write just committed."""
        held = conn.held
        while held and (frame := held[0][2]) is not None:
            xid, op, _ = held.popleft()
            self._read(conn, xid, op, frame)

    # --- reads and writes -------------------------------------------------------------

    def _read(self, conn: ClientConnection, xid: int, op: int, frame: bytes) -> None:
        handler = READS.get(op)
        if handler is None:
            # Not an opcode the pipeline takes (ZooKeeper's UnimplementedRequestProcessor).
            self._send(conn, reply(xid, -1, Err.UNIMPLEMENTED))
            self._close(conn)
            return
        try:
            body = handler(self.tree, conn, frame)
            err = 0
        except KeeperError as e:
            body, err = b"", e.code
        except _BAD_REQUEST:
            body, err = b"", Err.MARSHALLINGERROR
        self._send(conn, reply(xid, self.tree.last_zxid, err, body))

    def _prepare(self, conn: ClientConnection, xid: int, op: int, frame: bytes) -> None:
        sub_ops = None
        if op == _CLOSE_SESSION:
            txn = self.prep.close_session(conn.session_id, xid, self.wall_ms)
        else:
            try:
                req = decode_write(op, frame)
            except _BAD_REQUEST:
                req = None
            if req is None:
                txn = self.prep.error(conn.session_id, xid, Err.MARSHALLINGERROR, self.wall_ms)
            else:
                if isinstance(req, list):
                    sub_ops = [o for o, _ in req]
                txn = self.prep.write(conn.session_id, xid, op, req, self.wall_ms, conn.auth)
        self._inflight[txn.zxid] = InFlight(conn, xid, op, sub_ops)
        conn.held.append((xid, op, None))
        self.to_log.append(txn)

    # --- sessions ---------------------------------------------------------------------

    def _create_session(self, conn: ClientConnection, timeout: int) -> None:
        sid = self._next_session
        self._next_session += 1
        conn.session_id = sid
        txn = self.prep.create_session(sid, timeout, self.wall_ms)
        self._inflight[txn.zxid] = InFlight(conn, 0, OpCode.createSession)
        conn.held.append((0, OpCode.createSession, None))
        self.to_log.append(txn)

    def _reopen_session(
        self, conn: ClientConnection, sid: int, passwd: bytes, timeout: int
    ) -> None:
        valid = (
            sid in self.sessions
            and sid not in self.prep.closing
            and passwd == session_password(sid)
        )
        if not valid:
            log.info("Invalid session 0x%x for client %s, probably expired", sid, conn.peer)
            self._send_connect_response(conn, 0, 0, b"\0" * _PASSWD_LEN)
            self._close(conn)
            return
        old = self._conn_of.get(sid)
        if old is not None and old is not conn:
            self._close(old)  # a session has one connection: the newest wins
        self.sessions.timeouts[sid] = timeout
        self.sessions.touch(sid, self.now_ms)
        conn.session_id = sid
        self._finish_handshake(conn, sid)

    def _finish_handshake(self, conn: ClientConnection, sid: int) -> None:
        self._conn_of[sid] = conn
        log.info(
            "Established session 0x%x with negotiated timeout %d for client %s",
            sid,
            conn.timeout_ms,
            conn.peer,
        )
        self._send_connect_response(conn, conn.timeout_ms, sid, session_password(sid))

    def _send_connect_response(
        self, conn: ClientConnection, timeout: int, sid: int, passwd: bytes
    ) -> None:
        body = r.ConnectResponse(0, timeout, sid, passwd).encode()
        if conn.readonly_flag is not None:  # only clients that sent the flag expect it
            body += b"\x01" if self.read_only else b"\x00"
        self._send(conn, struct.pack(">i", len(body)) + body)

    # --- output -----------------------------------------------------------------------

    def _send(self, conn: ClientConnection, frame: bytes) -> None:
        if conn.closing:
            return
        conn.outbox.append(frame)
        self.dirty[conn] = None

    def _close(self, conn: ClientConnection) -> None:
        """Close once what is queued is written (the shell checks ``closing``)."""
        self.dirty[conn] = None
        conn.closing = True
        self.tree.watches.drop_watcher(conn)
        if self._conn_of.get(conn.session_id) is conn:
            del self._conn_of[conn.session_id]

    def outstanding(self) -> int:
        """Requests prepared but not yet answered."""
        return len(self._inflight)

    def take_dirty(self) -> list[ClientConnection]:
        conns = list(self.dirty)
        self.dirty.clear()
        return conns

    def take_to_log(self) -> list[Txn]:
        txns, self.to_log = self.to_log, []
        return txns
