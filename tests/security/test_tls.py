"""TLS on the secure client port, and the x509 scheme, against pyzk and Apache ZooKeeper.

Each server listens on a plain ``clientPort`` and a TLS ``secureClientPort`` configured
the ZooKeeper way (PEM key and trust stores, NettyServerCnxnFactory). Clients are kazoo
with ``use_ssl`` and raw ``ssl`` sockets; certificates are made for the test session.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import ACL, Id, Permissions

from bench.ports import free_port
from tests.conftest import TARGETS
from tests.security.certs import KEYSTORE_PASSWORD, Certs, Pair, make_certs
from tests.servers import ServerProcess, four_letter, make_server

WAIT_S = 15.0


@dataclass
class SecureServer:
    srv: ServerProcess
    secure_port: int
    certs: Certs

    @property
    def secure_hosts(self) -> str:
        return f"127.0.0.1:{self.secure_port}"


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def tls_settings(certs: Certs, port: int, **more: str) -> dict[str, str | None]:
    return {
        "secureClientPort": str(port),
        "secureClientPortAddress": "127.0.0.1",
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": str(certs.server.keystore),
        "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": str(certs.ca),
        "ssl.trustStore.type": "PEM",
        **more,
    }


def start_secure(kind: str, workdir: Path, certs: Certs, **more: str) -> Iterator[SecureServer]:
    port = free_port()
    srv = make_server(kind, workdir, extra=tls_settings(certs, port, **more))
    try:
        srv.start()
        yield SecureServer(srv, port, certs)
    finally:
        srv.stop()


@pytest.fixture(scope="module", params=TARGETS)
def secure(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, certs: Certs
) -> Iterator[SecureServer]:
    yield from start_secure(request.param, tmp_path_factory.mktemp(request.param), certs)


def tls_client(s: SecureServer, who: Pair | None) -> KazooClient:
    kw: dict[str, object] = {"use_ssl": True, "ca": str(s.certs.ca)}
    if who is not None:
        kw.update(certfile=str(who.cert), keyfile=str(who.key))
    zk = KazooClient(hosts=s.secure_hosts, timeout=10.0, **kw)
    zk.start(timeout=WAIT_S)
    return zk


def handshake(port: int, certs: Certs, who: Pair | None) -> bytes:
    """A raw TLS connection that sends ``srvr``; what the server answered."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(certs.ca)
    if who is not None:
        ctx.load_cert_chain(who.cert, who.key)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as raw,
        ctx.wrap_socket(raw) as sock,
    ):
        sock.sendall(b"srvr")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_a_tls_client_with_a_trusted_certificate_reads_and_writes(
    secure: SecureServer, certs: Certs
) -> None:
    zk = tls_client(secure, certs.client)
    try:
        zk.create("/tls-crud", b"over tls")
        assert zk.get("/tls-crud")[0] == b"over tls"
        zk.delete("/tls-crud")
    finally:
        zk.stop()


ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
# zkCli.sh's classpath has the jar and what its manifest names; the Netty client socket
# needs a few more of Debian's jars (and a logger, so that failures show).
ZKCLI_CLASSPATH = ":".join(
    ["/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar"]
    + [f"/usr/share/java/{j}.jar" for j in ("netty-codec", "netty-resolver", "slf4j-simple")]
)


@pytest.mark.skipif(not ZKCLI.exists(), reason="zkCli.sh not installed")
def test_zkcli_works_over_tls_with_a_client_certificate(secure: SecureServer, certs: Certs) -> None:
    """zkCli.sh as ZooKeeper's admin guide sets it up for TLS (Netty client socket,
    zookeeper.client.secure, PEM stores): the same answers from pyzk and ZooKeeper,
    whoami showing the certificate's x509 id."""
    flags = [
        f"-cp {ZKCLI_CLASSPATH}",  # after zkCli.sh's own -cp, so it wins
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        "-Dzookeeper.client.secure=true",
        f"-Dzookeeper.ssl.keyStore.location={certs.client.keystore}",
        "-Dzookeeper.ssl.keyStore.type=PEM",
        f"-Dzookeeper.ssl.trustStore.location={certs.ca}",
        "-Dzookeeper.ssl.trustStore.type=PEM",
        "-Dzookeeper.ssl.hostnameVerification=false",  # the test certificate names no host
    ]
    cli = subprocess.Popen(
        [str(ZKCLI), "-server", secure.secure_hosts],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CLIENT_JVMFLAGS": " ".join(flags)},
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(cli.stdout or ()), daemon=True)
    reader.start()
    try:
        # Commands typed before the TLS session is up would fail with ConnectionLoss.
        deadline = time.monotonic() + 30
        while not any("SyncConnected" in line for line in lines):
            assert time.monotonic() < deadline and cli.poll() is None, "".join(lines[-20:])
            time.sleep(0.1)
        assert cli.stdin is not None
        cli.stdin.write("create /zkcli-tls hello\nget /zkcli-tls\nwhoami\nls /\nquit\n")
        cli.stdin.close()
        cli.wait(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        reader.join(10)
    out = [line.rstrip("\n") for line in lines]
    assert "Created /zkcli-tls" in out and "hello" in out, out[-20:]
    assert "x509: CN=alice,OU=tests,O=pyzk" in out
    assert any(line.startswith("[") and "zkcli-tls" in line for line in out)
    admin = KazooClient(hosts=secure.srv.hosts, timeout=10.0)
    admin.start(timeout=WAIT_S)
    try:
        admin.delete("/zkcli-tls")  # the module's servers are shared
    finally:
        admin.stop()


def test_the_plain_port_serves_beside_the_secure_one(secure: SecureServer) -> None:
    assert "Mode: standalone" in four_letter(secure.srv.port, "srvr")
    zk = KazooClient(hosts=secure.srv.hosts, timeout=10.0)
    zk.start(timeout=WAIT_S)
    try:
        assert zk.exists("/") is not None
    finally:
        zk.stop()


def test_four_letter_words_work_inside_tls(secure: SecureServer, certs: Certs) -> None:
    assert b"Mode: standalone" in handshake(secure.secure_port, certs, certs.client)


def test_conf_shows_the_secure_client_port(secure: SecureServer) -> None:
    conf = four_letter(secure.srv.port, "conf")
    assert f"secureClientPort={secure.secure_port}" in conf.splitlines()


def test_a_certificate_subject_is_an_x509_id_usable_in_acls(
    secure: SecureServer, certs: Certs
) -> None:
    owner, other = tls_client(secure, certs.client), tls_client(secure, certs.other_client)
    try:
        acl = [ACL(Permissions.ALL, Id("x509", certs.client.subject))]
        owner.create("/x509-only", b"secret", acl=acl)
        assert owner.get("/x509-only")[0] == b"secret"
        assert owner.get_acls("/x509-only")[0] == acl
        with pytest.raises(NoAuthError):
            other.get("/x509-only")
        # an "auth" ACL expands to the connection's x509 id
        owner.create("/x509-auth", b"", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        assert owner.get_acls("/x509-auth")[0] == acl
        owner.delete("/x509-auth")
        owner.delete("/x509-only")
    finally:
        owner.stop()
        other.stop()


def test_a_plain_text_client_on_the_tls_port_is_dropped(secure: SecureServer) -> None:
    with socket.create_connection(("127.0.0.1", secure.secure_port), timeout=WAIT_S) as s:
        s.sendall(struct.pack(">i", 44) + b"\0" * 44)  # a ConnectRequest, unencrypted
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
    assert data == b""
    assert b"Mode: standalone" in handshake(secure.secure_port, secure.certs, secure.certs.client)


@pytest.mark.parametrize("who", ["untrusted", "expired", "none"])
def test_a_client_certificate_that_is_not_valid_fails_the_handshake(
    secure: SecureServer, certs: Certs, who: str
) -> None:
    pair = {"untrusted": certs.untrusted, "expired": certs.expired, "none": None}[who]
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        reply = handshake(secure.secure_port, certs, pair)
        if not reply:  # TLS 1.3 reports a refused certificate only on the first read
            raise ConnectionResetError("closed")
    # nothing else is disturbed
    assert b"Mode: standalone" in handshake(secure.secure_port, certs, certs.client)


def test_the_server_certificate_is_the_configured_one(secure: SecureServer, certs: Certs) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(certs.ca)
    ctx.load_cert_chain(certs.client.cert, certs.client.key)
    with (
        socket.create_connection(("127.0.0.1", secure.secure_port), timeout=WAIT_S) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        cert = sock.getpeercert()
        assert cert is not None
        # typeshed types every field of the dict as one union; "subject" holds the RDNs.
        rdns = cast("tuple[tuple[tuple[str, str], ...], ...]", cert["subject"])
        subject = dict(x[0] for x in rdns)
        assert subject["commonName"] == "server"
        assert sock.version() == "TLSv1.2"  # ZooKeeper 3.8's default protocol


# --- clientAuth=want, with a PKCS#12 key store --------------------------------------------


@pytest.fixture(scope="module", params=TARGETS)
def optional_certs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, certs: Certs
) -> Iterator[SecureServer]:
    yield from start_secure(
        request.param,
        tmp_path_factory.mktemp(f"want-{request.param}"),
        certs,
        **{
            "ssl.clientAuth": "want",
            "ssl.keyStore.location": str(certs.server_p12),
            "ssl.keyStore.type": "PKCS12",
            "ssl.keyStore.password": KEYSTORE_PASSWORD,
        },
    )


def test_with_client_auth_want_a_client_without_certificate_connects_without_id(
    optional_certs: SecureServer, certs: Certs
) -> None:
    anonymous = tls_client(optional_certs, None)
    owner = tls_client(optional_certs, certs.client)
    try:
        owner.create("/want", b"", acl=[ACL(Permissions.ALL, Id("x509", certs.client.subject))])
        with pytest.raises(NoAuthError):
            anonymous.get("/want")
        owner.delete("/want")
    finally:
        anonymous.stop()
        owner.stop()


def test_addauth_x509_succeeds_only_with_a_client_certificate(
    secure: SecureServer, certs: Certs
) -> None:
    zk = tls_client(secure, certs.client)
    try:
        zk.add_auth("x509", "")  # the certificate is the credential
        assert zk.exists("/") is not None
    finally:
        zk.stop()
    plain = KazooClient(hosts=secure.srv.hosts, timeout=10.0, connection_retry={"max_tries": 0})
    plain.start(timeout=WAIT_S)
    try:
        with pytest.raises(AuthFailedError):
            plain.add_auth("x509", "")
    finally:
        plain.stop()
