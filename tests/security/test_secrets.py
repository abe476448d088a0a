"""Secrets are never shown or logged: four-letter words, AdminServer, the log.

A pyzk server is given every kind of secret ZooKeeper takes (key and trust store
passwords, the superDigest, the SASL super password, JAAS passwords), in zoo.cfg and as
``-D`` flags, then used (TLS and SASL logins, a failed one too); none of the secret values
may appear in any answer or in the log. (Apache ZooKeeper 3.8 prints some of them in
``system_properties`` and ``initial_configuration``: this is pyzk's own rule.)
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl_credential

from bench.ports import free_port
from tests.security.certs import KEYSTORE_PASSWORD, Certs, make_certs
from tests.servers import ServerProcess, four_letter

SECRETS = {
    "keystore": KEYSTORE_PASSWORD,
    "truststore": "truststore-pw-4711",
    "super": "superdigest-pw-0815",
    "sasl-super": "sasl-super-pw-1337",
    "jaas": "jaas-user-pw-2718",
}
WORDS = ("conf", "envi", "srvr", "stat", "mntr", "cons", "dump")
ADMIN = ("configuration", "environment", "system_properties", "initial_configuration",
         "server_stats", "connections", "monitor")  # fmt: skip


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("secrets")
    certs = make_certs(workdir / "certs")
    jaas = workdir / "jaas.conf"
    jaas.write_text(
        "Server { org.apache.zookeeper.server.auth.DigestLoginModule required "
        f'user_bob="{SECRETS["jaas"]}"; }};\n'
    )
    port, secure, admin = free_port(), free_port(), free_port()
    digest = make_digest_acl_credential("super", SECRETS["super"]).split(":", 1)[1]
    cfg = workdir / "zoo.cfg"
    cfg.write_text(
        f"dataDir={workdir / 'data'}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
        f"secureClientPort={secure}\nsecureClientPortAddress=127.0.0.1\n"
        "admin.enableServer=true\nadmin.serverAddress=127.0.0.1\n"
        f"admin.serverPort={admin}\n4lw.commands.whitelist=*\n"
        f"ssl.keyStore.location={certs.server_p12}\nssl.keyStore.type=PKCS12\n"
        f"ssl.keyStore.password = {SECRETS['keystore']}\n"
        f"ssl.trustStore.location={certs.ca}\n"
        f"ssl.trustStore.password={SECRETS['truststore']}\n"
        f"DigestAuthenticationProvider.superDigest=super:{digest}\n"
        "authProvider.sasl=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
    )
    flags = (
        f"-Djava.security.auth.login.config={jaas} "
        f"-Dzookeeper.SASLAuthenticationProvider.superPassword={SECRETS['sasl-super']} "
        f"-Dzookeeper.ssl.quorum.keyStore.password={SECRETS['keystore']}"
    )
    server = ServerProcess(
        "pyzk",
        port,
        workdir,
        [sys.executable, "-m", "pyzk", "--config", str(cfg), "--log-level", "DEBUG"],
        env={"SERVER_JVMFLAGS": flags},
    )
    server.admin_port = admin  # type: ignore[attr-defined]
    try:
        server.start()
        use_every_secret(server, certs, secure)
        yield server
    finally:
        server.stop()


def use_every_secret(server: ServerProcess, certs: Certs, secure: int) -> None:
    # use every secret once: a TLS client, a SASL login, a failed one, the super user
    tls = KazooClient(hosts=f"127.0.0.1:{secure}", use_ssl=True, ca=str(certs.ca),
                      certfile=str(certs.client.cert), keyfile=str(certs.client.key))  # fmt: skip
    tls.start(timeout=15)
    tls.add_auth("digest", f"super:{SECRETS['super']}")
    tls.stop()
    for password in (SECRETS["jaas"], "wrong-" + SECRETS["jaas"]):
        zk = KazooClient(
            hosts=server.hosts,
            sasl_options={"mechanism": "DIGEST-MD5", "username": "bob", "password": password},
            connection_retry={"max_tries": 0},
        )
        zk.start(timeout=15)
        zk.stop()


def assert_no_secret(text: str, where: str) -> None:
    for name, value in SECRETS.items():
        assert value not in text, f"the {name} secret shows in {where}"


@pytest.mark.parametrize("word", WORDS)
def test_four_letter_words_show_no_secret(srv: ServerProcess, word: str) -> None:
    assert_no_secret(four_letter(srv.port, word), word)


@pytest.mark.parametrize("command", ADMIN)
def test_admin_commands_show_no_secret(srv: ServerProcess, command: str) -> None:
    url = f"http://127.0.0.1:{srv.admin_port}/commands/{command}"  # type: ignore[attr-defined]
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = resp.read().decode()
    assert_no_secret(body, command)
    if command == "initial_configuration":
        text = json.loads(body)["initial_configuration"]
        assert "ssl.keyStore.password = ******" in text
        assert "ssl.keyStore.location=" in text  # the rest as written
    if command == "system_properties":
        props = json.loads(body)
        assert props["zookeeper.SASLAuthenticationProvider.superPassword"] == "******"


def test_the_log_shows_no_secret(srv: ServerProcess) -> None:
    log = Path(srv.workdir / "server.log").read_text(errors="replace")
    assert "failed to SASL authenticate" in log  # the failed login was logged...
    assert_no_secret(log, "the log")  # ...without what was sent
