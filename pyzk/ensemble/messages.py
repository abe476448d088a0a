"""Requests a learner sends its leader on the quorum link, beside ZAB's own packets.

A learner forwards every write of its clients to the leader (ZooKeeper's REQUEST
packet), reports which sessions it heard from (the session part of a learner's PING),
and asks for syncs. They share the learner's FIFO connection with ZAB's packets, which
is what makes ``sync`` work: the leader's answer comes after every COMMIT that preceded
it. Wire form: a msgpack array ``[version, kind, field, ...]`` with kinds of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import msgpack

from pyzk.zab.messages import (
    WIRE_VERSION,
    BadMessage,
    Check,
    check_fields,
    is_bytes,
    is_int,
    is_str,
    list_of,
)


@dataclass(frozen=True, slots=True)
class Forward:
    """A client request for the leader's pipeline: a write, createSession or closeSession.

    ``body`` is the request as the client framed it (header included) for writes, the
    negotiated timeout for createSession, empty for closeSession.
    """

    session_id: int
    cxid: int
    op: int
    body: bytes
    auth: list[list[str]]  # the client connection's ids (scheme, id): ACLs are checked there


@dataclass(frozen=True, slots=True)
class Touch:
    """Sessions whose clients this learner heard from since its last report."""

    sessions: list[list[int]]  # [session id, timeout ms]


@dataclass(frozen=True, slots=True)
class SyncRequest:
    session_id: int
    cxid: int
    path: str


@dataclass(frozen=True, slots=True)
class SyncDone:
    """The leader's answer: every commit before it was sent before it."""

    session_id: int
    cxid: int
    path: str


AppMessage = Forward | Touch | SyncRequest | SyncDone
_KINDS: list[type] = [Forward, Touch, SyncRequest, SyncDone]
KIND_BASE = 100  # ZAB's kinds are below this
_KIND_OF = {cls: KIND_BASE + i for i, cls in enumerate(_KINDS)}
# Field names per kind (dataclasses.astuple would deep-copy every payload).
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in _KINDS}
_ID = list_of(is_str)  # [scheme, id]
_SESSION = list_of(is_int)  # [session id, timeout ms]
_CHECKS: dict[type, tuple[Check, ...]] = {
    Forward: (is_int, is_int, is_int, is_bytes, list_of(lambda v: _ID(v) and len(v) == 2)),
    Touch: (list_of(lambda v: _SESSION(v) and len(v) == 2),),
    SyncRequest: (is_int, is_int, is_str),
    SyncDone: (is_int, is_int, is_str),
}


def encode_app(msg: AppMessage) -> bytes:
    kind = _KIND_OF[type(msg)]
    body = [getattr(msg, name) for name in _FIELDS[type(msg)]]
    return msgpack.packb([WIRE_VERSION, kind, *body], use_bin_type=True)  # type: ignore[no-any-return]


def is_app(raw: bytes) -> bool:
    """Does this frame carry an app message (peek at the kind without decoding it)?"""
    # Fast path: a fixarray, then the version and the kind as positive fixints.
    if len(raw) > 2 and 0x92 <= raw[0] <= 0x9F and raw[1] == WIRE_VERSION and raw[2] < 0x80:
        return raw[2] >= KIND_BASE
    try:
        head = msgpack.Unpacker(raw=False)
        head.feed(raw[:16])
        n = head.read_array_header()
        return bool(n >= 2 and head.unpack() == WIRE_VERSION and head.unpack() >= KIND_BASE)
    except (ValueError, msgpack.UnpackException, msgpack.OutOfData):
        return False


def decode_app(raw: bytes) -> AppMessage:
    try:
        version, kind, *body = msgpack.unpackb(raw, raw=False)
        if not KIND_BASE <= kind < KIND_BASE + len(_KINDS):
            raise BadMessage(f"unknown message kind {kind}")
        cls = _KINDS[kind - KIND_BASE]
        if version != WIRE_VERSION:
            raise BadMessage(f"wire version {version}, expected {WIRE_VERSION}")
        check_fields(cls, body, _CHECKS[cls])
        msg: AppMessage = cls(*body)
        return msg
    except BadMessage:
        raise
    except (ValueError, TypeError, IndexError, msgpack.UnpackException) as e:
        raise BadMessage(f"undecodable message: {e}") from e
