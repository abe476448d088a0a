"""The counters behind srvr and cons count exactly what ZooKeeper counts.

The same byte-level session (handshake, ping, reads, a failed read, writes, a watch
that fires) runs against a fresh pyzk and a fresh ZooKeeper; the packets received and
sent, and the connection's last operation, cxid and zxid, must then be equal.
"""

from __future__ import annotations

import re

import pytest

from pyzk.jute.codes import Err, OpCode, Xid
from pyzk.jute.records import (
    ACL,
    CreateRequest,
    Id,
    PathWatchRequest,
    RequestHeader,
    SetDataRequest,
)
from tests.conftest import TARGETS
from tests.rawclient import RawClient
from tests.servers import ServerProcess, four_letter

pytestmark = pytest.mark.skipif(
    set(TARGETS) != {"pyzk", "zookeeper"}, reason="compares pyzk with ZooKeeper"
)

OPEN = [ACL(31, Id("world", "anyone"))]


def packets(port: int) -> tuple[int, int]:
    text = four_letter(port, "srvr")
    received = re.search(r"^Received: (\d+)$", text, re.M)
    sent = re.search(r"^Sent: (\d+)$", text, re.M)
    assert received and sent
    return int(received[1]), int(sent[1])


def session(srv: ServerProcess) -> tuple[tuple[int, int], str]:
    """Run the scripted session; (received, sent) deltas and the client's cons line."""
    r0, s0 = packets(srv.port)
    c = RawClient(srv.host, srv.port)
    try:
        c.connect()
        assert c.request(Xid.PING, OpCode.ping)[0].err == 0
        assert c.request(1, OpCode.exists, PathWatchRequest("/", False).encode())[0].err == 0
        hdr, _ = c.request(2, OpCode.getData, PathWatchRequest("/nope", False).encode())
        assert hdr.err == Err.NONODE
        create = CreateRequest("/cnt", b"a", OPEN, 0).encode()
        assert c.request(3, OpCode.create, create)[0].err == 0
        assert c.request(4, OpCode.getData, PathWatchRequest("/cnt", True).encode())[0].err == 0
        c.send_frame(
            RequestHeader(5, OpCode.setData).encode() + SetDataRequest("/cnt", b"b", -1).encode()
        )
        event, _ = c.reply()  # the watch fires before the reply that shows the change
        assert event.xid == Xid.NOTIFICATION
        assert c.reply()[0].xid == 5
        port = c.sock.getsockname()[1]
        line = next(ln for ln in four_letter(srv.port, "cons").splitlines() if f":{port}[" in ln)
    finally:
        c.close()
    r1, s1 = packets(srv.port)
    return (r1 - r0, s1 - s0), line


def fields(line: str) -> dict[str, str]:
    body = line[line.index("(") + 1 : -1]
    return dict(kv.split("=", 1) for kv in body.split(","))


def test_packet_counts_and_last_operation_match(both_servers: dict[str, ServerProcess]) -> None:
    ours_counts, ours_line = session(both_servers["pyzk"])
    theirs_counts, theirs_line = session(both_servers["zookeeper"])
    # srvr itself and cons count too: both servers count them alike.
    assert ours_counts == theirs_counts
    ours, theirs = fields(ours_line), fields(theirs_line)
    for key in ("queued", "recved", "sent", "lop", "lcxid", "lzxid", "to"):
        assert ours[key] == theirs[key], (key, ours_line, theirs_line)
    assert ours_line.split("(")[0].endswith("[1]") and theirs_line.split("(")[0].endswith("[1]")
