"""ACLs and authentication: schemes, permissions, getACL/setACL, addauth, super, SASL.

Every rule runs against pyzk and Apache ZooKeeper: where the two could differ (the order
of expanded ``auth`` ids, masked digests, which operation checks which permission) the
expectations are what ZooKeeper 3.8.0 answers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    InvalidACLError,
    NoAuthError,
)
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    make_digest_acl,
    make_digest_acl_credential,
)

from pyzk.jute import records as r
from pyzk.jute.codes import Err, OpCode, Xid
from tests.conftest import TARGETS, configured_server, connect
from tests.rawclient import RawClient
from tests.servers import ServerProcess

SUPER_PASSWORD = "admin"
SUPER_DIGEST = make_digest_acl_credential("super", SUPER_PASSWORD)


@pytest.fixture(scope="module", params=TARGETS)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from configured_server(
        request, tmp_path_factory, {"DigestAuthenticationProvider.superDigest": SUPER_DIGEST}
    )


@pytest.fixture
def clients(srv: ServerProcess) -> Iterator[list[KazooClient]]:
    made: list[KazooClient] = []
    yield made
    for c in made:
        c.stop()
        c.close()


@pytest.fixture
def new(srv: ServerProcess, clients: list[KazooClient]) -> Callable[..., KazooClient]:
    def make(*auth: tuple[str, str]) -> KazooClient:
        c = connect(srv, auth_data=list(auth) if auth else None)
        clients.append(c)
        return c

    return make


_n = iter(range(1_000_000))


@pytest.fixture
def path() -> str:
    return f"/acl{next(_n)}"


def digest_acl(user: str, pw: str, **perms: bool) -> ACL:
    return make_digest_acl(user, pw, **perms) if perms else make_digest_acl(user, pw, all=True)


def test_digest_acl_needs_the_matching_addauth(new: Callable[..., KazooClient], path: str) -> None:
    owner = new(("digest", "alice:secret"))
    owner.create(path, b"x", acl=[digest_acl("alice", "secret")])
    stranger = new()
    with pytest.raises(NoAuthError):
        stranger.get(path)
    with pytest.raises(NoAuthError):
        stranger.get_children(path)
    with pytest.raises(NoAuthError):
        stranger.set(path, b"y")
    stranger.add_auth("digest", "alice:wrong")
    with pytest.raises(NoAuthError):
        stranger.get(path)
    stranger.add_auth("digest", "alice:secret")
    assert stranger.get(path)[0] == b"x"


def test_each_operation_checks_its_own_permission(
    new: Callable[..., KazooClient], path: str
) -> None:
    admin = new(("digest", "admin:pw"))
    admin.create(path, b"", acl=OPEN_ACL_UNSAFE)
    everyone_but = [ACL(31, Id("digest", make_digest_acl_credential("admin", "pw")))]
    for name, perm in (("r", 1), ("w", 2), ("c", 4), ("d", 8), ("a", 16)):
        acl = [ACL(perm, Id("world", "anyone")), *everyone_but]
        admin.create(f"{path}/{name}", b"", acl=acl)
        admin.create(f"{path}/{name}/child", b"", acl=OPEN_ACL_UNSAFE)
    c = new()
    outcomes = {}
    for name in "rwcda":
        node = f"{path}/{name}"
        outcomes[name] = (
            _ok(lambda n=node: c.get(n)),
            _ok(lambda n=node: c.get_children(n)),
            _ok(lambda n=node: c.set(n, b"v")),
            _ok(lambda n=node: c.create(n + "/new")),
            _ok(lambda n=node: c.delete(n + "/child")),
            _ok(lambda n=node: c.get_acls(n)),
            _ok(lambda n=node: c.set_acls(n, OPEN_ACL_UNSAFE)),
            _ok(lambda n=node: c.exists(n)),  # 3.8.0 does not check READ on exists
        )
    assert outcomes == {
        "r": (True, True, False, False, False, True, False, True),
        "w": (False, False, True, False, False, False, False, True),
        "c": (False, False, False, True, False, False, False, True),
        "d": (False, False, False, False, True, False, False, True),
        "a": (False, False, False, False, False, True, True, True),
    }


def _ok(fn) -> bool:  # type: ignore[no-untyped-def]
    try:
        fn()
    except NoAuthError:
        return False
    return True


def test_get_acl_masks_digests_without_admin(new: Callable[..., KazooClient], path: str) -> None:
    owner = new(("digest", "bob:pw"))
    owner.create(path, b"", acl=[READ_ACL_UNSAFE[0], digest_acl("bob", "pw")])
    full = owner.get_acls(path)[0]
    assert [(a.perms, a.id.scheme, a.id.id) for a in full] == [
        (1, "world", "anyone"),
        (31, "digest", make_digest_acl_credential("bob", "pw")),
    ]
    masked = new().get_acls(path)[0]
    assert [(a.perms, a.id.scheme, a.id.id) for a in masked] == [
        (1, "world", "anyone"),
        (31, "digest", "bob:x"),
    ]


def test_an_empty_acl_is_invalid(srv: ServerProcess) -> None:
    raw = RawClient(srv.host, srv.port)  # kazoo replaces an empty ACL with its default
    try:
        raw.connect()
        hdr, _ = raw.request(1, OpCode.create, r.CreateRequest("/emptyacl", b"", [], 0).encode())
        assert hdr.err == Err.INVALIDACL
    finally:
        raw.close()


def test_set_acl_checks_aversion_and_bumps_it(new: Callable[..., KazooClient], path: str) -> None:
    c = new()
    c.create(path, b"")
    with pytest.raises(BadVersionError):
        c.set_acls(path, READ_ACL_UNSAFE, version=3)
    stat = c.set_acls(path, OPEN_ACL_UNSAFE, version=0)
    assert stat.aversion == 1 and stat.version == 0
    assert c.set_acls(path, READ_ACL_UNSAFE, version=-1).aversion == 2
    acl, stat = c.get_acls(path)
    assert [a.perms for a in acl] == [1] and stat.aversion == 2


@pytest.mark.parametrize(
    "acl",
    [
        [ACL(31, Id("nope", "x"))],
        [ACL(31, Id("world", "someone"))],
        [ACL(31, Id("digest", "nocolon"))],
        [ACL(31, Id("digest", "a:b:c"))],
        [ACL(31, Id("ip", "300.0.0.1"))],
        [ACL(31, Id("ip", "10.0.0.0/33"))],
        [ACL(31, Id("ip", "::1"))],
        [ACL(31, Id("super", ""))],
        CREATOR_ALL_ACL,  # "auth" with no authenticated id on the connection
    ],
    ids=lambda a: ",".join(f"{x.id.scheme}:{x.id.id}" for x in a),
)
def test_invalid_acls_are_refused(
    new: Callable[..., KazooClient], path: str, acl: list[ACL]
) -> None:
    c = new()
    with pytest.raises(InvalidACLError):
        c.create(path, b"", acl=acl)
    c.create(path, b"")
    with pytest.raises(InvalidACLError):
        c.set_acls(path, acl)


def test_auth_acl_expands_to_every_authenticated_id_in_zookeepers_order(
    new: Callable[..., KazooClient], path: str
) -> None:
    c = new(("digest", "u1:p1"), ("digest", "u2:p2"), ("digest", "u3:p3"), ("ip", "x"))
    c.create(path, b"", acl=CREATOR_ALL_ACL)
    users = [a.id.id.split(":")[0] for a in c.get_acls(path)[0]]
    # Java's hash order of the connection's ids; ip ids are not "authenticated" ones.
    assert users == ["u2", "u1", "u3"]


def test_ip_acls_match_by_address_and_mask(new: Callable[..., KazooClient], path: str) -> None:
    c = new()
    c.create(path, b"")
    for name, expr, readable in (
        ("exact", "127.0.0.1", True),
        ("net8", "127.0.0.0/8", True),
        ("net24", "127.1.0.0/24", False),
        ("other", "10.0.0.1", False),
        ("all", "0.0.0.0/0", True),
    ):
        c.create(
            f"{path}/{name}", b"d", acl=[ACL(1, Id("ip", expr)), ACL(16, Id("world", "anyone"))]
        )
        assert _ok(lambda n=f"{path}/{name}": c.get(n)) is readable, name


def test_super_digest_passes_every_acl(new: Callable[..., KazooClient], path: str) -> None:
    owner = new(("digest", "carol:pw"))
    owner.create(path, b"secret", acl=[digest_acl("carol", "pw")])
    root = new(("digest", f"super:{SUPER_PASSWORD}"))
    assert root.get(path)[0] == b"secret"
    root.set_acls(path, OPEN_ACL_UNSAFE)
    assert new().get(path)[0] == b"secret"


def test_unknown_auth_scheme_fails_and_closes_the_connection(srv: ServerProcess) -> None:
    raw = RawClient(srv.host, srv.port)
    try:
        raw.connect()
        hdr, body = raw.request(Xid.AUTH, OpCode.auth, r.AuthPacket(0, "kerberos", b"x").encode())
        assert (hdr.xid, hdr.zxid, hdr.err, body) == (Xid.AUTH, 0, Err.AUTHFAILED, b"")
        with pytest.raises((ConnectionError, OSError)):
            raw.request(1, OpCode.exists, r.PathWatchRequest("/", False).encode())
    finally:
        raw.close()


def test_kazoo_sees_auth_failed(new: Callable[..., KazooClient]) -> None:
    c = new()
    with pytest.raises(AuthFailedError):
        c.add_auth("bogus", "x")


def test_auth_reply_echoes_its_xid_and_whoami_lists_ids(srv: ServerProcess) -> None:
    raw = RawClient(srv.host, srv.port)
    try:
        raw.connect()
        hdr, _ = raw.request(77, OpCode.auth, r.AuthPacket(0, "digest", b"dave:pw").encode())
        assert (hdr.xid, hdr.zxid, hdr.err) == (77, 0, 0)
        hdr, body = raw.request(3, OpCode.whoAmI)
        infos = r.WhoAmIResponse.from_bytes(body).clientInfo
        assert [(i.authScheme, i.user) for i in infos] == [("digest", "dave"), ("ip", "127.0.0.1")]
        raw.request(Xid.AUTH, OpCode.auth, r.AuthPacket(0, "digest", b"super:admin").encode())
        hdr, body = raw.request(4, OpCode.whoAmI)
        infos = r.WhoAmIResponse.from_bytes(body).clientInfo
        assert sorted((i.authScheme, i.user) for i in infos) == [
            ("digest", "dave"),
            ("digest", "super"),
            ("ip", "127.0.0.1"),
            ("super", ""),
        ]
    finally:
        raw.close()


def test_sasl_without_sasl_configured_answers_ok_with_no_token(srv: ServerProcess) -> None:
    raw = RawClient(srv.host, srv.port)
    try:
        raw.connect()
        hdr, body = raw.request(5, OpCode.sasl, r.GetSASLRequest(b"token").encode())
        assert (hdr.xid, hdr.zxid, hdr.err, body) == (5, 0, 0, struct.pack(">i", -1))
        hdr, _ = raw.request(6, OpCode.exists, r.PathWatchRequest("/", False).encode())
        assert hdr.err == 0  # the connection goes on
    finally:
        raw.close()


def test_check_in_a_transaction_needs_read(new: Callable[..., KazooClient], path: str) -> None:
    owner = new(("digest", "erin:pw"))
    owner.create(path, b"", acl=[digest_acl("erin", "pw")])
    other = new()
    tx = other.transaction()
    tx.check(path, 0)
    results = tx.commit()
    assert isinstance(results[0], NoAuthError)


@pytest.fixture(scope="module", params=TARGETS)
def skip_acl_srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    yield from configured_server(request, tmp_path_factory, {"skipACL": "yes"})


def test_skip_acl_ignores_every_acl(skip_acl_srv: ServerProcess) -> None:
    a = connect(skip_acl_srv, auth_data=[("digest", "frank:pw")])
    b = connect(skip_acl_srv)
    try:
        a.create("/locked", b"v", acl=[digest_acl("frank", "pw")])
        assert b.get("/locked")[0] == b"v"
        b.set("/locked", b"w")
        b.delete("/locked")
    finally:
        for c in (a, b):
            c.stop()
            c.close()
