"""SASL DIGEST-MD5 on the client port, the sasl scheme and enforced authentication.

Users come from a JAAS file named by ``-Djava.security.auth.login.config`` in the JVM
flags (SERVER_JVMFLAGS for pyzk), as zkServer.sh passes it; clients are kazoo with
``sasl_options``. Every test runs against pyzk and Apache ZooKeeper.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    ConnectionClosedError,
    InvalidACLError,
    NoAuthError,
    SessionClosedRequireSaslError,
)
from kazoo.protocol.states import KeeperState
from kazoo.security import ACL, Id, Permissions

from pyzk.jute import records as r
from pyzk.jute.codes import Err, OpCode
from tests.conftest import TARGETS, configured_server
from tests.rawclient import RawClient
from tests.servers import ServerProcess, make_server

WAIT_S = 15.0
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
JAAS = """\
// the client port's users
Server {
       org.apache.zookeeper.server.auth.DigestLoginModule required
       user_super="admin-secret"
       user_bob="bob-secret"
       user_carol="carol-secret";
};
"""


def jaas_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jaas") / "jaas.conf"
    path.write_text(JAAS)
    return path


@pytest.fixture(scope="module", params=TARGETS)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    jaas = jaas_file(tmp_path_factory)
    yield from configured_server(
        request,
        tmp_path_factory,
        {"authProvider.1": SASL_PROVIDER},
        jvm_flags=[f"-Djava.security.auth.login.config={jaas}", "-Dzookeeper.superUser=carol"],
    )


def sasl_client(srv: ServerProcess, user: str, password: str) -> KazooClient:
    zk = KazooClient(
        hosts=srv.hosts,
        timeout=10.0,
        sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": password},
        connection_retry={"max_tries": 0},
    )
    zk.start(timeout=WAIT_S)
    return zk


def wait_until_refused(zk: KazooClient) -> None:
    """kazoo marks the session AUTH_FAILED and then stops connecting (CLOSED)."""
    deadline = time.monotonic() + WAIT_S
    while zk.client_state not in (KeeperState.AUTH_FAILED, KeeperState.CLOSED):
        assert time.monotonic() < deadline, f"client stays {zk.client_state}"
        time.sleep(0.02)


def test_a_digest_md5_login_gives_a_sasl_id_usable_in_acls(srv: ServerProcess) -> None:
    bob = sasl_client(srv, "bob", "bob-secret")
    anonymous = KazooClient(hosts=srv.hosts, timeout=10.0)
    anonymous.start(timeout=WAIT_S)
    try:
        acl = [ACL(Permissions.ALL, Id("sasl", "bob"))]
        bob.create("/sasl-bob", b"bob's", acl=acl)
        assert bob.get("/sasl-bob")[0] == b"bob's"
        assert bob.get_acls("/sasl-bob")[0] == acl
        with pytest.raises(NoAuthError):
            anonymous.get("/sasl-bob")
        bob.create("/sasl-auth", b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        assert bob.get_acls("/sasl-auth")[0] == acl  # auth expands to sasl:bob
        bob.delete("/sasl-auth")
        bob.delete("/sasl-bob")
    finally:
        bob.stop()
        anonymous.stop()


def test_a_sasl_acl_id_must_be_a_kerberos_name(srv: ServerProcess) -> None:
    bob = sasl_client(srv, "bob", "bob-secret")
    try:
        with pytest.raises(InvalidACLError):
            bob.create("/sasl-bad", b"", acl=[ACL(Permissions.ALL, Id("sasl", "a@b@c"))])
    finally:
        bob.stop()


def test_the_sasl_super_user_passes_every_acl(srv: ServerProcess) -> None:
    bob, carol = sasl_client(srv, "bob", "bob-secret"), sasl_client(srv, "carol", "carol-secret")
    try:
        bob.create("/sasl-locked", b"x", acl=[ACL(Permissions.ALL, Id("sasl", "bob"))])
        assert carol.get("/sasl-locked")[0] == b"x"  # zookeeper.superUser=carol
        carol.delete("/sasl-locked")
    finally:
        bob.stop()
        carol.stop()


# An unknown user with its own password. (ZooKeeper 3.8's callback handler keeps the last
# known user name across connections, so an unknown user sending *that* user's password
# gets in there; pyzk does not copy this.)
@pytest.mark.parametrize(("user", "password"), [("bob", "wrong"), ("nobody", "nobody-secret")])
def test_a_wrong_password_or_unknown_user_fails_and_closes(
    srv: ServerProcess, user: str, password: str
) -> None:
    zk = sasl_client(srv, user, password)  # the session is made before SASL starts
    try:
        wait_until_refused(zk)
        with pytest.raises((AuthFailedError, ConnectionClosedError)):
            zk.get("/")
    finally:
        zk.stop()
    good = sasl_client(srv, "bob", "bob-secret")  # nothing else is disturbed
    try:
        assert good.exists("/") is not None
    finally:
        good.stop()


def test_a_raw_wrong_response_is_answered_authfailed(srv: ServerProcess) -> None:
    raw = RawClient("127.0.0.1", srv.port)
    try:
        raw.connect()
        hdr, body = raw.request(1, OpCode.sasl, r.GetSASLRequest(b"").encode())
        assert hdr.err == Err.OK
        challenge = r.SetSASLResponse.decode(body)[0].token
        assert challenge is not None and b'realm="zk-sasl-md5"' in challenge
        assert b"algorithm=md5-sess" in challenge
        bogus = b'username="bob",realm="zk-sasl-md5",nonce="x",cnonce="y",nc=00000001,'
        bogus += b'digest-uri="zookeeper/zk-sasl-md5",response=0123,qop=auth'
        hdr, _ = raw.request(2, OpCode.sasl, r.GetSASLRequest(bogus).encode())
        assert hdr.err == Err.AUTHFAILED
        with pytest.raises((ConnectionError, OSError)):
            raw.request(3, OpCode.exists, r.PathWatchRequest("/", False).encode())
    finally:
        raw.close()


def test_a_gssapi_client_gets_the_digest_md5_challenge_then_authfailed(
    srv: ServerProcess,
) -> None:
    """GSSAPI opens with a Kerberos token: the server (DIGEST-MD5 only) answers with its
    challenge regardless, and the next token, not a digest-response, fails."""
    raw = RawClient("127.0.0.1", srv.port)
    try:
        raw.connect()
        kerberos_like = b"\x60\x82\x02\x00\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"
        hdr, body = raw.request(1, OpCode.sasl, r.GetSASLRequest(kerberos_like).encode())
        assert hdr.err == Err.OK
        token = r.SetSASLResponse.decode(body)[0].token
        assert token is not None and token.endswith(b",charset=utf-8,algorithm=md5-sess")
        hdr, _ = raw.request(2, OpCode.sasl, r.GetSASLRequest(kerberos_like).encode())
        assert hdr.err == Err.AUTHFAILED
    finally:
        raw.close()


# --- enforced authentication ----------------------------------------------------------------


ENFORCE = {
    "sessionRequireClientSASLAuth": {"sessionRequireClientSASLAuth": "true"},
    "enforce.auth": {"enforce.auth.enabled": "true", "enforce.auth.schemes": "sasl"},
}


@pytest.fixture(
    scope="module",
    params=[(kind, how) for kind in TARGETS for how in ENFORCE],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def enforcing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    kind, how = request.param
    jaas = jaas_file(tmp_path_factory)
    srv = make_server(
        kind,
        tmp_path_factory.mktemp(f"enforce-{kind}"),
        extra={"authProvider.sasl": SASL_PROVIDER, **ENFORCE[how]},
        jvm_flags=[f"-Djava.security.auth.login.config={jaas}"],
    )
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def test_with_sasl_required_an_unauthenticated_request_closes_the_connection(
    enforcing: ServerProcess,
) -> None:
    raw = RawClient("127.0.0.1", enforcing.port)
    try:
        raw.connect()
        hdr, _ = raw.request(1, OpCode.exists, r.PathWatchRequest("/", False).encode())
        assert hdr.err == Err.SESSIONCLOSEDREQUIRESASLAUTH
        with pytest.raises((ConnectionError, OSError)):
            raw.request(2, OpCode.exists, r.PathWatchRequest("/", False).encode())
    finally:
        raw.close()


def test_with_sasl_required_kazoo_without_sasl_is_refused(enforcing: ServerProcess) -> None:
    zk = KazooClient(hosts=enforcing.hosts, timeout=10.0, connection_retry={"max_tries": 0})
    zk.start(timeout=WAIT_S)
    try:
        with pytest.raises((SessionClosedRequireSaslError, ConnectionClosedError)):
            zk.get("/")
    finally:
        zk.stop()


def test_with_sasl_required_an_authenticated_client_works(enforcing: ServerProcess) -> None:
    bob = sasl_client(enforcing, "bob", "bob-secret")
    try:
        bob.ensure_path("/enforced")
        assert bob.exists("/enforced") is not None
        bob.delete("/enforced")
    finally:
        bob.stop()


def test_with_sasl_required_a_wrong_password_gets_sessionclosedrequiresaslauth(
    enforcing: ServerProcess,
) -> None:
    raw = RawClient("127.0.0.1", enforcing.port)
    try:
        raw.connect()
        raw.request(1, OpCode.sasl, r.GetSASLRequest(b"").encode())
        hdr, _ = raw.request(2, OpCode.sasl, r.GetSASLRequest(b'username="bob"').encode())
        assert hdr.err == Err.SESSIONCLOSEDREQUIRESASLAUTH
    finally:
        raw.close()
