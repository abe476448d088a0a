"""A minimal raw ZooKeeper client over a socket, for byte-level tests and probes."""

from __future__ import annotations

import socket
import struct

from pyzk.jute import records as r


class RawClient:
    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send_frame(self, body: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(body)) + body)

    def recv_frame(self) -> bytes:
        while len(self.buf) < 4:
            self._fill()
        (n,) = struct.unpack(">i", self.buf[:4])
        while len(self.buf) < 4 + n:
            self._fill()
        body, self.buf = self.buf[4 : 4 + n], self.buf[4 + n :]
        return body

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by server")
        self.buf += data

    def connect(
        self,
        timeout_ms: int = 10000,
        session_id: int = 0,
        passwd: bytes = b"\0" * 16,
        last_zxid: int = 0,
        readonly: bool | None = False,
    ) -> r.ConnectResponse:
        req = r.ConnectRequest(0, last_zxid, timeout_ms, session_id, passwd).encode()
        if readonly is not None:
            req += b"\x01" if readonly else b"\x00"
        self.send_frame(req)
        self.last_connect_raw = self.recv_frame()
        return r.ConnectResponse.from_bytes(self.last_connect_raw)

    def request(self, xid: int, op: int, body: bytes = b"") -> tuple[r.ReplyHeader, bytes]:
        self.send_frame(r.RequestHeader(xid, op).encode() + body)
        return self.reply()

    def reply(self) -> tuple[r.ReplyHeader, bytes]:
        raw = self.recv_frame()
        hdr, pos = r.ReplyHeader.decode(raw)
        return hdr, raw[pos:]

    def close(self) -> None:
        self.sock.close()
