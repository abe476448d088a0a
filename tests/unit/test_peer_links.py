"""The peer links' gatekeeping, without sockets: who may say hello, and how much.

(Addresses are looked up with getaddrinfo; the servers here are IP literals.)
"""

from __future__ import annotations

import asyncio
import logging
import struct

import msgpack
import pytest

from pyzk.config import ServerSpec
from pyzk.server.peer_links import ELECTION, MAX_HELLO_FRAME, Link, PeerLinks, normal_ip
from pyzk.zab.messages import WIRE_VERSION

SERVERS = {i: ServerSpec(i, f"127.0.0.{i}", 2888, 3888) for i in (1, 2, 3)}


class FakeTransport:
    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.reading = True
        self.closed = False
        self.sent = b""

    def get_extra_info(self, name: str) -> object:
        return (self.peer, 40000) if name == "peername" else None

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return self.closed

    def abort(self) -> None:
        self.closed = True

    close = abort

    def write(self, data: bytes) -> None:
        self.sent += data


def links(listen_all: bool = False) -> tuple[PeerLinks, list[int | None]]:
    accepted: list[int | None] = []
    pl = PeerLinks(1, SERVERS, listen_all, lambda s, f: None, lambda s, f: None, lambda s: None)
    pl.accepted = lambda link: accepted.append(link.sid)  # type: ignore[method-assign]
    return pl, accepted


def frame(obj: object) -> bytes:
    body: bytes = msgpack.packb(obj)
    return struct.pack(">I", len(body)) + body


async def connect(pl: PeerLinks, peer: str, data: bytes) -> FakeTransport:
    t = FakeTransport(peer)
    link = Link(pl, ELECTION, None)
    link.connection_made(t)  # type: ignore[arg-type]
    link.data_received(data)  # arrives before the address is vetted: held, not parsed
    deadline = asyncio.get_running_loop().time() + 5
    while link.vetting and not t.closed:  # the address lookup runs in a thread
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    return t


@pytest.mark.parametrize(
    ("given", "normal"),
    [("127.0.0.2", "127.0.0.2"), ("::ffff:10.1.2.3", "10.1.2.3"), ("fe80::1%eth0", "fe80::1")],
)
def test_addresses_compare_as_the_resolver_writes_them(given: str, normal: str) -> None:
    assert normal_ip(given) == normal


async def test_a_server_says_hello_from_its_own_address() -> None:
    pl, accepted = links()
    t = await connect(pl, "127.0.0.2", frame([WIRE_VERSION, "hello", 2]))
    assert accepted == [2] and not t.closed and t.reading


async def test_a_stranger_is_dropped_before_a_byte_is_parsed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pl, accepted = links()
    with caplog.at_level(logging.WARNING):
        t = await connect(pl, "127.0.0.9", frame([WIRE_VERSION, "hello", 2]))
    assert accepted == [] and t.closed
    assert "127.0.0.9 is not the address of any configured server" in caplog.text


async def test_a_member_claiming_another_id_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    pl, accepted = links()
    with caplog.at_level(logging.WARNING):
        t = await connect(pl, "127.0.0.3", frame([WIRE_VERSION, "hello", 2]))
    assert accepted == [] and t.closed
    assert "says it is server 2, but comes from the address of server 3" in caplog.text


@pytest.mark.parametrize("listen_all", [False, True])
async def test_nothing_big_is_buffered_before_hello(listen_all: bool) -> None:
    pl, _ = links(listen_all)
    t = await connect(pl, "127.0.0.2", struct.pack(">I", MAX_HELLO_FRAME + 1))
    assert t.closed


async def test_listening_on_all_ips_trusts_the_hello_alone() -> None:
    pl, accepted = links(listen_all=True)  # NAT, Services: addresses prove nothing
    await connect(pl, "10.9.9.9", frame([WIRE_VERSION, "hello", 3]))
    assert accepted == [3]
