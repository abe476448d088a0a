"""Quorum-port hardening: hostile bytes on 2888/3888 are dropped and the ensemble carries on.

Three servers on 127.0.0.1, .2 and .3 (their own addresses, as in production). The
attacks come from 127.0.0.9 (no server's address) and from members' own addresses:
random bytes, a length prefix of 2 GB, a proper hello claiming a configured id from an
address that is not that server's. Each connection must be closed by the server with a
log line saying why, and meanwhile a client writing through the ensemble sees no error
and the leader stays the same.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator

import msgpack
import pytest
from kazoo.client import KazooClient

from pyzk.zab.messages import WIRE_VERSION
from tests.ensemble.cluster import Ensemble
from tests.reliability.conftest import LONG, Figures

STRANGER = "127.0.0.9"  # no server's address
CLOSE_BOUND_S = 10.0
ROUNDS = 20 if LONG else 3


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    ens = Ensemble(tmp_path_factory.mktemp("quorum-ports"), own_ips=True)
    try:
        ens.start()
        yield ens
    finally:
        ens.stop()


class Writer:
    """A client writing through the ensemble all along: it must never see an error."""

    def __init__(self, hosts: str) -> None:
        self.zk = KazooClient(hosts=hosts, timeout=10.0)
        self.errors: list[str] = []
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.zk.ensure_path("/qp")
            while not self._stop.is_set():
                self.zk.set("/qp", str(self.writes).encode())
                self.writes += 1
        except Exception as e:  # any error at all is what this client is for
            self.errors.append(repr(e))

    def __enter__(self) -> Writer:
        self.zk.start(timeout=30)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.zk.stop()
        self.zk.close()


def _hello(sid: int) -> bytes:
    body: bytes = msgpack.packb([WIRE_VERSION, "hello", sid])
    return struct.pack(">I", len(body)) + body


def _closed_by_server(src: str, dst: tuple[str, int], payload: bytes) -> bool:
    """Connect from ``src``, send ``payload``: does the server close on us (in time)?"""
    with socket.socket() as s:
        s.bind((src, 0))
        s.settimeout(CLOSE_BOUND_S)
        s.connect(dst)
        try:
            s.sendall(payload)
            while s.recv(65536):
                pass  # a server might answer a hello before it notices; keep reading
        except ConnectionResetError:
            pass
        except TimeoutError:
            return False
    return True


def _log_count(ens: Ensemble, i: int, text: str) -> int:
    path = ens.servers[i].workdir / "server.log"
    return path.read_text(errors="replace").count(text)


def _wait_log(ens: Ensemble, i: int, text: str, before: int) -> None:
    """Wait until server i has logged ``text`` once more than ``before`` times."""
    deadline = time.monotonic() + CLOSE_BOUND_S
    while _log_count(ens, i, text) <= before:
        assert time.monotonic() < deadline, f"server {i} did not log {text!r}"
        time.sleep(0.05)


def _attacks(ens: Ensemble) -> list[tuple[str, str, int, bytes, str]]:
    """(what, source address, target server, payload, the log line's reason)."""
    ids = ens.ids
    out = []
    for i in ids:
        other = next(j for j in ids if j != i)
        third = next(j for j in ids if j not in (i, other))
        own = ens.peer_ip[other]
        out += [
            ("garbage from a stranger", STRANGER, i, os.urandom(64), "not the address of"),
            ("hello from a stranger", STRANGER, i, _hello(other), "not the address of"),
            (
                "a member claiming another's id",
                own,
                i,
                _hello(third),
                f"it says it is server {third}, but comes from the address of server {other}",
            ),
            ("2 GB frame before hello", own, i, struct.pack(">I", 0x7FFFFFFF), "before hello"),
            ("garbage from a member", own, i, b"\x00\x00\x00\x05" + os.urandom(5), "hello"),
        ]
    return out


def test_hostile_peer_connections_are_dropped_and_the_ensemble_carries_on(
    ensemble: Ensemble, figures: Figures
) -> None:
    leader = ensemble.leader()
    assert leader is not None
    sent = 0
    with Writer(ensemble.hosts) as w:
        for _ in range(ROUNDS):
            for what, src, i, payload, reason in _attacks(ensemble):
                for port in ensemble.peer_ports[i]:  # quorum, then election
                    dst = (ensemble.peer_ip[i], port)
                    before = _log_count(ensemble, i, reason)
                    assert _closed_by_server(src, dst, payload), f"{what} to {dst} not closed"
                    _wait_log(ensemble, i, reason, before)
                    sent += 1
        start = w.writes
        deadline = time.monotonic() + 30
        while w.writes < start + 20 and not w.errors:  # still writing after all that
            assert time.monotonic() < deadline, "the ensemble stopped taking writes"
            time.sleep(0.02)
    figures.add("quorum ports", requests=sent, violations=len(w.errors))
    assert not w.errors, f"the client saw errors: {w.errors}"
    assert ensemble.leader() == leader, "the attacks caused an election"
    assert sorted(ensemble.mode(i) for i in ensemble.ids) == ["follower", "follower", "leader"]
