"""Messages between ensemble members: election notifications and ZAB's quorum packets.

Plain frozen dataclasses; :func:`encode` and :func:`decode` give their wire form, a
msgpack array ``[version, kind, field, ...]``. Txn payloads are opaque bytes here: the
consensus core never looks inside a transaction.

Every quorum packet between a leader and a learner carries ``link``, a number the learner
chose when it connected (FOLLOWERINFO). A packet with another link belongs to an older
connection and is ignored, so nothing from a previous leader or session can be mistaken
for the current one, whatever the transport delivers late.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

import msgpack

# 2: proposals broadcast in batches (PROPOSALS, INFORM of several entries) and cumulative
# ACKs; members speaking 1 cannot replicate with it, so they refuse each other's hello.
WIRE_VERSION = 2


class State(IntEnum):
    """A server's role, as ZooKeeper's ServerState."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


@dataclass(frozen=True, slots=True, order=True)
class Vote:
    """A proposed leader with what it knows (FastLeaderElection's Vote)."""

    peer_epoch: int  # the candidate's currentEpoch
    zxid: int  # the candidate's last logged zxid
    leader: int  # the candidate's server id

    def beats(self, other: Vote) -> bool:
        """Higher epoch, then higher zxid, then higher id (totalOrderPredicate)."""
        return (self.peer_epoch, self.zxid, self.leader) > (
            other.peer_epoch,
            other.zxid,
            other.leader,
        )


# --- election (port 3888) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    state: State
    election_epoch: int  # the sender's logical clock
    vote: Vote
    # The sender's acceptedEpoch. ZooKeeper's notifications lack it; a leader must pick an
    # epoch above every voter's, or a voter that promised a newer epoch to a failed
    # candidate could never join (see Leader._decide_epoch).
    accepted_epoch: int = 0


# --- ZAB (port 2888) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FollowerInfo:
    """A learner introduces itself to its leader: discovery starts."""

    link: int
    accepted_epoch: int
    last_zxid: int
    observer: bool


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    link: int
    epoch: int  # the new epoch the leader proposes


@dataclass(frozen=True, slots=True)
class AckEpoch:
    link: int
    current_epoch: int
    last_zxid: int


@dataclass(frozen=True, slots=True)
class Diff:
    """Sync by difference: the proposals that follow are what the learner lacks."""

    link: int
    zxid: int


@dataclass(frozen=True, slots=True)
class Trunc:
    """Sync by truncation: drop every logged entry after ``zxid``, then take the DIFF."""

    link: int
    zxid: int


@dataclass(frozen=True, slots=True)
class Snap:
    """Sync by snapshot: replace the state with the leader's as of ``zxid``.

    The core sends it without a body; the shell fills ``state`` with the serialised
    state as of ``zxid`` when it sends the packet.
    """

    link: int
    zxid: int
    state: bytes = b""


@dataclass(frozen=True, slots=True)
class Proposal:
    link: int
    zxid: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Proposals:
    """Consecutive proposals of one epoch in one packet: zxids ``zxid``, ``zxid`` + 1...

    The leader's broadcast: a batch of writes costs each learner one packet, not one
    per write.
    """

    link: int
    zxid: int  # the first proposal's
    payloads: list[bytes]


@dataclass(frozen=True, slots=True)
class Commit:
    link: int
    zxid: int


@dataclass(frozen=True, slots=True)
class Inform:
    """Committed entries for an observer (it never sees proposals): zxids ``zxid``,
    ``zxid`` + 1..., one packet per batch, as PROPOSALS."""

    link: int
    zxid: int  # the first entry's
    payloads: list[bytes]


@dataclass(frozen=True, slots=True)
class NewLeader:
    link: int
    zxid: int  # epoch << 32: the start of the new epoch


@dataclass(frozen=True, slots=True)
class Ack:
    link: int
    zxid: int


@dataclass(frozen=True, slots=True)
class UpToDate:
    """Synchronisation is over: everything up to ``zxid`` is committed; start serving."""

    link: int
    zxid: int


@dataclass(frozen=True, slots=True)
class Ping:
    """Leader heartbeat; a learner answers with a Ping of its own, echoing ``round``."""

    link: int
    zxid: int  # the sender's last committed zxid
    round: int = 0  # the leader's leadership round (see Leader.confirm)


Message = (
    Notification
    | FollowerInfo
    | LeaderInfo
    | AckEpoch
    | Diff
    | Trunc
    | Snap
    | Proposal
    | Commit
    | Inform
    | NewLeader
    | Ack
    | UpToDate
    | Ping
    | Proposals
)

_KINDS: list[type] = [
    Notification,
    FollowerInfo,
    LeaderInfo,
    AckEpoch,
    Diff,
    Trunc,
    Snap,
    Proposal,
    Commit,
    Inform,
    NewLeader,
    Ack,
    UpToDate,
    Ping,
    Proposals,
]
_KIND_OF = {cls: i for i, cls in enumerate(_KINDS)}
# Field names per kind (dataclasses.astuple would deep-copy every payload).
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in _KINDS}


class BadMessage(ValueError):
    """Bytes from a peer that are not a message of ours."""


# What each field must be, checked when a packet is decoded: a malformed packet drops
# its link there, instead of failing later in the log writer or the tree.
Check = Callable[[Any], bool]


def is_int(v: Any) -> bool:
    return type(v) is int


def is_bytes(v: Any) -> bool:
    return type(v) is bytes


def is_str(v: Any) -> bool:
    return type(v) is str


def is_bool(v: Any) -> bool:
    return type(v) is bool


def list_of(check: Check) -> Check:
    return lambda v: type(v) is list and all(check(x) for x in v)


def check_fields(cls: type, body: list[Any], checks: tuple[Check, ...]) -> None:
    """BadMessage unless ``body`` has one value per check, each passing it."""
    if len(body) != len(checks):
        raise BadMessage(f"{cls.__name__} with {len(body)} fields")
    for value, check in zip(body, checks, strict=True):
        if not check(value):
            raise BadMessage(f"{cls.__name__} with a malformed field: {value!r:.40}")


_CHECKS: dict[type, tuple[Check, ...]] = {
    Notification: (is_int,) * 6,
    FollowerInfo: (is_int, is_int, is_int, is_bool),
    LeaderInfo: (is_int, is_int),
    AckEpoch: (is_int, is_int, is_int),
    Diff: (is_int, is_int),
    Trunc: (is_int, is_int),
    Snap: (is_int, is_int, is_bytes),
    Proposal: (is_int, is_int, is_bytes),
    Commit: (is_int, is_int),
    Inform: (is_int, is_int, list_of(is_bytes)),
    NewLeader: (is_int, is_int),
    Ack: (is_int, is_int),
    UpToDate: (is_int, is_int),
    Ping: (is_int, is_int, is_int),
    Proposals: (is_int, is_int, list_of(is_bytes)),
}


def encode(msg: Message) -> bytes:
    if isinstance(msg, Notification):
        v = msg.vote
        body: list[Any] = [
            int(msg.state),
            msg.election_epoch,
            v.peer_epoch,
            v.zxid,
            v.leader,
            msg.accepted_epoch,
        ]
    else:
        body = [getattr(msg, name) for name in _FIELDS[type(msg)]]
    return msgpack.packb([WIRE_VERSION, _KIND_OF[type(msg)], *body], use_bin_type=True)  # type: ignore[no-any-return]


def decode(raw: bytes) -> Message:
    try:
        version, kind, *body = msgpack.unpackb(raw, raw=False)
        if version != WIRE_VERSION:
            raise BadMessage(f"wire version {version}, expected {WIRE_VERSION}")
        if not 0 <= kind < len(_KINDS):
            raise BadMessage(f"unknown message kind {kind}")
        cls = _KINDS[kind]
        check_fields(cls, body, _CHECKS[cls])
        if cls is Notification:
            state, ee, pe, zxid, leader, accepted = body
            return Notification(State(state), ee, Vote(pe, zxid, leader), accepted)
        msg: Message = cls(*body)
        return msg
    except BadMessage:
        raise
    except (ValueError, TypeError, IndexError, msgpack.UnpackException) as e:
        raise BadMessage(f"undecodable message: {e}") from e


def epoch_of(zxid: int) -> int:
    return zxid >> 32


def counter_of(zxid: int) -> int:
    return zxid & 0xFFFFFFFF


def make_zxid(epoch: int, counter: int) -> int:
    return (epoch << 32) | counter
