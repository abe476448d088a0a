"""Fast leader election as a pure state machine (ZooKeeper's FastLeaderElection).

Theory of operation
-------------------
A LOOKING server votes for itself — (its currentEpoch, its last logged zxid, its id) —
and sends the vote to every voter with its *logical clock* (the election round). On
each notification from a LOOKING voter:

* a newer round: adopt the round, forget this round's votes, and vote for the better of
  the sender's vote and our own initial vote;
* an older round: ignore it (the sender will hear our newer round from us);
* our round: adopt the sender's vote if it beats ours (higher epoch, then zxid, then id).

Once the votes recorded for this round give a quorum for our proposal, we wait
``finalize_wait_ms`` for a better vote; if none comes, the proposal wins: we lead if we
are the proposed leader, else follow (or observe).

A server that is already FOLLOWING or LEADING answers a LOOKING server with the vote it
settled on. A LOOKING server that sees a quorum of such answers agree on a leader, and
that leader itself say it is LEADING, joins it without a new election: a restarted
server joins the running ensemble instead of forcing an election.

Observers never vote: voters ignore their votes and answer them with their current vote,
and an observer's own initial vote loses to every voter's.

Votes are re-sent with exponential backoff while nothing is heard. Time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyzk.zab.messages import Notification, State, Vote

# A vote no real vote loses to (an observer's initial vote; ZooKeeper's Long.MIN_VALUE).
NO_VOTE = Vote(-(1 << 63), -(1 << 63), -(1 << 63))


def majority(voters: frozenset[int]) -> int:
    """How many voters make a quorum (ZooKeeper's QuorumMaj): more than half of them."""
    return len(voters) // 2 + 1


def is_quorum(members: set[int], voters: frozenset[int]) -> bool:
    """Do ``members`` include a quorum of ``voters``? (Others' say does not count.)"""
    return len(members & voters) >= majority(voters)


@dataclass(frozen=True, slots=True)
class ElectionTiming:
    finalize_wait_ms: int = 200  # FastLeaderElection.finalizeWait
    max_resend_ms: int = 60000  # maxNotificationInterval


@dataclass(frozen=True, slots=True)
class Decision:
    vote: Vote
    state: State  # LEADING, FOLLOWING or OBSERVING
    election_epoch: int


@dataclass(slots=True)
class _Heard:
    election_epoch: int
    vote: Vote
    state: State


class Election:
    """One server's side of leader election; reusable across rounds."""

    def __init__(self, sid: int, voters: frozenset[int], timing: ElectionTiming) -> None:
        self.sid = sid
        self.voters = voters
        self.timing = timing
        self.logical_clock = 0
        self.proposed = NO_VOTE
        self.initial = NO_VOTE
        self.looking = False
        self.decision: Decision | None = None  # the last round's outcome
        self._recv: dict[int, _Heard] = {}
        self._out_of_election: dict[int, _Heard] = {}
        self._finalize_at: int | None = None
        self._resend_ms = timing.finalize_wait_ms
        self._resend_at = 0
        self.accepted_epoch = 0  # ours, sent with every notification
        self.max_accepted_seen = 0  # the highest acceptedEpoch any voter told us of

    @property
    def is_voter(self) -> bool:
        return self.sid in self.voters

    # --- the LOOKING side -------------------------------------------------------------

    def start(self, now: int, initial: Vote, accepted_epoch: int) -> list[tuple[int, Notification]]:
        """Begin a new round with our own vote (NO_VOTE for an observer)."""
        self.logical_clock += 1
        self.accepted_epoch = accepted_epoch
        self.max_accepted_seen = max(self.max_accepted_seen, accepted_epoch)
        self.initial = initial if self.is_voter else NO_VOTE
        self.proposed = self.initial
        self.looking = True
        self.decision = None
        self._recv.clear()
        self._out_of_election.clear()
        self._finalize_at = None
        self._resend_ms = self.timing.finalize_wait_ms
        self._resend_at = now + self._resend_ms
        return self._broadcast()

    def _notification(self, state: State | None = None) -> Notification:
        return Notification(
            state or State.LOOKING, self.logical_clock, self.proposed, self.accepted_epoch
        )

    def _broadcast(self) -> list[tuple[int, Notification]]:
        n = self._notification()
        return [(v, n) for v in sorted(self.voters) if v != self.sid]

    def tick(self, now: int) -> list[tuple[int, Notification]]:
        """Resend when nothing was heard; decide when the finalize wait is over."""
        if not self.looking:
            return []
        if self._finalize_at is not None and now >= self._finalize_at:
            self._decide(self.proposed, self.logical_clock)
            return []
        if now >= self._resend_at:
            self._resend_ms = min(self._resend_ms * 2, self.timing.max_resend_ms)
            self._resend_at = now + self._resend_ms
            return self._broadcast()
        return []

    def receive(
        self, now: int, sender: int, n: Notification, my_state: State, my_vote: Vote | None
    ) -> list[tuple[int, Notification]]:
        """A notification from ``sender``; returns notifications to send.

        ``my_state``/``my_vote`` are what a server that is not LOOKING answers with.
        """
        if sender not in self.voters:
            # Observers' votes do not count; answer with what we know.
            vote = self.proposed if self.looking else (my_vote or self.proposed)
            state = State.LOOKING if self.looking else my_state
            epoch = self.logical_clock if self.looking else self._settled_epoch()
            return [(sender, Notification(state, epoch, vote, self.accepted_epoch))]
        self.max_accepted_seen = max(self.max_accepted_seen, n.accepted_epoch)
        if not self.looking:
            # A voter has no use for an observer's vote (it only answers observers, so
            # answering it back would go on forever).
            if n.state == State.LOOKING and my_vote is not None and self.is_voter:
                answer = Notification(my_state, self._settled_epoch(), my_vote, self.accepted_epoch)
                return [(sender, answer)]
            return []
        self._resend_ms = self.timing.finalize_wait_ms  # we heard something
        self._resend_at = now + self._resend_ms
        if n.vote.leader not in self.voters:
            return []
        if n.state == State.LOOKING:
            return self._from_looking(now, sender, n)
        if n.state in (State.FOLLOWING, State.LEADING):
            self._from_settled(sender, n)
        return []

    def _settled_epoch(self) -> int:
        return self.decision.election_epoch if self.decision else self.logical_clock

    def _from_looking(
        self, now: int, sender: int, n: Notification
    ) -> list[tuple[int, Notification]]:
        out: list[tuple[int, Notification]] = []
        if n.election_epoch > self.logical_clock:
            self.logical_clock = n.election_epoch
            self._recv.clear()
            self.proposed = n.vote if n.vote.beats(self.initial) else self.initial
            self._finalize_at = None
            out = self._broadcast()
        elif n.election_epoch < self.logical_clock:
            # The sender lags: tell it about our round. Not from an observer: a voter
            # only answers an observer, so that would be an endless ping-pong (each of
            # the observer's resends starting another one).
            return [(sender, self._notification())] if self.is_voter else []
        elif n.vote.beats(self.proposed):
            self.proposed = n.vote
            self._finalize_at = None
            out = self._broadcast()
        elif self.is_voter and self.proposed.beats(n.vote):
            # The sender has not taken our vote: it may have got it while still following
            # the old leader (servers notice a failure at slightly different moments).
            # FastLeaderElection waits for a resend (200 ms and up); telling it now saves
            # that wait. It adopts the better vote, so this cannot go back and forth.
            out = [(sender, self._notification())]
        self._recv[sender] = _Heard(n.election_epoch, n.vote, n.state)
        if self._finalize_at is None and self._has_quorum_for(self.proposed):
            self._finalize_at = now + self.timing.finalize_wait_ms
        return out

    def _has_quorum_for(self, vote: Vote) -> bool:
        agree = {
            s
            for s, h in self._recv.items()
            if h.vote == vote and h.election_epoch == self.logical_clock
        }
        if self.is_voter and self.proposed == vote:
            agree.add(self.sid)
        return is_quorum(agree, self.voters)

    def _from_settled(self, sender: int, n: Notification) -> None:
        heard = _Heard(n.election_epoch, n.vote, n.state)
        if n.election_epoch == self.logical_clock:
            self._recv[sender] = heard
            if self._settled_quorum(self._recv, n) and self._check_leader(self._recv, n):
                self._decide(n.vote, n.election_epoch)
                return
        self._out_of_election[sender] = heard
        if self._settled_quorum(self._out_of_election, n) and self._check_leader(
            self._out_of_election, n
        ):
            self.logical_clock = n.election_epoch
            self._decide(n.vote, n.election_epoch)

    def _settled_quorum(self, heard: dict[int, _Heard], n: Notification) -> bool:
        # Settled votes match on leader and epoch only (Vote.equals for non-LOOKING).
        agree = {
            s
            for s, h in heard.items()
            if h.vote.leader == n.vote.leader and h.vote.peer_epoch == n.vote.peer_epoch
        }
        return is_quorum(agree, self.voters)

    def _check_leader(self, heard: dict[int, _Heard], n: Notification) -> bool:
        """The proposed leader itself must say it leads (or be us, in this round)."""
        leader = n.vote.leader
        if leader != self.sid:
            h = heard.get(leader)
            return h is not None and h.state == State.LEADING
        return self.logical_clock == n.election_epoch

    def _decide(self, vote: Vote, election_epoch: int) -> None:
        if vote.leader == self.sid:
            state = State.LEADING
        elif self.is_voter:
            state = State.FOLLOWING
        else:
            state = State.OBSERVING
        self.decision = Decision(vote, state, election_epoch)
        self.proposed = vote
        self.looking = False
        self._finalize_at = None
