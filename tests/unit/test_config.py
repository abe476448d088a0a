"""zoo.cfg, -D flags and myid: what is read, what wins, and what stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.config import ConfigError, load

# The seed's zoo.cfg as its entrypoint leaves it: the image's file (with its commented
# snapCount), then "\nserver.N = zookeeperN:2888:3888" appended for each server.
SEED_ZOO_CFG = (
    "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/usr/local/zookeeper/data\n"
    "dataLogDir=/usr/local/zookeeper/wal\n#snapCount=100000\nautopurge.purgeInterval=1\n"
    "clientPort=2181\nquorumListenOnAllIPs=true\n"
    "\nserver.1 = zookeeper1:2888:3888"
    "\nserver.2 = zookeeper2:2888:3888"
    "\nserver.3 = zookeeper3:2888:3888"
)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "zoo.cfg"
    p.write_text(text)
    return p


def test_the_seeds_zoo_cfg_is_read_unchanged(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, SEED_ZOO_CFG), env={"MYID": "2"})
    assert (cfg.tick_time, cfg.init_limit, cfg.sync_limit) == (2000, 10, 5)
    assert cfg.data_dir == Path("/usr/local/zookeeper/data")
    assert cfg.log_dir == Path("/usr/local/zookeeper/wal")
    assert cfg.client_port == 2181 and cfg.quorum_listen_on_all_ips
    assert cfg.autopurge_purge_interval == 1 and cfg.snap_count == 100000
    assert [(s.sid, s.host, s.quorum_port, s.election_port) for s in cfg.servers.values()] == [
        (1, "zookeeper1", 2888, 3888),
        (2, "zookeeper2", 2888, 3888),
        (3, "zookeeper3", 2888, 3888),
    ]
    assert cfg.myid == 2 and not cfg.standalone and cfg.ignored == []


def test_one_server_line_runs_standalone(tmp_path: Path) -> None:
    text = SEED_ZOO_CFG.split("\nserver.2")[0]
    cfg = load(write(tmp_path, text), env={})
    assert cfg.standalone


def test_server_line_forms(tmp_path: Path) -> None:
    text = (
        "dataDir=d\nserver.1=a:1:2\nserver.2 = b:3:4:observer\nserver.3=c:5:6:participant;2181\n"
        "server.4 = [::1]:7:8;127.0.0.1:2182\n"
    )
    cfg = load(write(tmp_path, text), env={"MYID": "1"})
    s = cfg.servers
    assert s[2].role == "observer" and s[3].client_port == 2181
    assert (s[4].host, s[4].client_address, s[4].client_port) == ("::1", "127.0.0.1", 2182)


def test_jvm_flags_apply_and_the_rest_is_collected_to_be_logged(tmp_path: Path) -> None:
    env = {
        "JVMFLAGS": "-Xmx2G -Dzookeeper.4lw.commands.whitelist=ruok,stat -Djute.maxbuffer=4096",
        "SERVER_JVMFLAGS": "-Dzookeeper.skipACL=yes -Dlog4j.configuration=x "
        "-Dreadonlymode.enabled=true",
    }
    cfg = load(write(tmp_path, "dataDir=d\njute.maxbuffer=8192\n"), env=env)
    assert cfg.fourlw_whitelist >= {"ruok", "stat"}
    assert cfg.skip_acl and cfg.readonly_mode
    assert cfg.jute_maxbuffer == 8192  # zoo.cfg wins over -D
    assert cfg.jvm_ignored == ["-Xmx2G", "-Dlog4j.configuration"]


def test_jvm_only_and_unknown_keys_are_ignored_not_fatal(tmp_path: Path) -> None:
    text = (
        "dataDir=d\nserverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
        "authProvider.2=com.example.CustomProvider\n"
        "ssl.keyStore.location=/k\nmetricsProvider.exportJvmInfo=false\n"
    )
    cfg = load(write(tmp_path, text), env={})
    assert cfg.ignored == ["metricsProvider.exportJvmInfo", "authProvider.2"]
    # the security keys are read (pyzk.security.settings), not ignored
    assert cfg.security.providers == {"sasl"}
    assert cfg.security.client_tls.keystore == Path("/k")


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("clientPort=2181\n", {}, "dataDir is not set"),
        ("dataDir=d\nserver.1=host-only\n", {}, "server.1: 'host-only' is not host:quorumPort"),
        ("dataDir=d\nserver.x=a:1:2\n", {}, "server.x: the server id must be a number"),
        ("dataDir=d\nclientPort=http\n", {}, "clientPort: 'http' is not a number"),
        ("dataDir=d\nclientPort=70000\n", {}, "clientPort: 70000 is not a TCP port"),
        ("dataDir=d\n", {"MYID": "one"}, "MYID: 'one' is not a number"),
        ("dataDir=d\n", {"JVMFLAGS": "-Dx='unclosed"}, "JVMFLAGS: No closing quotation"),
        ("dataDir=d\nadmin.enableServer=maybe\n", {}, "admin.enableServer: 'maybe'"),
        ("dataDir=d\nmetricsProvider.className=com.x.Y\n", {}, "metricsProvider.className"),
        ("dataDir=d\nminSessionTimeout=9000\nmaxSessionTimeout=5000\n", {}, "minSessionTimeout"),
    ],
)
def test_bad_settings_name_their_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load(write(tmp_path, text), env=env)


def test_myid_file_must_hold_a_number(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "myid").write_text("abc\n")
    with pytest.raises(ConfigError, match=r"myid: .* holds 'abc', not a number"):
        load(write(tmp_path, f"dataDir={tmp_path / 'data'}\n"), env={})


def test_myid_resolution_order(tmp_path: Path) -> None:
    (tmp_path / "myid").write_text("3\n")
    path = write(tmp_path, f"dataDir={tmp_path}\n")
    assert load(path, env={}).myid == 3
    assert load(path, env={"MYID": "2"}).myid == 2
    assert load(path, env={"MYID": "2"}, myid=1).myid == 1


def test_default_whitelist_is_srvr_and_isro_only_in_readonly_mode(tmp_path: Path) -> None:
    from pyzk.ops.fourletter import enabled

    class View:
        def __init__(self, readonly: bool) -> None:
            self.config = load(None, {"dataDir": "d", "readonlymode.enabled": str(readonly)})

    for word, rw, ro in [("srvr", True, True), ("isro", False, True), ("ruok", False, False)]:
        assert enabled(View(False), word) is rw  # type: ignore[arg-type]
        assert enabled(View(True), word) is ro  # type: ignore[arg-type]
