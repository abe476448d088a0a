"""The leader's side of ZAB: discovery, synchronisation, broadcast (ZooKeeper's Leader).

Theory of operation
-------------------
*Discovery.* Learners connect with FOLLOWERINFO (their accepted epoch). Once a quorum of
voters, this server included, has connected, the new epoch is one above every accepted
epoch seen; the leader accepts it itself and sends LEADERINFO. It then waits for a quorum
of ACKEPOCH; a learner that reports a more recent history than ours means the election
went wrong, and we step down.

*Synchronisation.* After a quorum of epoch acks, each learner gets DIFF, TRUNC or SNAP
(see sync.py), the entries it lacks, then NEWLEADER. When a quorum of voters has
acknowledged NEWLEADER, the leader is *established*: it joins the epoch (currentEpoch),
commits its whole history — every committed txn of the ensemble is in it, and the rest
becomes committed now — and tells the learners UPTODATE with its commit point.

*Broadcast.* A proposal gets the next zxid of the epoch, is logged here and sent to
every voting learner that is synced or syncing. It commits when a quorum of voters has
logged it (our own log counts once the shell says the entry is on disk), strictly in
zxid order; followers get COMMIT, observers INFORMs carrying the entries. An ACK is
cumulative: a learner logs its leader's proposals in the order they come, so "logged
Z" means every proposal up to Z, and a learner acknowledges a batch of them with one
ACK. What is committed is then the highest zxid that a quorum of voters has logged
(etcd's raft commits by match index the same way).

A learner that connects later goes through the same steps alone and joins broadcast.
The leader pings learners every half tick; if it is not established within initLimit
ticks, or stops hearing from a quorum for syncLimit ticks, it steps down.

*Leadership rounds* (for ``sync``). Stepping down on a timeout is not enough for a
sync: a leader that was paused (SIGSTOP, a VM stall) may be deposed, with a new leader
committing writes, and still find a sync in its socket buffer before its overdue tick
tells it so. So :meth:`Leader.confirm` starts a round: a ping carrying the round number,
which followers echo. A round is confirmed once a quorum of voters in this epoch, the
leader included, has echoed it (or a later one); a sync that arrived before the round
began is answered only then. A deposed leader never gets its round confirmed, since its
followers have left its epoch (etcd's ReadIndex does the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
    make_zxid,
)
from pyzk.zab.peer import Peer, Role
from pyzk.zab.sync import plan_sync

MAX_COUNTER = 0xFFFFFFFF  # a zxid counter at its limit forces a new epoch
BATCH_BYTES = 1 << 20  # payload bytes per PROPOSALS packet (one larger write goes alone)


@dataclass(slots=True)
class LearnerLink:
    link: int
    observer: bool
    last_heard: int
    phase: str = "info"  # info -> acked-epoch -> syncing -> synced
    last_zxid: int = 0
    acked_newleader: bool = False
    echoed: int = 0  # the newest leadership round it answered


class Leader(Role):
    def __init__(self, peer: Peer, now: int) -> None:
        self.peer = peer
        t = peer.timing
        self.epoch: int | None = None
        self.established = False
        self.learners: dict[int, LearnerLink] = {}
        self.connecting: dict[int, int] = {peer.sid: peer.accepted_epoch}
        self.epoch_acks: set[int] = {peer.sid}
        self.newleader_acks: set[int] = {peer.sid}
        # The newest proposal of this leadership each voter has logged (this server:
        # once the shell says so). A voter that disconnects keeps its entry: what it
        # logged stays logged.
        self.logged: dict[int, int] = {}
        self.counter = 0
        self.deadline = now + t.init_limit * t.tick_ms
        self.next_ping = now
        self.started = now
        peer.leaderships += 1
        self.term = peer.leaderships  # tells this leadership's rounds from another's
        self.round = 0  # the newest leadership round started
        self.confirmed = 0  # the newest round a quorum answered

    @property
    def serving(self) -> bool:  # type: ignore[override]
        return self.established

    # --- input ------------------------------------------------------------------------

    def step(self, now: int, sender: int, msg: Message) -> None:
        if isinstance(msg, FollowerInfo):
            self._follower_info(now, sender, msg)
            return
        lk = self.learners.get(sender)
        if lk is None or getattr(msg, "link", None) != lk.link:
            return  # not a learner of ours, or an older connection of it
        lk.last_heard = now
        if isinstance(msg, AckEpoch):
            self._ack_epoch(now, sender, lk, msg)
        elif isinstance(msg, Ack):
            self._ack(now, sender, lk, msg)
        elif isinstance(msg, Ping) and msg.round > lk.echoed:
            lk.echoed = msg.round
            self._update_confirmed()

    def tick(self, now: int) -> None:
        p, t = self.peer, self.peer.timing
        if not self.established:
            if now >= self.deadline:
                p.look(now)  # no quorum synced within initLimit
                return
        elif not self._heard_from_quorum(now):
            p.look(now)
            return
        if now >= self.next_ping:
            self.next_ping = now + max(t.tick_ms // 2, 1)
            for sid, lk in self.learners.items():
                p.send(sid, Ping(lk.link, p.committed, self.round))

    def disconnected(self, now: int, sid: int) -> None:
        self.learners.pop(sid, None)

    def persisted(self, zxids: list[int]) -> None:
        self._logged(self.peer.sid, zxids[-1])

    # --- discovery --------------------------------------------------------------------

    def _follower_info(self, now: int, sender: int, msg: FollowerInfo) -> None:
        p = self.peer
        if sender not in p.voters and sender not in p.observers:
            return
        if msg.observer != (sender in p.observers):
            return  # it claims a role the configuration does not give it
        known = self.learners.get(sender)
        if known is not None and known.link == msg.link:
            known.last_heard = now
            if known.phase == "info" and self.epoch is not None:
                p.send(sender, LeaderInfo(msg.link, self.epoch))  # our answer was lost
            return
        self.learners[sender] = LearnerLink(msg.link, msg.observer, now, last_zxid=msg.last_zxid)
        if self.epoch is not None:
            p.send(sender, LeaderInfo(msg.link, self.epoch))
            return
        if not msg.observer:
            self.connecting[sender] = msg.accepted_epoch
        if p.is_quorum(set(self.connecting)):
            self._decide_epoch()

    def noticed(self, now: int, sender: int, n: Notification) -> None:
        """A voter that promised an epoch above ours can never join us: make way for an
        election, which will pick an epoch above its promise."""
        if self.epoch is None:
            return  # not picked yet: it will be above every promise heard of, this one too
        promised_more = n.accepted_epoch > self.epoch
        if n.state == State.LOOKING and sender in self.peer.voters and promised_more:
            self.peer.look(now)

    def _decide_epoch(self) -> None:
        p = self.peer
        # Above every accepted epoch we know of, not only the connected quorum's.
        seen = max(self.connecting.values())
        self.epoch = max(seen, p.election.max_accepted_seen) + 1
        p.accepted_epoch = self.epoch
        p.persist_epochs()
        for sid, lk in self.learners.items():
            p.send(sid, LeaderInfo(lk.link, self.epoch))

    def _ack_epoch(self, now: int, sender: int, lk: LearnerLink, msg: AckEpoch) -> None:
        p = self.peer
        if lk.phase != "info":
            return
        ours = (p.current_epoch, p.history.last)
        if msg.current_epoch != -1 and (msg.current_epoch, msg.last_zxid) > ours:
            p.look(now)  # a learner is ahead of us: this election was wrong
            return
        lk.phase, lk.last_zxid = "acked-epoch", msg.last_zxid
        if self.established:
            self._sync(sender, lk)
            return
        if not lk.observer:
            self.epoch_acks.add(sender)
        if p.is_quorum(self.epoch_acks):
            for sid, other in self.learners.items():
                if other.phase == "acked-epoch":
                    self._sync(sid, other)

    # --- synchronisation --------------------------------------------------------------

    def _sync(self, sid: int, lk: LearnerLink) -> None:
        p = self.peer
        assert self.epoch is not None
        # Before the epoch is established everything we logged will be committed, so
        # learners get all of it; after, observers only what is committed (they learn
        # the rest from INFORMs).
        upto = p.committed if (self.established and lk.observer) else p.history.last
        plan = plan_sync(p.history, p.committed, lk.last_zxid, upto)
        if plan.kind == "diff":
            p.send(sid, Diff(lk.link, plan.zxid))
        elif plan.kind == "trunc":
            p.send(sid, Trunc(lk.link, plan.zxid))
        else:
            p.send(sid, Snap(lk.link, plan.zxid))
        for zxid, payload in plan.entries:
            p.send(sid, Proposal(lk.link, zxid, payload))
        p.send(sid, NewLeader(lk.link, make_zxid(self.epoch, 0)))
        lk.phase = "syncing"  # from now on it receives the broadcast too

    def _ack(self, now: int, sender: int, lk: LearnerLink, msg: Ack) -> None:
        assert self.epoch is not None
        if msg.zxid == make_zxid(self.epoch, 0) and lk.phase == "syncing":
            lk.acked_newleader = True
            if self.established:
                self._up_to_date(sender, lk)
            else:
                if not lk.observer:
                    self.newleader_acks.add(sender)
                if self.peer.is_quorum(self.newleader_acks):
                    self._establish()
            return
        if not lk.observer and epoch_of(msg.zxid) == self.epoch:
            self._logged(sender, msg.zxid)

    def _establish(self) -> None:
        p = self.peer
        assert self.epoch is not None
        self.established = True
        p.current_epoch = self.epoch
        p.persist_epochs()
        p.settle_vote(p.sid)
        p.commit_to(p.history.last)
        for sid, lk in self.learners.items():
            if lk.acked_newleader:
                self._up_to_date(sid, lk)

    def _up_to_date(self, sid: int, lk: LearnerLink) -> None:
        lk.phase = "synced"
        self.peer.send(sid, UpToDate(lk.link, self.peer.committed))

    # --- broadcast --------------------------------------------------------------------

    def propose(self, payloads: list[bytes]) -> int | None:
        """Replicate ``payloads`` as consecutive proposals: the first zxid, or None if
        this leader takes none of them (not established, or the epoch's counter would
        run out)."""
        if not self.established or self.counter + len(payloads) > MAX_COUNTER:
            return None
        assert self.epoch is not None
        first = make_zxid(self.epoch, self.counter + 1)
        self.counter += len(payloads)
        p = self.peer
        for i, payload in enumerate(payloads):
            p.append(first + i, payload)
        batches = list(_batches(first, payloads))
        for sid, lk in self.learners.items():
            if not lk.observer and lk.phase in ("syncing", "synced"):
                for zxid, batch in batches:
                    p.send(sid, Proposals(lk.link, zxid, batch))
        return first

    def _logged(self, sid: int, zxid: int) -> None:
        if zxid > self.logged.get(sid, 0):
            self.logged[sid] = zxid
            self._try_commit()

    def _try_commit(self) -> None:
        """Commit up to the highest zxid a quorum of voters has logged.

        Followers get one COMMIT for it (a learner applies everything up to it);
        observers the entries themselves in INFORMs, since they never saw the proposals.
        """
        p = self.peer
        if not self.established:
            return  # the history commits as a whole when the epoch is established
        logged = sorted((z for sid, z in self.logged.items() if sid in p.voters), reverse=True)
        if len(logged) < p.quorum or logged[p.quorum - 1] <= p.committed:
            return
        committed = p.commit_to(logged[p.quorum - 1])
        if not committed:
            return
        last = committed[-1][0]
        informs: list[tuple[int, list[bytes]]] | None = None
        for sid, lk in self.learners.items():
            if lk.phase not in ("syncing", "synced"):
                continue
            if lk.observer:
                if informs is None:
                    informs = [b for run in _runs(committed) for b in _batches(*run)]
                for zxid, batch in informs:
                    p.send(sid, Inform(lk.link, zxid, batch))
            else:
                p.send(sid, Commit(lk.link, last))

    # --- leadership rounds ------------------------------------------------------------

    def confirm(self) -> tuple[int, int] | None:
        """Start a leadership round: (term, round), None if we are not established."""
        if not self.established:
            return None
        p = self.peer
        self.round += 1
        for sid, lk in self.learners.items():
            if lk.phase == "synced" and not lk.observer:
                p.send(sid, Ping(lk.link, p.committed, self.round))
        self._update_confirmed()  # at once when we are the only voter
        return self.term, self.round

    def _update_confirmed(self) -> None:
        """The newest round that a quorum of voters (this one at its newest) answered."""
        voters = self.peer.voters
        echoes = sorted(
            (
                lk.echoed
                for sid, lk in self.learners.items()
                if lk.phase == "synced" and sid in voters
            ),
            reverse=True,
        )
        others = self.peer.quorum - 1  # a majority, less this server
        if others == 0:
            best = self.round
        elif len(echoes) >= others:
            best = echoes[others - 1]
        else:
            return
        self.confirmed = max(self.confirmed, best)

    def _heard_from_quorum(self, now: int) -> bool:
        t = self.peer.timing
        limit = t.sync_limit * t.tick_ms
        heard = {self.peer.sid} | {
            sid
            for sid, lk in self.learners.items()
            if lk.phase == "synced" and not lk.observer and now - lk.last_heard <= limit
        }
        return self.peer.is_quorum(heard)


def _batches(first: int, payloads: list[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    """Split consecutive proposals into packets of at most BATCH_BYTES of payload."""
    start, size = 0, 0
    for i, payload in enumerate(payloads):
        if size and size + len(payload) > BATCH_BYTES:
            yield first + start, payloads[start:i]
            start, size = i, 0
        size += len(payload)
    if start == 0:
        yield first, payloads
    else:
        yield first + start, payloads[start:]


def _runs(entries: list[tuple[int, bytes]]) -> Iterator[tuple[int, list[bytes]]]:
    """Entries as runs of consecutive zxids: (first zxid, payloads)."""
    first, payloads = entries[0][0], [entries[0][1]]
    for zxid, payload in entries[1:]:
        if zxid != first + len(payloads):
            yield first, payloads
            first, payloads = zxid, []
        payloads.append(payload)
    yield first, payloads
