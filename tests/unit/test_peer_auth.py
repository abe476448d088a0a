"""The quorum hello's authentication, without sockets: both sides of the exchange."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pyzk.security.setup import QuorumCredentials
from pyzk.server.peer_auth import (
    Exchange,
    PeerAuthError,
    QuorumAuth,
    certificate_matches,
    hello,
    parse_hello,
)
from tests.security.certs import make_certs


def creds(password: str, server_require: bool = True, learner_require: bool = True) -> QuorumAuth:
    return QuorumAuth(
        QuorumCredentials({"zk": password}, ("zk", password), server_require, learner_require)
    )


def run(connector: Exchange, acceptor: Exchange) -> None:
    """Carry frames between the two sides until both are done (or one refuses)."""
    for _ in range(5):
        for frame in acceptor.send:
            connector.receive(frame)
        acceptor.send.clear()
        for frame in connector.send:
            acceptor.receive(frame)
        connector.send.clear()
        if connector.done and acceptor.done:
            return
    raise AssertionError("the exchange did not finish")


def test_the_hello_names_the_mechanism_only_with_sasl() -> None:
    assert parse_hello(hello(2, None)) == (2, None)
    assert parse_hello(hello(2, "DIGEST-MD5")) == (2, "DIGEST-MD5")
    assert parse_hello(b"\x93\x01\x02") is None
    with pytest.raises(PeerAuthError, match="version 1 of the quorum protocol"):
        parse_hello(msgpack.packb([1, "hello", 2]))  # a pyzk from before batched ZAB


def test_members_with_the_same_secret_authenticate_each_other() -> None:
    ours, theirs = creds("s3cret"), creds("s3cret")
    connector, acceptor = ours.connector(), theirs.acceptor(ours.mechanism)
    run(connector, acceptor)
    assert connector.authenticated and acceptor.authenticated


def test_a_wrong_secret_is_refused_by_the_acceptor_and_told_to_the_connector() -> None:
    impostor, member = creds("guess"), creds("s3cret")
    connector, acceptor = impostor.connector(), member.acceptor(impostor.mechanism)
    with pytest.raises(PeerAuthError, match="Mismatched response"):
        run(connector, acceptor)
    with pytest.raises(PeerAuthError, match="refused our credentials"):
        connector.receive(acceptor.send[-1])


def test_an_acceptor_with_the_wrong_secret_is_found_out_by_the_connector() -> None:
    member = creds("s3cret")
    fake = QuorumAuth(QuorumCredentials({"zk": "s3cret-not"}, None, True, True))
    connector, acceptor = member.connector(), fake.acceptor(member.mechanism)
    with pytest.raises(PeerAuthError):
        run(connector, acceptor)
    assert not connector.authenticated


def test_unauthenticated_peers_need_the_require_switches_off() -> None:
    with pytest.raises(PeerAuthError, match="serverRequireSasl"):
        creds("s").acceptor(None)
    assert creds("s", server_require=False, learner_require=False).acceptor(None).done
    no_sasl = QuorumAuth(None)
    answer = no_sasl.acceptor("DIGEST-MD5")  # tells the connector there is no SASL here
    strict, lenient = creds("s").connector(), creds("s", False, False).connector()
    with pytest.raises(PeerAuthError, match="learnerRequireSasl"):
        strict.receive(answer.send[0])
    lenient.receive(answer.send[0])
    assert lenient.done and not lenient.authenticated


def test_certificates_are_matched_to_the_server_line_host(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    cert = x509.load_pem_x509_certificate(certs.server.cert.read_bytes())
    der = cert.public_bytes(serialization.Encoding.DER)
    assert certificate_matches(der, "localhost", "10.0.0.9")
    assert certificate_matches(der, "zk-2.example", "127.0.0.1")  # by the peer's address
    assert not certificate_matches(der, "zk-2.example", "10.0.0.9")
    assert not certificate_matches(None, "localhost", "127.0.0.1")
