"""The jute codec: round trips, frames captured from Apache ZooKeeper 3.8, bad input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyzk.jute import codec
from pyzk.jute import records as r
from pyzk.jute.codec import Int, MarshallingError, Record, UString, decode_frames, frame, record
from pyzk.pipeline.wire import notification, reply

# Captured from Apache ZooKeeper 3.8.0 (standalone) with a raw socket.
ZK_CONNECT_RESPONSE = bytes.fromhex(
    "0000000000002710010000041ad6000400000010f4efbc6795261ddd9b56f9d03526f665"
)
# A NodeCreated event for /w: ReplyHeader(-1, -1, 0) + WatcherEvent(1, 3, "/w").
ZK_NOTIFICATION = bytes.fromhex("ffffffffffffffffffffffff000000000000000100000003000000022f77")


# Used by no other test: their codecs are compiled by the test that uses them.
@record
class _Inner(Record):
    name: UString


@record
class _Outer(Record):
    n: Int
    inner: _Inner


def test_codecs_compile_on_first_use_nested_records_first() -> None:
    def compiled(cls: type[Record]) -> bool:
        return cls.__dict__["decode"].__func__ is not codec._decode_compiling

    assert not compiled(_Outer) and not compiled(_Inner)
    raw = struct.pack(">ii", 7, 2) + b"ab"
    assert _Outer.from_bytes(raw) == _Outer(7, _Inner("ab"))
    assert compiled(_Outer) and compiled(_Inner)
    assert _Outer(7, _Inner("ab")).encode() == raw
    assert _Inner.from_bytes(raw[4:]) == _Inner("ab")


def test_a_record_is_a_slotted_value_of_its_fields_as_a_dataclass_would_be() -> None:
    a = r.Id("digest", "u:x")
    assert a == r.Id(scheme="digest", id="u:x") and a != r.Id("digest", "u:y")
    assert a != r.ClientInfo("digest", "u:x")  # same fields, another record
    assert repr(a) == "Id(scheme='digest', id='u:x')"
    assert not hasattr(a, "__dict__")
    with pytest.raises(TypeError):
        hash(a)  # equal by value and mutable: unhashable, as a dataclass
    with pytest.raises(TypeError):
        r.Id("digest")  # type: ignore[call-arg]
    assert r.Id.__dict__["__init__"].__qualname__ == "Id.__init__"  # generated, installed


def test_connect_response_matches_zookeepers_bytes() -> None:
    resp = r.ConnectResponse.from_bytes(ZK_CONNECT_RESPONSE)
    assert (resp.protocolVersion, resp.timeOut) == (0, 10000)
    assert resp.sessionId == 0x010000041AD60004
    assert resp.encode() == ZK_CONNECT_RESPONSE


def test_notification_frame_matches_zookeepers_bytes() -> None:
    assert notification(1, "/w") == struct.pack(">i", len(ZK_NOTIFICATION)) + ZK_NOTIFICATION


def test_stat_is_68_bytes_in_field_order() -> None:
    stat = r.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    raw = stat.encode()
    assert len(raw) == 68
    assert struct.unpack(">qqqqiiiqiiq", raw) == tuple(range(1, 12))


def test_a_negative_length_other_than_null_is_a_marshalling_error() -> None:
    # jute's readString/readBuffer: -1 is null, any other negative length fails
    # checkLength ("Unreasonable length"), so ZooKeeper answers MARSHALLINGERROR.
    for n in (-2, -0x80000000):
        with pytest.raises(MarshallingError):
            r.SetDataRequest.from_bytes(struct.pack(">i", n) + b"\0" * 12)
        with pytest.raises(MarshallingError):
            r.GetSASLRequest.from_bytes(struct.pack(">i", n))
    assert r.GetSASLRequest.from_bytes(struct.pack(">i", -1)).token is None


def test_null_buffer_and_null_vector() -> None:
    req = r.CreateRequest("/a", None, [], 0)
    raw = req.encode()
    assert raw[6:10] == b"\xff\xff\xff\xff"  # null data
    assert r.CreateRequest.from_bytes(raw).data is None
    # A null vector (count -1) reads as empty.
    sw = struct.pack(">q", 5) + b"\xff\xff\xff\xff" * 3
    assert r.SetWatches.from_bytes(sw).dataWatches == []


def test_reply_packs_length_and_header() -> None:
    raw = reply(7, 0x10, -101)
    assert raw == struct.pack(">iiqi", 16, 7, 0x10, -101)


acls = st.lists(
    st.builds(
        r.ACL, st.integers(0, 31), st.builds(r.Id, st.text(max_size=8), st.text(max_size=12))
    ),
    max_size=4,
)


@given(
    path=st.text(max_size=30),
    data=st.one_of(st.none(), st.binary(max_size=64)),
    acl=acls,
    flags=st.integers(-(2**31), 2**31 - 1),
    ttl=st.integers(-(2**63), 2**63 - 1),
)
def test_create_ttl_round_trip(
    path: str, data: bytes | None, acl: list[r.ACL], flags: int, ttl: int
) -> None:
    rec = r.CreateTTLRequest(path, data, acl, flags, ttl)
    raw = rec.encode()
    back, end = r.CreateTTLRequest.decode(raw)
    assert back == rec and end == len(raw)


@given(st.lists(st.sampled_from(range(4)), min_size=1, max_size=12), st.data())
def test_repeated_acls_decode_as_sent(picks: list[int], data: st.DataObject) -> None:
    # Decoders remember the last small vector of records by its bytes; requests that
    # alternate, repeat or extend ACLs must still decode to exactly what was sent, and
    # changing one decoded list must not show in the next.
    pool = [data.draw(acls) for _ in range(4)]
    for i, pick in enumerate(picks):
        rec = r.CreateRequest(f"/n{i}", None, pool[pick], 0)
        back = r.CreateRequest.from_bytes(rec.encode())
        assert back == rec
        back.acl.append(r.ACL(1, r.Id("ip", "10.0.0.1")))


@given(st.lists(st.text(max_size=10), max_size=5), st.integers(-(2**63), 2**63 - 1))
def test_set_watches2_round_trip(paths: list[str], zxid: int) -> None:
    rec = r.SetWatches2(zxid, paths, paths[:1], [], paths, paths[::-1])
    assert r.SetWatches2.from_bytes(rec.encode()) == rec


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_marshalling_error(raw: bytes) -> None:
    for cls in (r.CreateRequest, r.SetWatches, r.ConnectRequest, r.GetDataResponse):
        with contextlib.suppress(MarshallingError):
            cls.from_bytes(raw)


def test_vector_count_past_end_fails_fast() -> None:
    raw = struct.pack(">qi", 0, 2**31 - 1)
    with pytest.raises(MarshallingError):
        r.SetWatches.from_bytes(raw)


def test_decode_frames_leaves_partial_tail() -> None:
    buf = bytearray(frame(b"abc") + frame(b"") + struct.pack(">i", 10) + b"12345")
    frames, used = decode_frames(buf, 100)
    assert frames == [b"abc", b""]
    assert used == 11


def test_decode_frames_rejects_oversized_and_negative_lengths() -> None:
    with pytest.raises(MarshallingError):
        decode_frames(bytearray(struct.pack(">i", 101)), 100)
    with pytest.raises(MarshallingError):
        decode_frames(bytearray(struct.pack(">i", -1)), 100)
