"""A hardened quorum: members prove themselves on 2888/3888 (DIGEST-MD5 or mutual TLS).

Three real pyzk servers on loopback (tests/ensemble/cluster.py). The negative tests put
an impostor where a member should be (wrong secret, untrusted certificate) or write a
forged hello and vote to a member's election port; each is refused, and the ensemble
keeps its leader and goes on serving.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from kazoo.client import KazooClient

from pyzk.zab.messages import WIRE_VERSION
from tests.ensemble.cluster import Ensemble
from tests.security.certs import Certs, make_certs

WAIT_S = 30.0
JAAS = """\
QuorumServer {{
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_zkpeer="{password}";
}};
QuorumLearner {{
       org.apache.zookeeper.server.auth.DigestLoginModule required
       username="zkpeer"
       password="{password}";
}};
"""
SASL = {
    "quorum.auth.enableSasl": "true",
    "quorum.auth.learnerRequireSasl": "true",
    "quorum.auth.serverRequireSasl": "true",
}


def write_jaas(folder: Path, password: str, name: str) -> Path:
    path = folder / f"jaas-{name}.conf"
    path.write_text(JAAS.format(password=password))
    return path


def config_of(ens: Ensemble, i: int) -> Path:
    return ens.workdir / f"s{i}" / "zoo.cfg"


def replace_in_config(ens: Ensemble, i: int, old: str, new: str) -> None:
    cfg = config_of(ens, i)
    cfg.write_text(cfg.read_text().replace(old, new))


def log_of(ens: Ensemble, i: int) -> str:
    return (ens.workdir / f"s{i}" / "server.log").read_text(errors="replace")


def write_and_read_everywhere(ens: Ensemble, path: str) -> None:
    writer = KazooClient(hosts=ens.hosts, timeout=10.0)
    writer.start(timeout=WAIT_S)
    try:
        writer.create(path, b"v")
    finally:
        writer.stop()
    for i in ens.ids:
        if ens.mode(i) in ("leader", "follower"):
            c = KazooClient(hosts=f"127.0.0.1:{ens.client_ports[i]}", timeout=10.0)
            c.start(timeout=WAIT_S)
            try:
                c.sync(path)
                assert c.get(path)[0] == b"v"
            finally:
                c.stop()


def assert_no_traceback(ens: Ensemble) -> None:
    """Refused peers are log lines, never an unhandled error."""
    for i in ens.ids:
        log = log_of(ens, i)
        assert "Traceback" not in log and "never retrieved" not in log, f"server {i}"


def wait_for_log(ens: Ensemble, i: int, text: str) -> None:
    ens.wait_for(lambda: text in log_of(ens, i), timeout=WAIT_S)


# --- DIGEST-MD5 between members --------------------------------------------------------------


@pytest.fixture
def sasl_ensemble(tmp_path: Path) -> Iterator[Ensemble]:
    jaas = write_jaas(tmp_path, "the-quorum-secret", "shared")
    ens = Ensemble(tmp_path, extra={**SASL, "java.security.auth.login.config": str(jaas)})
    try:
        ens.start()
        yield ens
    finally:
        ens.stop()


def test_members_sharing_the_secret_form_a_quorum(sasl_ensemble: Ensemble) -> None:
    assert sorted(sasl_ensemble.mode(i) for i in sasl_ensemble.ids) == [
        "follower",
        "follower",
        "leader",
    ]
    write_and_read_everywhere(sasl_ensemble, "/sasl-quorum")
    for i in sasl_ensemble.ids:
        assert "the-quorum-secret" not in log_of(sasl_ensemble, i)


def test_a_member_with_the_wrong_secret_cannot_join(sasl_ensemble: Ensemble) -> None:
    ens = sasl_ensemble
    leader = ens.leader()
    impostor = next(i for i in ens.ids if i != leader)
    ens.kill(impostor)
    replace_in_config(ens, impostor, "jaas-shared", "jaas-impostor")
    write_jaas(ens.workdir, "a-guess", "impostor")
    ens.start([impostor], wait=False)
    others = [i for i in ens.ids if i != impostor]
    for i in others:
        wait_for_log(ens, i, "authentication failed")
    assert ens.mode(impostor) == ""  # never joins, never serves
    assert ens.leader() == leader  # the others keep their leader
    write_and_read_everywhere(ens, "/still-serving")
    assert_no_traceback(ens)


def test_a_forged_hello_and_vote_are_dropped(sasl_ensemble: Ensemble, tmp_path: Path) -> None:
    ens = sasl_ensemble
    leader = ens.leader()
    target = next(i for i in ens.ids if i != leader)
    election_port = int(config_of(ens, target).read_text().split(f"server.{target} = ")[1]
                        .split(":")[2].split()[0])  # fmt: skip
    with socket.create_connection(("127.0.0.1", election_port), timeout=WAIT_S) as s:
        forged = [msgpack.packb([WIRE_VERSION, "hello", leader]), b"\x93" + b"\x00" * 40]
        s.sendall(b"".join(struct.pack(">I", len(f)) + f for f in forged))
        s.settimeout(WAIT_S)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
    wait_for_log(ens, target, "did not authenticate")
    assert ens.leader() == leader
    write_and_read_everywhere(ens, "/after-forgery")
    assert_no_traceback(ens)


# --- mutual TLS between members (sslQuorum) -------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("quorum-certs"))


def tls_settings(certs: Certs) -> dict[str, str]:
    return {
        "sslQuorum": "true",
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.quorum.keyStore.location": str(certs.server.keystore),
        "ssl.quorum.trustStore.location": str(certs.ca),
    }


@pytest.fixture
def tls_ensemble(tmp_path: Path, certs: Certs) -> Iterator[Ensemble]:
    ens = Ensemble(tmp_path, extra=tls_settings(certs))
    try:
        ens.start()
        yield ens
    finally:
        ens.stop()


def test_members_with_trusted_certificates_form_a_quorum_over_tls(tls_ensemble: Ensemble) -> None:
    write_and_read_everywhere(tls_ensemble, "/tls-quorum")


def test_a_member_with_an_untrusted_certificate_cannot_join(
    tls_ensemble: Ensemble, certs: Certs
) -> None:
    ens = tls_ensemble
    leader = ens.leader()
    impostor = next(i for i in ens.ids if i != leader)
    ens.kill(impostor)
    replace_in_config(ens, impostor, str(certs.server.keystore), str(certs.untrusted.keystore))
    ens.start([impostor], wait=False)
    others = [i for i in ens.ids if i != impostor]
    ens.wait_for(
        lambda: all("Unsuccessful TLS handshake" in log_of(ens, i) for i in others),
        timeout=WAIT_S,
    )
    assert ens.mode(impostor) == ""
    assert ens.leader() == leader
    write_and_read_everywhere(ens, "/tls-still-serving")
    assert_no_traceback(ens)


def test_a_plain_text_peer_is_refused_by_a_tls_quorum(tls_ensemble: Ensemble) -> None:
    ens = tls_ensemble
    leader = ens.leader()
    assert leader is not None
    quorum_port = int(config_of(ens, leader).read_text().split(f"server.{leader} = ")[1]
                      .split(":")[1])  # fmt: skip
    deadline = time.monotonic() + WAIT_S
    with socket.create_connection(("127.0.0.1", quorum_port), timeout=WAIT_S) as s:
        hello = msgpack.packb([WIRE_VERSION, "hello", 99])
        s.sendall(struct.pack(">I", len(hello)) + hello)
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(4096) == b""
    assert time.monotonic() < deadline
    wait_for_log(ens, leader, "Unsuccessful TLS handshake")
    assert ens.leader() == leader
    assert_no_traceback(ens)
