"""One ensemble member's consensus state machine: election, then a ZAB role.

Theory of operation
-------------------
In the style of etcd's raft ``RawNode``: the shell feeds the peer with
:meth:`Peer.step` (a message from another server), :meth:`Peer.tick` (time passes),
:meth:`Peer.propose` (a txn to replicate, on the leader) and :meth:`Peer.disconnected`
(a quorum link broke); the peer accumulates what must happen in a
:class:`~pyzk.zab.history.Ready` that the shell takes with :meth:`Peer.ready`, carries
out in the documented order (persist, apply, send) and acknowledges with
:meth:`Peer.advance`. No sockets, no clock, no disk here: time comes in as ``now``
(milliseconds) and randomness from the ``rng`` given at construction.

The peer is LOOKING (running :class:`~pyzk.zab.election.Election`) until the election
decides, then becomes a :class:`~pyzk.zab.leader.Leader` or a
:class:`~pyzk.zab.learner.Learner` (follower or observer). Any role that loses its
quorum or its leader goes back to LOOKING.

Epochs and zxids: a zxid is ``epoch << 32 | counter``. ``accepted_epoch`` is the newest
epoch this server promised to follow (LEADERINFO), ``current_epoch`` the newest it
joined (NEWLEADER). Both are put in the Ready to persist before the messages that act
on them go out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pyzk.zab.election import Election, ElectionTiming, is_quorum, majority
from pyzk.zab.history import Entry, Epochs, History, Install, Ready, Truncate
from pyzk.zab.messages import Ack, Message, Notification, Snap, State, Vote, counter_of


@dataclass(frozen=True, slots=True)
class Timing:
    tick_ms: int = 2000
    init_limit: int = 10  # ticks to sync with a new leader
    sync_limit: int = 5  # ticks a follower may go unheard
    election: ElectionTiming = field(default_factory=ElectionTiming)
    window: int = 500  # committed entries kept for DIFF syncs (ZooKeeper's commitLogCount)
    # How often a learner says hello again while its leader has not answered: the leader
    # may not have decided yet (ZooKeeper retries its connection every 100 ms,
    # leaderConnectDelayDuringRetryMs). Waiting half a tick instead cost failovers 1 s.
    hello_ms: int = 100


@dataclass(slots=True)
class Durable:
    """What a server has on disk when it starts (the shell reads it)."""

    accepted_epoch: int = 0
    current_epoch: int = 0
    base: int = 0  # the zxid of the snapshot the entries follow
    entries: list[Entry] = field(default_factory=list)


class Peer:
    def __init__(
        self,
        sid: int,
        voters: frozenset[int],
        observers: frozenset[int],
        durable: Durable,
        timing: Timing,
        rng: random.Random,
        now: int,
    ) -> None:
        self.sid = sid
        self.voters = voters
        self.observers = observers
        self.timing = timing
        self.rng = rng
        self.accepted_epoch = durable.accepted_epoch
        self.current_epoch = durable.current_epoch
        self.history = History(durable.base, list(durable.entries), timing.window)
        # At start the shell has applied everything it logged (as ZooKeeper's loadData).
        self.committed = self.history.last
        self.state = State.LOOKING
        self.election = Election(sid, voters, timing.election)
        self.role: Role | None = None
        self.vote: Vote | None = None  # the vote we settled on, when not LOOKING
        self.leader_id: int | None = None
        self._ready = Ready()
        self.leaderships = 0  # how many times this server became leader (Leader.term)
        self._look(now)

    # --- input ------------------------------------------------------------------------

    def tick(self, now: int) -> None:
        if self.role is None:
            self._send_all(self.election.tick(now))
            self._maybe_decided(now)
        else:
            self.role.tick(now)

    def step(self, now: int, sender: int, msg: Message) -> None:
        if isinstance(msg, Notification):
            out = self.election.receive(now, sender, msg, self.state, self.vote)
            self._send_all(out)
            if self.role is None:
                self._maybe_decided(now)
            else:
                self.role.noticed(now, sender, msg)
            return
        if self.role is not None:
            self.role.step(now, sender, msg)

    def disconnected(self, now: int, sid: int) -> None:
        if self.role is not None:
            self.role.disconnected(now, sid)

    def propose(self, payloads: list[bytes]) -> int | None:
        """Replicate txns (leader only, once established) with consecutive zxids: the
        first one's, or None when none was taken."""
        from pyzk.zab.leader import Leader

        if isinstance(self.role, Leader):
            return self.role.propose(payloads)
        return None

    def confirm_leadership(self) -> tuple[int, int] | None:
        """Leader only: start a leadership round (see Leader.confirm): (term, round)."""
        from pyzk.zab.leader import Leader

        if isinstance(self.role, Leader):
            return self.role.confirm()
        return None

    def confirmed(self, token: tuple[int, int]) -> bool | None:
        """Has a quorum answered round ``token``? None: that leadership is over."""
        from pyzk.zab.leader import Leader

        role = self.role
        if not isinstance(role, Leader) or role.term != token[0]:
            return None
        return role.confirmed >= token[1]

    @property
    def serving(self) -> bool:
        """Established leader, or a learner in the broadcast phase."""
        return self.role is not None and self.role.serving

    # --- output -----------------------------------------------------------------------

    def ready(self) -> Ready:
        r, self._ready = self._ready, Ready()
        # Made while leading in broadcast, all of it: a role change marks a Ready with
        # the new state.
        broadcasting = r.state is None and self.state == State.LEADING and self.serving
        r.send_first = broadcasting and r.promises_nothing()
        return r

    def pending(self) -> Ready:
        """What the next :meth:`ready` returns so far (to look at, not to change)."""
        return self._ready

    def has_ready(self) -> bool:
        return not self._ready.empty()

    def advance(self, ready: Ready) -> None:
        """The shell carried ``ready`` out: its entries are on disk."""
        appended = ready.appended()
        if self.role is not None and appended:
            self.role.persisted(appended)

    # --- helpers for the roles --------------------------------------------------------

    def send(self, to: int, msg: Message) -> None:
        self._ready.messages.append((to, msg))

    def ack(self, to: int, ack: Ack) -> None:
        """Send a broadcast ACK, folded into the one just before it (ACKs are cumulative).

        An ACK of counter 0 acknowledges NEWLEADER, not a proposal: it is never folded.
        """
        msgs = self._ready.messages
        if msgs:
            last_to, last = msgs[-1]
            if (
                last_to == to
                and isinstance(last, Ack)
                and last.link == ack.link
                and counter_of(last.zxid) != 0
            ):
                msgs[-1] = (to, ack)
                return
        msgs.append((to, ack))

    def _send_all(self, msgs: list[tuple[int, Notification]]) -> None:
        self._ready.messages.extend(msgs)

    def persist_epochs(self) -> None:
        self._ready.ops.append(Epochs(self.accepted_epoch, self.current_epoch))

    def append(self, zxid: int, payload: bytes) -> None:
        self.history.append(zxid, payload)
        self._ready.add_append((zxid, payload))

    def commit_to(self, zxid: int) -> list[Entry]:
        """Apply every logged entry up to ``zxid`` not applied yet; those entries."""
        if zxid <= self.committed:
            return []
        entries = self.history.between(self.committed, zxid)
        if entries:
            self._ready.add_apply(entries)
            self.committed = entries[-1][0]
            self.history.trim(self.committed)
        return entries

    def truncate(self, zxid: int) -> None:
        self.history.truncate(zxid)
        self._ready.ops.append(Truncate(zxid))
        # The shell reloads its state from what remains logged: all of it is applied.
        self.committed = self.history.last

    def install(self, snap: Snap) -> None:
        self.history.reset(snap.zxid)
        self._ready.ops.append(Install(snap))
        self.committed = snap.zxid

    def settle_vote(self, leader: int) -> None:
        """We joined ``leader``'s epoch: answer LOOKING servers with it.

        A learner may join a leader again without a new election (the leader won the
        next round too); the vote it answers with must name the epoch it is in now, or
        servers that do see the new election could not match the two.
        """
        self.vote = Vote(self.current_epoch, self.history.last, leader)

    def look(self, now: int) -> None:
        """Leave the current role and start a new election round."""
        self._look(now)

    def _look(self, now: int) -> None:
        self.role = None
        self.vote = None
        self.leader_id = None
        self._set_state(State.LOOKING)
        initial = Vote(self.current_epoch, self.history.last, self.sid)
        self._send_all(self.election.start(now, initial, self.accepted_epoch))

    def _set_state(self, state: State) -> None:
        if state != self.state or state == State.LOOKING:
            self.state = state
            self._ready.state = state

    def _maybe_decided(self, now: int) -> None:
        d = self.election.decision
        if d is None or self.election.looking:
            return
        from pyzk.zab.leader import Leader
        from pyzk.zab.learner import Learner

        self.vote = d.vote
        self.leader_id = d.vote.leader
        self._set_state(d.state)
        if d.state == State.LEADING:
            self.role = Leader(self, now)
        else:
            self.role = Learner(self, d.vote.leader, d.state == State.OBSERVING, now)

    @property
    def quorum(self) -> int:
        """How many voters make a majority."""
        return majority(self.voters)

    def is_quorum(self, members: set[int]) -> bool:
        return is_quorum(members, self.voters)


class Role:
    """What a leader or a learner does with the peer's input."""

    serving = False

    def tick(self, now: int) -> None:
        raise NotImplementedError

    def step(self, now: int, sender: int, msg: Message) -> None:
        raise NotImplementedError

    def disconnected(self, now: int, sid: int) -> None:
        raise NotImplementedError

    def persisted(self, zxids: list[int]) -> None:
        """Entries of this server's own log reached disk."""

    def noticed(self, now: int, sender: int, n: Notification) -> None:
        """An election notification reached us while we hold this role."""
