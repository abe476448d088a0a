"""Bad input closes (or is refused on) that one connection; everyone else carries on.

Each case sends something broken over a raw socket and checks two things, on pyzk and
Apache ZooKeeper alike: what the broken connection gets, and that a well-behaved kazoo
session opened before it still works afterwards.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest
from kazoo.client import KazooClient

from pyzk.jute.codes import Err, OpCode
from pyzk.jute.records import PathWatchRequest, RequestHeader
from tests.rawclient import RawClient
from tests.servers import ServerProcess


def closed_without_reply(sock: socket.socket, timeout: float = 5.0) -> bool:
    """Does the server close this socket without sending anything?"""
    sock.settimeout(timeout)
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def still_serving(zk: KazooClient, root: str) -> None:
    path = zk.create(f"{root}/ok-", b"v", sequence=True)
    assert zk.get(path)[0] == b"v"


def test_garbage_before_handshake(server: ServerProcess, zk: KazooClient, root: str) -> None:
    s = socket.create_connection((server.host, server.port))
    s.sendall(b"\x7f" + os.urandom(64))  # a length far past jute.maxbuffer
    assert closed_without_reply(s)
    still_serving(zk, root)


def test_oversized_frame(server: ServerProcess, zk: KazooClient, root: str) -> None:
    c = RawClient(server.host, server.port)
    c.connect()
    size = 2 * 1024 * 1024
    try:
        c.sock.sendall(struct.pack(">i", size) + RequestHeader(1, OpCode.getData).encode())
        c.sock.sendall(b"\0" * size)
    except OSError:
        pass  # the server may close before we finish sending
    assert closed_without_reply(c.sock)
    still_serving(zk, root)


def test_negative_length(server: ServerProcess, zk: KazooClient, root: str) -> None:
    c = RawClient(server.host, server.port)
    c.connect()
    c.sock.sendall(struct.pack(">i", -5))
    assert closed_without_reply(c.sock)
    still_serving(zk, root)


def test_truncated_frame_then_hang_up(server: ServerProcess, zk: KazooClient, root: str) -> None:
    c = RawClient(server.host, server.port)
    c.connect()
    c.sock.sendall(struct.pack(">i", 100) + b"\0" * 10)
    c.sock.close()
    still_serving(zk, root)


def test_request_before_handshake(server: ServerProcess, zk: KazooClient, root: str) -> None:
    # A getData frame where the ConnectRequest belongs reads as a handshake from a client
    # that has seen a zxid far in the future: refused, connection closed, no reply.
    s = socket.create_connection((server.host, server.port))
    body = RequestHeader(1, OpCode.getData).encode() + PathWatchRequest("/", False).encode()
    s.sendall(struct.pack(">i", len(body)) + body)
    assert closed_without_reply(s)
    still_serving(zk, root)


def test_truncated_handshake(server: ServerProcess, zk: KazooClient, root: str) -> None:
    s = socket.create_connection((server.host, server.port))
    s.sendall(struct.pack(">i", 6) + b"\0" * 6)
    assert closed_without_reply(s)
    still_serving(zk, root)


def test_unknown_opcode_gets_unimplemented_then_close(
    server: ServerProcess, zk: KazooClient, root: str
) -> None:
    c = RawClient(server.host, server.port)
    c.connect()
    hdr, body = c.request(7, 99)
    assert (hdr.xid, hdr.zxid, hdr.err, body) == (7, -1, Err.UNIMPLEMENTED, b"")
    assert closed_without_reply(c.sock)
    still_serving(zk, root)


@pytest.mark.parametrize("xid", [1, -4, 100])
def test_a_ping_is_answered_with_the_ping_xid_whatever_it_carried(
    server: ServerProcess, xid: int
) -> None:
    c = RawClient(server.host, server.port)
    c.connect()
    hdr, body = c.request(xid, OpCode.ping)
    assert (hdr.xid, hdr.err, body) == (-2, 0, b"")
    c.close()


@pytest.mark.parametrize("op", [OpCode.getData, OpCode.exists, OpCode.getChildren])
def test_truncated_read_body_is_a_marshalling_error(
    server: ServerProcess, zk: KazooClient, root: str, op: int
) -> None:
    c = RawClient(server.host, server.port)
    c.connect()
    hdr, _ = c.request(5, op, struct.pack(">i", 50) + b"/abc")
    assert hdr.xid == 5
    assert hdr.err == Err.MARSHALLINGERROR
    hdr, _ = c.request(6, OpCode.exists, PathWatchRequest("/", False).encode())
    assert hdr.err == 0  # the connection is still usable
    still_serving(zk, root)


def test_truncated_write_body_is_a_marshalling_error(
    server: ServerProcess, zk: KazooClient, root: str
) -> None:
    c = RawClient(server.host, server.port)
    c.connect()
    before = zk.exists("/").pzxid  # any read; now compare zxids around the bad write
    hdr, _ = c.request(5, OpCode.create, struct.pack(">i", 3) + b"/ab")
    assert hdr.err == Err.MARSHALLINGERROR
    assert hdr.zxid > before  # a failed write consumes a zxid, like any other
    still_serving(zk, root)
