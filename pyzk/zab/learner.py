"""The learner's side of ZAB: a follower or an observer (ZooKeeper's Learner).

Theory of operation
-------------------
The learner connects with FOLLOWERINFO, naming a fresh ``link`` that every packet of
this connection carries. LEADERINFO proposes an epoch: we accept it (persisted before we
answer) unless we already promised a newer one. Then the leader syncs us: TRUNC drops a
tail the leader never had, SNAP replaces our state, and the proposals that follow fill
our log. NEWLEADER makes us join the epoch (currentEpoch, persisted) and is acknowledged
only once everything before it is logged. UPTODATE says what is committed: we apply it
and start serving.

In broadcast a follower logs the proposals of each PROPOSALS packet and acknowledges
them (the ACK leaves only once they are on disk: the Ready contract; proposals logged
together get one ACK, for the last of them, since ACKs are cumulative), and applies on
COMMIT, in order. An observer never acknowledges: it logs and applies the committed
entries each INFORM carries.

A learner that hears nothing from its leader for syncLimit ticks (initLimit while
syncing), or loses the connection, goes back to LOOKING.
"""

from __future__ import annotations

from pyzk.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    FollowerInfo,
    Inform,
    LeaderInfo,
    Message,
    NewLeader,
    Notification,
    Ping,
    Proposal,
    Proposals,
    Snap,
    State,
    Trunc,
    UpToDate,
    epoch_of,
)
from pyzk.zab.peer import Peer, Role


class Learner(Role):
    def __init__(self, peer: Peer, leader: int, observer: bool, now: int) -> None:
        self.peer = peer
        self.leader = leader
        self.observer = observer
        self.link = peer.rng.randrange(1, 1 << 31)
        self.phase = "info"  # info -> epoch -> sync -> newleader -> broadcast
        self.commit_target = peer.committed
        self.last_heard = now
        self.newleader_zxid = 0
        self.synced: list[int] = []  # zxids logged during sync, acknowledged at NEWLEADER
        self.next_hello = now
        self._hello(now)

    def _hello(self, now: int) -> None:
        """(Re)send FOLLOWERINFO until the leader answers: it may not be leading yet."""
        p = self.peer
        p.send(
            self.leader, FollowerInfo(self.link, p.accepted_epoch, p.history.last, self.observer)
        )
        self.next_hello = now + p.timing.hello_ms

    @property
    def serving(self) -> bool:  # type: ignore[override]
        return self.phase == "broadcast"

    def tick(self, now: int) -> None:
        t = self.peer.timing
        limit = t.sync_limit if self.phase == "broadcast" else t.init_limit
        if now - self.last_heard > limit * t.tick_ms:
            self.peer.look(now)
        elif self.phase == "info" and now >= self.next_hello:
            self._hello(now)

    def disconnected(self, now: int, sid: int) -> None:
        if sid == self.leader:
            self.peer.look(now)

    def noticed(self, now: int, sender: int, n: Notification) -> None:
        """Our leader looking in a later round than the one that chose it has stepped
        down: look too, at once. (ZooKeeper's learners learn it as the leader closes
        their connections.) Waiting for the timeout instead lets the others elect
        without us again and again: when we hold proposals they lack, the leader they
        elect steps down as soon as we report them, and the election that would pick
        us never has us in it."""
        chose = self.peer.election.decision
        if (
            sender == self.leader
            and n.state == State.LOOKING
            and chose is not None
            and n.election_epoch > chose.election_epoch
        ):
            self.peer.look(now)

    def step(self, now: int, sender: int, msg: Message) -> None:
        if sender != self.leader or getattr(msg, "link", None) != self.link:
            return
        self.last_heard = now
        handler = _HANDLERS.get(type(msg))
        if handler is not None:
            handler(self, now, msg)

    # --- discovery and sync -----------------------------------------------------------

    def _leader_info(self, now: int, msg: Message) -> None:
        assert isinstance(msg, LeaderInfo)
        p = self.peer
        if self.phase != "info":
            return
        if msg.epoch > p.accepted_epoch:
            current = p.current_epoch
            p.accepted_epoch = msg.epoch
            p.persist_epochs()
        elif msg.epoch == p.accepted_epoch:
            current = -1  # already accepted: nothing new to promise
        else:
            p.look(now)  # we promised a newer epoch to someone else
            return
        self.phase = "epoch"
        p.send(self.leader, AckEpoch(self.link, current, p.history.last))

    def _diff(self, now: int, msg: Message) -> None:
        self.phase = "sync"

    def _trunc(self, now: int, msg: Message) -> None:
        assert isinstance(msg, Trunc)
        self.phase = "sync"
        self.peer.truncate(msg.zxid)
        self.commit_target = min(self.commit_target, msg.zxid)

    def _snap(self, now: int, msg: Message) -> None:
        assert isinstance(msg, Snap)
        self.phase = "sync"
        self.peer.install(msg)
        self.commit_target = msg.zxid

    def _new_leader(self, now: int, msg: Message) -> None:
        assert isinstance(msg, NewLeader)
        p = self.peer
        p.current_epoch = epoch_of(msg.zxid)
        p.persist_epochs()
        self.phase = "newleader"
        self.newleader_zxid = msg.zxid
        p.send(self.leader, Ack(self.link, msg.zxid))
        # What the sync brought of this epoch may be proposals the leader is still
        # counting acks for (we joined an established leader): without ours, those, and
        # every later one, might never reach a quorum. (ZooKeeper's learner acks each
        # proposal it logs during sync, too.) They are on disk: their Readies went first.
        epoch = epoch_of(msg.zxid)
        if not self.observer:
            for zxid in self.synced:
                if epoch_of(zxid) == epoch:
                    p.send(self.leader, Ack(self.link, zxid))
        self.synced = []

    def _up_to_date(self, now: int, msg: Message) -> None:
        assert isinstance(msg, UpToDate)
        self.phase = "broadcast"
        self.peer.settle_vote(self.leader)
        self.commit_target = max(self.commit_target, msg.zxid)
        self.peer.commit_to(self.commit_target)

    # --- broadcast --------------------------------------------------------------------

    def _proposal(self, now: int, msg: Message) -> None:
        assert isinstance(msg, Proposal)
        if self._log(msg.zxid, msg.payload):
            self._ack(msg.zxid)

    def _proposals(self, now: int, msg: Message) -> None:
        assert isinstance(msg, Proposals)
        if self._log_run(msg.zxid, msg.payloads):
            self._ack(msg.zxid + len(msg.payloads) - 1)  # cumulative: the whole packet

    def _log_run(self, first: int, payloads: list[bytes]) -> bool:
        """Log consecutive entries from ``first`` on, those we lack; any?"""
        logged = False
        for i, payload in enumerate(payloads):
            logged = self._log(first + i, payload) or logged
        return logged

    def _log(self, zxid: int, payload: bytes) -> bool:
        """Log an entry unless we have it; did we? (An observer's, logged in sync, are
        never acknowledged: see _new_leader.)"""
        p = self.peer
        if zxid <= p.history.last:
            return False  # covered by a snapshot we installed
        p.append(zxid, payload)
        if self.phase == "sync":
            self.synced.append(zxid)
        return True

    def _ack(self, zxid: int) -> None:
        if not self.observer and self.phase in ("newleader", "broadcast"):
            self.peer.ack(self.leader, Ack(self.link, zxid))

    def _commit(self, now: int, msg: Message) -> None:
        assert isinstance(msg, Commit)
        self.commit_target = max(self.commit_target, msg.zxid)
        if self.phase == "broadcast":
            self.peer.commit_to(self.commit_target)

    def _inform(self, now: int, msg: Message) -> None:
        assert isinstance(msg, Inform)
        self._log_run(msg.zxid, msg.payloads)
        self.commit_target = max(self.commit_target, msg.zxid + len(msg.payloads) - 1)
        if self.phase == "broadcast":
            self.peer.commit_to(self.commit_target)

    def _ping(self, now: int, msg: Message) -> None:
        assert isinstance(msg, Ping)
        self.peer.send(self.leader, Ping(self.link, self.peer.committed, msg.round))


_HANDLERS = {
    LeaderInfo: Learner._leader_info,
    Diff: Learner._diff,
    Trunc: Learner._trunc,
    Snap: Learner._snap,
    NewLeader: Learner._new_leader,
    UpToDate: Learner._up_to_date,
    Proposal: Learner._proposal,
    Proposals: Learner._proposals,
    Commit: Learner._commit,
    Inform: Learner._inform,
    Ping: Learner._ping,
}
