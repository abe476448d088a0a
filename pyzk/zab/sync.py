"""How a leader brings a learner to its history: DIFF, TRUNC or SNAP (LearnerHandler.syncFollower).

The leader holds every committed txn of the ensemble (election picks the most
up-to-date server of a quorum, and every commit reached a quorum), so a learner's log is
the leader's history up to some point, perhaps followed by proposals that were never
committed. The learner reports only its last zxid ``p``:

* ``p`` is in the leader's history: **DIFF**, then the entries after ``p``;
* ``p`` is not, but later than what the leader keeps in memory: the learner has a tail
  the leader never had. **TRUNC** it to the leader's last entry before ``p``, then DIFF;
* ``p`` is older than the leader's in-memory history: **SNAP**, the leader's state as
  of its last committed zxid, then the entries after that.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyzk.zab.history import Entry, History


@dataclass(frozen=True, slots=True)
class SyncPlan:
    kind: str  # "diff", "trunc" or "snap"
    zxid: int  # DIFF from / TRUNC to / SNAP at
    entries: list[Entry]


def plan_sync(history: History, committed: int, peer_last: int, upto: int) -> SyncPlan:
    """The sync for a learner whose last zxid is ``peer_last``, up to ``upto`` inclusive."""
    if history.has(peer_last):
        return SyncPlan("diff", peer_last, history.between(peer_last, upto))
    if peer_last > history.base:
        t = history.floor(peer_last)
        return SyncPlan("trunc", t, history.between(t, upto))
    return SyncPlan("snap", committed, history.between(committed, upto))
