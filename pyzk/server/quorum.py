"""An ensemble member: the asyncio shell that drives the consensus core.

Theory of operation
-------------------
Three inputs move the server: client batches (as in standalone), frames from other
members (:mod:`pyzk.server.peer_links`) and a 50 ms timer. After each, :meth:`_pump`
hands prepared txns to ZAB as proposals (leader) or forwards client writes to the
leader (learners), then :meth:`_drive` carries out the consensus core's Ready:

1. disk: epochs and log appends, in a writer thread, one fdatasync per Ready — Readies
   accumulate while one is on disk, which is group commit (a lone append, one entry
   while the disk is fast, is synced on the loop's own thread, as in standalone);
2. apply the committed txns to the tree, in zxid order, answering waiting clients;
3. send the messages (only now: an ACK must never promise what is not on disk);
4. ``advance`` the core.

A leader in broadcast sends first (``Ready.send_first``): its proposals are on their
way to the followers while its own disk writes them, as ZooKeeper's leader does.

Synchronisation with a new leader (SNAP, TRUNC) replaces or rewinds the state; those
rare Readies run synchronously. A write the disk refuses stops the server: a member that
cannot log must not take part (ZooKeeper exits too).

The pipeline serves clients only while the core serves: an established leader, or a
learner past UPTODATE. Otherwise client connections are closed and new ones refused, so
clients move to a member that can answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

from pyzk.config import Config
from pyzk.ensemble.messages import SyncDone, decode_app, encode_app, is_app
from pyzk.pipeline.connection import CONNECT, ClientConnection, Event
from pyzk.pipeline.ensemble import (
    FOLLOWER,
    LEADER,
    LOOKING,
    OBSERVER,
    READ_ONLY,
    EnsembleProcessor,
)
from pyzk.server.log_stage import INLINE_FSYNC_MS
from pyzk.server.node import Server
from pyzk.server.ops_view import QuorumOpsView
from pyzk.server.peer_auth import PeerSecurity
from pyzk.server.peer_links import PeerLinks
from pyzk.storage.epochs import ACCEPTED, CURRENT, read_epoch, write_epochs
from pyzk.storage.recovery import recover
from pyzk.storage.snapshot import encode_snapshot, read_snapshot, snapshot_files, snapshot_name
from pyzk.storage.wal import fsync_dir, log_files, read_log, truncate_after
from pyzk.tree.txn import Txn, decode_txn, encode_txn
from pyzk.zab.election import ElectionTiming
from pyzk.zab.history import Append, Apply, Epochs, Install, Ready, Truncate
from pyzk.zab.messages import BadMessage as _Bad
from pyzk.zab.messages import (
    FollowerInfo,
    Message,
    Notification,
    Snap,
    State,
    decode,
    encode,
    make_zxid,
)
from pyzk.zab.peer import Durable, Peer, Timing

log = logging.getLogger(__name__)

PEER_TICK_S = 0.05  # how often the consensus core sees time pass
# How long without a quorum before read-only clients are served (QuorumPeer: 2 s or a
# tick, whichever is longer), so a mere election does not look like a partition.
READ_ONLY_GRACE_MS = 2000
# The election re-sends votes no slower than this (ZooKeeper's cap is 60 s; a small
# ensemble recovers faster with a smaller one, and the traffic is a few bytes).
MAX_VOTE_RESEND_MS = 2000

_MODES = {State.LEADING: LEADER, State.FOLLOWING: FOLLOWER, State.OBSERVING: OBSERVER}


class QuorumServer(Server):
    processor_class = EnsembleProcessor
    # What a member recovers may hold proposals its next leader truncates: it snapshots
    # committed state only.
    snapshot_at_start = False
    ops_view_class = QuorumOpsView

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        assert config.myid is not None
        self.proc: EnsembleProcessor
        self.mode = "looking"
        servers = config.servers
        self.voters = frozenset(s for s, spec in servers.items() if spec.role == "participant")
        self.observers = frozenset(servers) - self.voters
        self.peer = self._make_peer()
        self.tree.set_config(membership(config))
        self.links = PeerLinks(
            config.myid,
            servers,
            config.quorum_listen_on_all_ips,
            self._on_election,
            self._on_quorum,
            self._on_lost,
            # TLS and SASL between members; a link must prove itself within initLimit.
            PeerSecurity.from_settings(
                config.security, max(1.0, config.init_limit * config.tick_time / 1000)
            ),
            on_batch=self._pump,
        )
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="pyzk-zab-log")
        self._writing = False
        self._lone_pending = False  # a lone append waits for _drive_lone
        self._stopping = False
        self._roll_next = False
        self._since_snap = 0
        self._snap_at = self.log_stage.next_snap_point()  # randomised, as in standalone
        self._next_touch = 0.0
        self._syncs: list[tuple[int, SyncDone]] = []  # answers waiting for their commits
        self._proposed: dict[int, Txn] = {}  # txns this leader proposed, by zxid
        self.election_started = time.monotonic()
        self.last_election_ms = 0.0

    def _make_peer(self) -> Peer:
        cfg = self.config
        timing = Timing(
            tick_ms=cfg.tick_time,
            init_limit=cfg.init_limit,
            sync_limit=cfg.sync_limit,
            election=ElectionTiming(max_resend_ms=min(MAX_VOTE_RESEND_MS, 60000)),
        )
        snaps = snapshot_files(cfg.data_dir)
        base = snaps[0][0] if snaps else 0
        entries = [i for i in read_log(cfg.log_dir, base) if isinstance(i, tuple)]
        durable = Durable(
            read_epoch(cfg.data_dir, ACCEPTED), read_epoch(cfg.data_dir, CURRENT), base, entries
        )
        last = entries[-1][0] if entries else base
        if last != self.tree.last_zxid:  # recovery applied exactly what is logged
            base, durable.base, durable.entries = self.tree.last_zxid, self.tree.last_zxid, []
        assert cfg.myid is not None
        return Peer(
            cfg.myid, self.voters, self.observers, durable, timing, random.Random(), _now_ms()
        )

    @property
    def serving(self) -> bool:
        return self.peer.serving or self.proc.role == READ_ONLY

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        await super().start()
        await self.links.start()
        log.info(
            "server %d of %d voters and %d observers; looking for a leader",
            self.config.myid,
            len(self.voters),
            len(self.observers),
        )
        self._pump()

    async def stop(self) -> None:
        await self.links.stop()
        self._stopping = True  # no new Ready; the one on disk finishes first
        while self._writing:
            await asyncio.sleep(0.01)
        self._writer.shutdown(wait=True)
        await super().stop()

    def _schedule_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._tick_handle = loop.call_later(PEER_TICK_S, self._tick)

    def _tick(self) -> None:
        self._clock()
        self.peer.tick(_now_ms())
        self.proc.tick()
        now = time.monotonic()
        if self.proc.forwarding and now >= self._next_touch:
            self._next_touch = now + self.config.tick_time / 2000
            touch = self.proc.take_touched()
            if touch is not None and self.peer.leader_id is not None:
                self.links.send_quorum(self.peer.leader_id, encode_app(touch))
        self._pump()
        self._schedule_tick()

    # --- clients ----------------------------------------------------------------------

    def handle_events(self, conn: ClientConnection, events: list[Event]) -> None:
        if self.proc.role == LOOKING and any(ev[0] == CONNECT for ev in events):
            conn.closing = True  # not serving: the client tries another member
            conn.handle.flush()
            return
        super().handle_events(conn, events)

    # --- peers ------------------------------------------------------------------------

    def _on_election(self, sid: int, frame: bytes) -> None:
        try:
            msg = decode(frame)
        except _Bad as e:
            log.warning("bad election message from server %d: %s", sid, e)
            return
        if isinstance(msg, Notification):
            self.peer.step(_now_ms(), sid, msg)

    def _on_quorum(self, sid: int, frame: bytes) -> None:
        self._clock()
        try:
            if is_app(frame):
                app = decode_app(frame)
                if isinstance(app, SyncDone):
                    if sid == self.peer.leader_id:
                        # Everything committed before it must be applied first; some
                        # of it may still be on its way to our disk.
                        self._syncs.append((self.peer.committed, app))
                        self._release_syncs()
                else:
                    self.proc.remote(sid, app)
            else:
                self.peer.step(_now_ms(), sid, decode(frame))
        except _Bad as e:
            log.warning("bad quorum message from server %d: %s; dropping the link", sid, e)
            self.links.close_quorum(sid)

    def _on_lost(self, sid: int) -> None:
        self.peer.disconnected(_now_ms(), sid)
        self._pump()

    # --- the loop ---------------------------------------------------------------------

    def _pump(self) -> None:
        proc, peer = self.proc, self.peer
        if proc.confirming:
            proc.confirm_rounds(peer.confirmed)  # a quorum may have answered a round
        if proc.unconfirmed:
            proc.start_round(peer.confirm_leadership())  # its pings go out below
        txns = proc.take_to_log()
        if txns:
            # The processor numbers txns consecutively from the zxid ZAB hands out next.
            if peer.propose([encode_txn(txn) for txn in txns]) == txns[0].zxid:
                for txn in txns:
                    self._proposed[txn.zxid] = txn  # applied from here: not decoded again
            else:
                log.warning("leadership lost with %d writes unproposed", len(txns))
                proc.clear_pending()
                self._proposed.clear()
        leader = peer.leader_id
        for msg in proc.take_forward():
            if leader is not None:
                self.links.send_quorum(leader, encode_app(msg))
        for learner, reply in proc.take_replies():
            self.links.send_quorum(learner, encode_app(reply))
        self._drive()
        self._flush()
        self.links.flush()

    def _drive(self) -> None:
        if self._writing or self._stopping or self._lone_pending:
            return
        if not self.peer.has_ready():
            self._role_check()  # a role can start serving without anything to carry out
            return
        if self._lone_ok(self.peer.pending()):
            if self.peer.state != State.LEADING:
                # A learner's appends come from one link, its leader's, whose packets
                # already carry batches: waiting would gather nothing more.
                self._carry_out(self.peer.ready(), inline=True)
                return
            self._lone_pending = True  # see _drive_lone
            loop = asyncio.get_running_loop()
            loop.call_soon(loop.call_soon, self._drive_lone)
            return
        self._carry_out(self.peer.ready(), inline=False)

    def _drive_lone(self) -> None:
        """A lone log append is written and synced on the event loop's thread, as the
        standalone log stage does (see LogStage._write_lone): two callbacks later, so
        that writes arriving together still go to the writer thread as one batch, and
        only while the disk is fast."""
        self._lone_pending = False
        if self._writing or self._stopping or not self.peer.has_ready():
            self._pump()
            return
        ready = self.peer.ready()
        self._carry_out(ready, inline=self._lone_ok(ready))

    def _lone_ok(self, ready: Ready) -> bool:
        """One entry to append and nothing else to persist, no roll due, a fast disk."""
        fast = self.log_stage.last_fsync_ms < INLINE_FSYNC_MS  # as report_fsync saw it
        return ready.lone_append() and not self._roll_next and fast

    def _carry_out(self, ready: Ready, inline: bool) -> None:
        if ready.state is not None:
            self._state_changed(ready.state)
        if any(isinstance(op, Install | Truncate) for op in ready.ops):
            self._sync_now(ready)
            self._finish(ready, applied=True)
            return
        disk = [op for op in ready.ops if isinstance(op, Epochs | Append)]
        if not disk:
            self._finish(ready, applied=False)
            return
        if ready.send_first:
            # A leader's proposals go out now: the learners log them while we do.
            self._send(ready.messages)
            ready.messages = []
        self._writing = True
        if inline:
            self.links.flush()  # before the loop blocks on the disk
            try:
                ms = self._write(disk)
            except Exception as e:
                self._written(ready, 0.0, e)
            else:
                self._written(ready, ms, None)
            return
        fut = asyncio.get_running_loop().run_in_executor(self._writer, self._write, disk)
        fut.add_done_callback(
            lambda f: self._written(ready, 0.0 if f.exception() else f.result(), f.exception())
        )

    def _write(self, ops: list[Epochs | Append]) -> float:
        """Epochs, then the log; one fdatasync per append (writer thread, or inline).
        How long it took, in ms."""
        t0 = time.monotonic()
        for op in ops:
            if isinstance(op, Epochs):
                write_epochs(self.config.data_dir, op.accepted, op.current)
            else:
                if self._roll_next:
                    self._roll_next = False
                    self.txn_log.roll()
                self.txn_log.append(op.entries)
        return (time.monotonic() - t0) * 1000

    def _written(self, ready: Ready, ms: float, exc: BaseException | None) -> None:
        """The disk part of ``ready`` is done (inline or in the writer thread)."""
        self._writing = False
        if exc is not None:
            log.critical("cannot write the transaction log (%s): stopping this server", exc)
            os._exit(1)  # a member that cannot log must not vote or acknowledge
        if ready.appended():  # fsynctime, the slow-fsync warning: as in standalone
            self.log_stage.report_fsync(ms)
        self._finish(ready, applied=False)

    def _finish(self, ready: Ready, applied: bool) -> None:
        self._clock()
        if not applied:
            for op in ready.ops:
                if isinstance(op, Apply):
                    self._apply(op)
        self._send(ready.messages)
        self.peer.advance(ready)
        self._role_check()
        self._pump()

    def _send(self, messages: list[tuple[int, Message]]) -> None:
        for to, msg in messages:
            if isinstance(msg, Snap):
                msg = Snap(msg.link, self.tree.last_zxid, encode_snapshot(self.tree))
            data = encode(msg)
            if isinstance(msg, Notification):
                self.links.send_election(to, data)
            else:
                self.links.send_quorum(to, data, dial=isinstance(msg, FollowerInfo))

    def _release_syncs(self) -> None:
        last = self.tree.last_zxid
        while self._syncs and self._syncs[0][0] <= last:
            self.proc.sync_done(self._syncs.pop(0)[1])

    def _apply(self, op: Apply) -> None:
        proposed = self._proposed
        self.proc.commit(
            [proposed.pop(z) if z in proposed else decode_txn(p) for z, p in op.entries]
        )
        if self._syncs:
            self._release_syncs()
        self._since_snap += len(op.entries)
        if self._since_snap >= self._snap_at and self.tree.view is None:
            self._since_snap = 0
            self._snap_at = self.log_stage.next_snap_point()
            self._roll_next = True
            asyncio.get_running_loop().create_task(self.log_stage.snapshot())

    # --- synchronisation with a leader (rare; done in place) ---------------------------

    def _sync_now(self, ready: Ready) -> None:
        cfg = self.config
        for op in ready.ops:
            if isinstance(op, Install):
                self._install(op.snap)
            elif isinstance(op, Truncate):
                self.txn_log.close()
                truncate_after(cfg.log_dir, op.zxid)
                for z, path in snapshot_files(cfg.data_dir):
                    if z > op.zxid:
                        path.unlink()
                self.tree.replace_contents(recover(cfg.data_dir, cfg.log_dir).tree)
                log.info("truncated the log after zxid 0x%x at the leader's request", op.zxid)
            elif isinstance(op, Epochs):
                write_epochs(cfg.data_dir, op.accepted, op.current)
            elif isinstance(op, Append):
                self.txn_log.append(op.entries)
            else:
                self._apply(op)

    def _install(self, snap: Snap) -> None:
        cfg = self.config
        self.txn_log.close()
        path = cfg.data_dir / snapshot_name(snap.zxid)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(snap.state)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        for _, old in snapshot_files(cfg.data_dir):
            if old != path:
                old.unlink()
        for _, old in log_files(cfg.log_dir):
            old.unlink()  # the snapshot supersedes every logged txn
        fsync_dir(cfg.data_dir)
        self.tree.replace_contents(read_snapshot(path).tree)
        log.info("installed the leader's snapshot at zxid 0x%x", snap.zxid)

    # --- roles ------------------------------------------------------------------------

    def _state_changed(self, state: State) -> None:
        if state == State.LOOKING:
            self.election_started = time.monotonic()
            if self.config.readonly_mode:
                # Partitioned, perhaps: after a grace period serve read-only clients.
                grace = max(READ_ONLY_GRACE_MS, self.config.tick_time) / 1000
                asyncio.get_running_loop().call_later(grace, self._maybe_read_only)
        log.info(
            "%s (epoch %d, last zxid 0x%x)",
            state.name,
            self.peer.current_epoch,
            self.peer.history.last,
        )

    def _maybe_read_only(self) -> None:
        if not self.peer.serving and self.proc.role == LOOKING:
            log.info("no quorum: serving read-only clients")
            self.proc.become(READ_ONLY)
            self.mode = READ_ONLY
            self._pump()

    def _role_check(self) -> None:
        """Start or stop serving clients as the core starts or stops serving."""
        peer, proc = self.peer, self.proc
        if peer.serving and proc.role == READ_ONLY:
            self._stop_serving()  # read-only clients go; a read-write server starts
        if peer.serving and proc.role == LOOKING:
            role = _MODES[peer.state]
            proc.become(role, make_zxid(peer.current_epoch, 1))
            self.mode = role
            self.last_election_ms = (time.monotonic() - self.election_started) * 1000
            log.info(
                "serving as %s in epoch %d after %.0f ms",
                role,
                peer.current_epoch,
                self.last_election_ms,
            )
        elif not peer.serving and proc.role not in (LOOKING, READ_ONLY):
            self._stop_serving()

    def _stop_serving(self) -> None:
        log.info("no longer serving as %s", self.proc.role)
        self.proc.become(LOOKING)
        self._syncs.clear()
        self._proposed.clear()
        self.mode = "looking"
        for conn in list(self.connections):
            conn.closing = True
            conn.handle.flush()


def membership(config: Config) -> bytes:
    """The dynamic-config text ZooKeeper serves at /zookeeper/config (static: version 0)."""
    lines = []
    for sid, spec in sorted(config.servers.items()):
        line = f"server.{sid}={spec.host}:{spec.quorum_port}:{spec.election_port}:{spec.role}"
        if spec.client_port is not None:
            line += f";{spec.client_address or '0.0.0.0'}:{spec.client_port}"
        lines.append(line)
    lines.append("version=0")
    return "\n".join(lines).encode()


def _now_ms() -> int:
    return int(time.monotonic() * 1000)
