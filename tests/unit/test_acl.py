"""ACL rules without sockets: providers, checks, fixup, Java's order of auth ids."""

from __future__ import annotations

import pytest

from pyzk.jute.codes import Err, Perms
from pyzk.pipeline.acl import AuthInfo, Security, digest, fixup_acl, masked_for_reader
from pyzk.pipeline.errors import KeeperError

OPEN = ((31, "world", "anyone"),)


def test_digest_is_user_colon_base64_sha1() -> None:
    # The value ZooKeeper's DigestAuthenticationProvider prints for super:admin.
    assert digest("super:admin") == "super:xQJmxLMiHGwaqBvst5y6rkB6HQs="
    assert digest("nocolon").startswith("nocolon:")


def test_auth_ids_iterate_in_java_hash_order() -> None:
    auth = AuthInfo()
    auth.add(("ip", "127.0.0.1"))
    for cred in ("u1:p1", "u2:p2", "nocolon", "u3:p3"):
        assert auth.authenticate("digest", cred.encode(), "127.0.0.1")
    assert auth.authenticate("ip", b"ignored", "127.0.0.1")  # the same id: no duplicate
    # The order ZooKeeper 3.8.0 answered whoAmI with for these ids.
    assert [u for _, u in auth.client_infos()] == ["u2", "nocolon", "u1", "u3", "127.0.0.1"]


def test_auth_ids_survive_the_table_growing() -> None:
    auth = AuthInfo()
    ids = [("digest", f"user{i}:x") for i in range(40)]
    for i in ids:
        auth.add(i)
    assert sorted(auth.ids()) == sorted(ids)


def test_unknown_scheme_does_not_authenticate() -> None:
    assert not AuthInfo().authenticate("sasl", b"x", "127.0.0.1")


@pytest.mark.parametrize(
    ("expr", "client", "match"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.0/8", "127.9.9.9", True),
        ("127.0.0.0/9", "127.128.0.1", False),
        ("10.1.2.3/0", "192.168.0.1", True),
        ("10.1.2.3/33", "10.1.2.3", False),
        ("10.1.2", "10.1.2.0", False),
        ("127.0.0.1", "::1", False),
    ],
)
def test_ip_acls_match_with_a_mask(expr: str, client: str, match: bool) -> None:
    auth = AuthInfo()
    auth.add(("ip", client))
    assert auth.allows(((Perms.READ, "ip", expr),), Perms.READ) is match


def test_checks_need_a_matching_permission_and_id() -> None:
    auth = AuthInfo()
    acl = ((Perms.READ, "digest", digest("a:b")), (Perms.WRITE, "world", "anyone"))
    assert not auth.allows(acl, Perms.READ)
    assert auth.allows(acl, Perms.WRITE)
    auth.authenticate("digest", b"a:b", "")
    assert auth.allows(acl, Perms.READ)
    assert not auth.allows(acl, Perms.ADMIN)
    with pytest.raises(KeeperError) as e:
        auth.check(acl, Perms.DELETE)
    assert e.value.code == Err.NOAUTH


def test_super_and_skip_acl_pass_everything() -> None:
    locked = ((Perms.READ, "digest", "x:y"),)
    root = AuthInfo(Security(super_digest=digest("super:pw")))
    root.authenticate("digest", b"super:pw", "")
    assert root.allows(locked, Perms.ADMIN)
    assert AuthInfo(Security(skip_acl=True)).allows(locked, Perms.ADMIN)
    assert AuthInfo().allows((), Perms.ADMIN)  # an empty ACL allows all, as in ZooKeeper


def test_fixup_drops_duplicates_and_expands_auth() -> None:
    auth = AuthInfo()
    auth.add(("ip", "1.2.3.4"))
    with pytest.raises(KeeperError):
        fixup_acl([(31, "auth", "")], auth)  # ip ids are not authenticated ones
    auth.authenticate("digest", b"u:p", "")
    assert fixup_acl([(31, "auth", ""), (1, "world", "anyone"), (1, "world", "anyone")], auth) == (
        (31, "digest", digest("u:p")),
        (1, "world", "anyone"),
    )
    for bad in ([], [(31, "world", "x")], [(31, "digest", "u:")], [(1, "foo", "x")]):
        with pytest.raises(KeeperError) as e:
            fixup_acl(bad, auth)
        assert e.value.code == Err.INVALIDACL


def test_readers_without_admin_see_masked_digests() -> None:
    acl = ((31, "digest", "u:abc="), (1, "ip", "1.2.3.4"))
    assert masked_for_reader(acl) == ((31, "digest", "u:x"), (1, "ip", "1.2.3.4"))


def test_get_ephemerals_order_is_a_cloned_java_hash_set() -> None:
    from pyzk.tree.java_order import java_hash_order

    # ZooKeeper 3.8.0 answered these, in this order (the clone re-bins into 4 slots).
    assert java_hash_order(["/show2/eph", "/show2/container/eph"]) == [
        "/show2/container/eph",
        "/show2/eph",
    ]
