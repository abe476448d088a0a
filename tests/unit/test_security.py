"""The security modules without sockets: DIGEST-MD5, JAAS, x500 names, settings, redaction."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from puresasl.client import SASLClient

from pyzk.config import ConfigError, load
from pyzk.jute.codes import Err, OpCode
from pyzk.pipeline import sasl_session
from pyzk.pipeline.acl import AuthInfo, Security, fixup_acl
from pyzk.pipeline.connection import ClientConnection
from pyzk.pipeline.errors import KeeperError
from pyzk.pipeline.wire import REPLY
from pyzk.security import ciphers, jaas, redact, x500
from pyzk.security.digest_md5 import DigestMD5Client, DigestMD5Server, SaslError
from pyzk.security.sasl import SaslConfig, kerberos_name_valid
from pyzk.security.settings import SecurityConfigError, is_secret_key, store_type

USERS = {"bob": "bob-secret", "super": "admin"}


def server() -> DigestMD5Server:
    return SaslConfig(USERS).new_server()


# --- DIGEST-MD5 ----------------------------------------------------------------------------


def test_digest_md5_logs_in_kazoos_client_pure_sasl() -> None:
    srv = server()
    cli = SASLClient(
        "zk-sasl-md5", "zookeeper", "DIGEST-MD5", username="bob", password="bob-secret"
    )
    challenge = srv.evaluate(cli.process(None) or b"")
    assert challenge.startswith(b'realm="zk-sasl-md5",nonce="')
    assert challenge.endswith(b'",charset=utf-8,algorithm=md5-sess')  # as the JDK's
    rspauth = srv.evaluate(cli.process(challenge))
    assert srv.complete and srv.authorization_id == "bob"
    assert rspauth.startswith(b"rspauth=")
    cli.process(rspauth)  # raises if the server's proof is wrong
    assert cli.complete


def test_digest_md5_server_and_client_agree_and_prove_each_other() -> None:
    srv, cli = server(), DigestMD5Client("bob", "bob-secret")
    rspauth = srv.evaluate(cli.evaluate(srv.evaluate(cli.initial())))
    cli.evaluate(rspauth)
    assert srv.complete and cli.complete


def test_digest_md5_matches_rfc_2831s_example_arithmetic() -> None:
    """The response value computed by hand from RFC 2831 §2.1.2.1's formulas."""
    nonce, cnonce = b"OA6MG9tEQGm2hh", b"OA6MHXh6VqTrRk"
    srv = DigestMD5Server({"chris": "secret"}.get, nonce=nonce)
    srv.evaluate(b"")
    uri = b"zookeeper/zk-sasl-md5"
    a1 = hashlib.md5(b"chris:zk-sasl-md5:secret").digest() + b":" + nonce + b":" + cnonce
    ha2 = hashlib.md5(b"AUTHENTICATE:" + uri).hexdigest().encode()
    kd = hashlib.md5(a1).hexdigest().encode() + b":" + nonce + b":00000001:" + cnonce
    response = hashlib.md5(kd + b":auth:" + ha2).hexdigest().encode()
    token = (
        b'username="chris",realm="zk-sasl-md5",nonce="' + nonce + b'",nc=00000001,cnonce="'
        + cnonce + b'",digest-uri="' + uri + b'",response=' + response + b",qop=auth"
    )  # fmt: skip
    assert srv.evaluate(token).startswith(b"rspauth=")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((b"bob-secret", b"wrong"), "Mismatched response"),
        ((b'username="bob"', b'username="eve"'), "cannot acquire password"),
        ((b"zookeeper/zk-sasl-md5", b"http/zk-sasl-md5"), "Mismatched URI"),
        ((b"nc=00000001", b"nc=00000002"), "Nonce count"),
        ((b'realm="zk-sasl-md5"', b'realm="other"'), "Nonexistent realm"),
    ],
)
def test_digest_md5_refuses_a_response_that_does_not_hold(
    change: tuple[bytes, bytes], message: str
) -> None:
    srv = server()
    challenge = srv.evaluate(b"")
    password = "wrong" if change[1] == b"wrong" else "bob-secret"
    token = DigestMD5Client("bob", password).evaluate(challenge)
    if change[1] != b"wrong":
        token = token.replace(change[0], change[1])
    with pytest.raises(SaslError, match=message):
        srv.evaluate(token)
    assert not srv.complete


def test_digest_md5_ignores_an_initial_response_and_refuses_a_second_login() -> None:
    assert b"nonce=" in server().evaluate(b"\x60\x82 a GSSAPI token")  # as the JDK does
    srv, cli = server(), DigestMD5Client("bob", "bob-secret")
    srv.evaluate(cli.evaluate(srv.evaluate(b"")))
    with pytest.raises(SaslError, match="already complete"):
        srv.evaluate(b"")


def test_a_client_refuses_a_server_that_does_not_know_the_password() -> None:
    impostor = DigestMD5Server({"bob": "guessed"}.get)
    cli = DigestMD5Client("bob", "bob-secret")
    token = cli.evaluate(impostor.evaluate(b""))
    with pytest.raises(SaslError):
        impostor.evaluate(token)
    with pytest.raises(SaslError, match="rspauth"):
        cli.evaluate(b"rspauth=0123456789abcdef0123456789abcdef")


def test_sasl_names_are_shortened_as_kerberos_rules_do() -> None:
    cfg = SaslConfig({}, remove_realm=True)
    assert cfg.authorized_id("bob", "bob") == "bob"
    assert cfg.authorized_id("zk/host@EXAMPLE.COM", "") == "zk/host"
    assert SaslConfig({}).authorized_id("zk/host@EXAMPLE.COM", "") == "zk/host@EXAMPLE.COM"
    assert kerberos_name_valid("bob") and kerberos_name_valid("zk/h@R")
    assert not kerberos_name_valid("a@b@c")


# --- the sasl packet and enforcement on a connection ----------------------------------------


def _conn(security: Security) -> ClientConnection:
    conn = ClientConnection(peer="127.0.0.1:5000")
    conn.auth.security = security
    return conn


def _errors(conn: ClientConnection) -> list[int]:
    return [REPLY.unpack_from(frame)[3] for frame in conn.outbox]


def test_a_completed_login_adds_the_sasl_id_and_super() -> None:
    conn = _conn(Security(sasl=SaslConfig(USERS, super_users=frozenset({"bob"}))))
    cli = DigestMD5Client("bob", "bob-secret")
    assert not sasl_session.step(conn, 1, b"")
    challenge = conn.outbox[-1][20:]
    assert not sasl_session.step(conn, 2, cli.evaluate(challenge))
    assert ("sasl", "bob") in conn.auth and ("super", "") in conn.auth
    assert _errors(conn) == [Err.OK, Err.OK]


def test_a_failed_login_is_authfailed_or_maintained_when_allowed() -> None:
    conn = _conn(Security(sasl=SaslConfig(USERS)))
    sasl_session.step(conn, 1, b"")
    assert sasl_session.step(conn, 2, b'username="bob",nonce="x"')  # close
    assert _errors(conn)[-1] == Err.AUTHFAILED
    kept = _conn(Security(sasl=SaslConfig(USERS, allow_failed=True)))
    sasl_session.step(kept, 1, b"")
    assert not sasl_session.step(kept, 2, b'username="bob"')
    assert _errors(kept)[-1] == Err.OK and ("sasl", "bob") not in kept.auth


def test_enforcement_closes_a_connection_without_the_scheme() -> None:
    security = Security(enforce_schemes=frozenset({"sasl"}))
    conn = _conn(security)
    assert not sasl_session.admit(conn, 7)
    assert conn.closing and _errors(conn) == [Err.SESSIONCLOSEDREQUIRESASLAUTH]
    ok = _conn(security)
    ok.auth.add(("sasl", "bob"))
    assert sasl_session.admit(ok, 8) and not ok.closing
    assert sasl_session.admit(_conn(Security()), 9)  # off by default
    assert OpCode.sasl.value == 102


# --- schemes in ACLs ------------------------------------------------------------------------


def test_sasl_and_x509_acls_need_their_providers() -> None:
    acl = [(31, "sasl", "bob")]
    with pytest.raises(KeeperError):
        fixup_acl(acl, AuthInfo(Security()))
    assert fixup_acl(acl, AuthInfo(Security(providers=frozenset({"sasl"})))) == (
        (31, "sasl", "bob"),
    )
    x509_acl = [(31, "x509", "CN=alice,O=pyzk")]
    with_x509 = AuthInfo(Security(providers=frozenset({"x509"})))
    assert fixup_acl(x509_acl, with_x509)
    with pytest.raises(KeeperError):
        fixup_acl([(31, "x509", "not a name")], with_x509)


def test_an_x509_super_id_passes_every_check() -> None:
    auth = AuthInfo(Security(providers=frozenset({"x509"})))
    assert not auth.allows(((31, "digest", "u:p"),), 1)
    auth.add(("super", "CN=admin"))
    assert auth.allows(((31, "digest", "u:p"),), 1)


def test_the_sasl_user_named_super_matches_any_sasl_acl() -> None:
    auth = AuthInfo(Security(providers=frozenset({"sasl"})))
    auth.add(("sasl", "super"))
    assert auth.allows(((1, "sasl", "bob"),), 1)


# --- x500 names -----------------------------------------------------------------------------


def _name(*parts: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, v) for oid, v in parts])


def test_subjects_print_as_javas_x500principal_getname() -> None:
    name = _name(
        (NameOID.COUNTRY_NAME, "DE"),
        (NameOID.ORGANIZATION_NAME, "ACME, Inc."),
        (NameOID.COMMON_NAME, "alice"),
    )
    assert x500.rfc2253(name) == "CN=alice,O=ACME\\, Inc.,C=DE"
    email = _name((NameOID.EMAIL_ADDRESS, "a@b.c"), (NameOID.COMMON_NAME, "bob"))
    assert x500.rfc2253(email) == "CN=bob,1.2.840.113549.1.9.1=#1605614062" + "2e63"


def test_x500_validity_as_x500principal_parses() -> None:
    for ok in ("", "CN=alice,OU=tests,O=pyzk", "cn=a+uid=b;o=x", "1.2.3=#0403616263",
               'CN="a, b"', "EMAILADDRESS=a@b"):  # fmt: skip
        assert x500.is_valid(ok), ok
    for bad in ("alice", "=x", "FOO=bar", 'CN="open', "CN=a\\", "CN=#zz"):
        assert not x500.is_valid(bad), bad


# --- JAAS -----------------------------------------------------------------------------------


def test_a_jaas_file_gives_users_and_learner_credentials() -> None:
    text = """
    /* comment */ Server {
        org.apache.zookeeper.server.auth.DigestLoginModule required
        user_super="adminsecret" // trailing comment
        user_bob="bob\\"s";
    };
    QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required
        username="zk" password="q"; };
    """
    sections = jaas.parse(text)
    assert jaas.digest_users(sections["Server"]) == {"super": "adminsecret", "bob": 'bob"s'}
    assert jaas.digest_credentials(sections["QuorumLearner"]) == ("zk", "q")
    assert jaas.uses_only_digest(sections["Server"])
    with pytest.raises(jaas.JaasError):
        jaas.parse("Server { org.Foo required user_a=; };")


# --- settings, ciphers, redaction -----------------------------------------------------------


def test_java_cipher_suite_names_map_to_openssls() -> None:
    assert ciphers.to_openssl("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") == (
        "ECDHE-RSA-AES128-GCM-SHA256"
    )
    assert ciphers.to_openssl("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384") == (
        "ECDHE-ECDSA-AES256-SHA384"
    )
    assert ciphers.to_openssl("TLS_RSA_WITH_AES_128_CBC_SHA") == "AES128-SHA"
    assert ciphers.to_openssl("TLS_FOO_WITH_BAR") is None
    openssl, unknown = ciphers.cipher_string(ciphers.ZK_DEFAULT_SUITES)
    assert not unknown and openssl.count(":") == len(ciphers.ZK_DEFAULT_SUITES) - 1


def test_security_keys_work_in_zoo_cfg_and_as_d_flags(tmp_path: Path) -> None:
    env = {
        "SERVER_JVMFLAGS": "-Djava.security.auth.login.config=/etc/jaas.conf "
        "-Dzookeeper.ssl.clientAuth=want -Dzookeeper.enforce.auth.enabled=true "
        "-Dzookeeper.enforce.auth.schemes=sasl,x509"
    }
    cfg = load(
        None,
        {
            "secureClientPort": "2281",
            "ssl.clientAuth": "none",
            "authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        },
        env=env,
    )
    s = cfg.security
    assert cfg.secure_client_port == 2281
    assert s.client_tls.client_auth == "none"  # the file wins over -D
    assert s.jaas_file == Path("/etc/jaas.conf")
    assert s.providers == {"sasl", "x509"} and s.enforce_schemes == {"sasl", "x509"}
    assert "java.security.auth.login.config" not in " ".join(cfg.jvm_ignored)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"enforce.auth.enabled": "true"}, "enforce.auth.schemes must be configured"),
        ({"sessionRequireClientSASLAuth": "true"}, "scheme sasl is not available"),
        ({"ssl.clientAuth": "maybe"}, "ssl.clientAuth"),
        ({"quorum.auth.serverRequireSasl": "true"}, "quorum.auth.enableSasl is disabled"),
        ({"quorum.auth.enableSasl": "yes"}, "quorum.auth.enableSasl"),
    ],
)
def test_invalid_security_settings_stop_start_up(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(None, settings, env={})


def test_key_stores_are_typed_as_zookeeper_does() -> None:
    assert store_type("k", Path("a.pem"), None) == "PEM"
    assert store_type("k", Path("a.bin"), "pkcs12") == "PKCS12"
    for path, declared in ((Path("a.jks"), None), (Path("a.bin"), None), (Path("a"), "XYZ")):
        with pytest.raises(SecurityConfigError):
            store_type("k", path, declared)


def test_secrets_are_masked_in_shown_configuration() -> None:
    for key in ("ssl.keyStore.password", "ssl.quorum.trustStore.password",
                "DigestAuthenticationProvider.superDigest",
                "SASLAuthenticationProvider.superPassword"):  # fmt: skip
        assert is_secret_key(key), key
    assert not is_secret_key("ssl.keyStore.passwordPath")
    assert not is_secret_key("ssl.keyStore.location")
    text = (
        "dataDir=/d\nssl.keyStore.password = hunter2\n"
        "DigestAuthenticationProvider.superDigest=s:x\n"
    )
    shown = redact.config_text(text)
    assert "hunter2" not in shown and "s:x" not in shown
    assert "ssl.keyStore.password = ******" in shown and "dataDir=/d" in shown
    props = redact.properties({"zookeeper.ssl.keyStore.password": "p", "user.dir": "/"})
    assert props == {"zookeeper.ssl.keyStore.password": "******", "user.dir": "/"}
