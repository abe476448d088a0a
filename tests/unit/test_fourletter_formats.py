"""Four-letter words against a fake server view, without sockets or a reference server.

The expected texts follow outputs captured from Apache ZooKeeper 3.8.0 (the integration
tests compare with a live one); here the state is fixed, so the answers are exact.
"""

from __future__ import annotations

import time
from typing import Any

from pyzk.config import load
from pyzk.ops import ZK_VERSION, admin, fourletter
from pyzk.ops.stats import ConnectionStats, ServerMetrics, ServerStats
from pyzk.ops.view import ConnInfo
from pyzk.tree.datatree import OPEN_ACL_UNSAFE, DataTree
from pyzk.tree.txn import CreateTxn, Txn

SID = 0x10000041AD60002
# 2026-11-25 15:34:55 UTC, printed by Java's Date.toString in UTC.
WHEN_MS = 1795620895000


class FakeView:
    def __init__(self, **settings: str) -> None:
        self.config = load(None, {"dataDir": "/data", "clientPort": "2181", **settings})
        self.stats = ServerStats()
        self.metrics = ServerMetrics()
        self.tree = DataTree()
        self.trace_mask = 306
        self.mode = "standalone"
        self.serving = True
        session = ConnectionStats(1795620885044)
        session.request_read(3, 3, 100)
        session.pending.clear()
        session.packets_received = session.packets_sent = 5
        session.answered(11, 3, 0x19, 1, 464777, [1, 0, 2, 1])
        self.conns = [
            ConnInfo("127.0.0.1:55634", SID, 10000, 1, session, "w1", WHEN_MS),
            ConnInfo("127.0.0.1:55638", 0, 0, 0, _four_letter_conn(), "w2", WHEN_MS),
        ]

    def connections(self) -> list[ConnInfo]:
        return self.conns

    def outstanding(self) -> int:
        return 0

    def uptime_ms(self) -> int:
        return 1000

    def global_sessions(self) -> int:
        return 1

    def session_buckets(self) -> list[tuple[int, list[int]]]:
        return [(WHEN_MS, []), (WHEN_MS + 4000, [SID])]

    def dir_sizes(self) -> tuple[int, int]:
        return 67109337, 67109337

    def data_dirs(self) -> tuple[str, str]:
        return "/data", "/data"

    def environment(self) -> list[tuple[str, str]]:
        return [("zookeeper.version", "v"), ("os.memory.free", "379MB")]

    def system_properties(self) -> dict[str, str]:
        return {}

    def initial_config(self) -> str:
        return ""

    def file_descriptors(self) -> tuple[int, int]:
        return 39, 20000

    def role_gauges(self) -> dict[str, int]:
        return {}

    def voting_view(self) -> dict[str, Any]:
        return {}

    def leader_info(self) -> dict[str, Any]:
        return {}

    def zab_state(self) -> dict[str, Any]:
        return {}

    def last_snapshot(self) -> tuple[int, int] | None:
        return None


def _four_letter_conn() -> ConnectionStats:
    stats = ConnectionStats(0)
    stats.four_letter = True
    stats.packets_received = 1
    return stats


def answer(view: FakeView, word: str) -> str:
    return fourletter.answer(view, word)


def test_cons_lines_as_zookeeper_prints_them() -> None:
    assert answer(FakeView(**{"4lw.commands.whitelist": "*"}), "cons") == (
        " /127.0.0.1:55634[1](queued=0,recved=5,sent=5,sid=0x10000041ad60002,lop=PING,"
        "est=1795620885044,to=10000,lcxid=0x3,lzxid=0x19,lresp=464777,llat=1,minlat=0,"
        "avglat=1,maxlat=2)\n"
        " /127.0.0.1:55638[0](queued=0,recved=1,sent=0)\n"
        "\n"
    )


def test_srvr_summary_lines() -> None:
    view = FakeView()
    for ms in (0, 13, 1, 2):
        view.stats.latency.add(ms)
    view.stats.packets_received, view.stats.packets_sent = 44, 43
    assert answer(view, "srvr") == (
        f"Zookeeper version: {ZK_VERSION}\n"
        "Latency min/avg/max: 0/4.0/13\nReceived: 44\nSent: 43\nConnections: 2\n"
        "Outstanding: 0\nZxid: 0x0\nMode: standalone\nNode count: 5\n"
    )


def test_watch_words() -> None:
    view = FakeView(**{"4lw.commands.whitelist": "wchs,wchc,wchp"})
    view.tree.watches.data.add("/nonexistent-pyzk-research", "w1")
    view.tree.watches.data.add("/zookeeper", "w1")
    view.tree.watches.child.add("/", "w1")  # child watches are not listed
    assert answer(view, "wchs") == "1 connections watching 2 paths\nTotal watches:2\n"
    assert answer(view, "wchc") == (
        "0x10000041ad60002\n\t/nonexistent-pyzk-research\n\t/zookeeper\n\n"
    )
    assert answer(view, "wchp") == (
        "/nonexistent-pyzk-research\n\t0x10000041ad60002\n/zookeeper\n\t0x10000041ad60002\n\n"
    )


def test_dump_sections(monkeypatch: Any) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    view = FakeView(**{"4lw.commands.whitelist": "dump"})
    view.tree.apply(Txn(SID, 1, 1, 0, CreateTxn("/eph", b"x", OPEN_ACL_UNSAFE, SID, 1)))
    assert answer(view, "dump") == (
        "SessionTracker dump:\nSession Sets (2)/(1):\n"
        "0 expire at Wed Nov 25 15:34:55 UTC 2026:\n"
        "1 expire at Wed Nov 25 15:34:59 UTC 2026:\n\t0x10000041ad60002\n"
        "ephemeral nodes dump:\nSessions with Ephemerals (1):\n0x10000041ad60002:\n\t/eph\n"
        "Connections dump:\nConnections Sets (1)/(2):\n"
        "2 expire at Wed Nov 25 15:34:55 UTC 2026:\n"
        "\tip: /127.0.0.1:55634 sessionId: 0x10000041ad60002\n"
        "\tip: /127.0.0.1:55638 sessionId: 0x0\n"
    )


def test_conf_dirs_envi_and_resets() -> None:
    view = FakeView(**{"4lw.commands.whitelist": "*"})
    assert answer(view, "conf") == (
        "clientPort=2181\nsecureClientPort=-1\ndataDir=/data\ndataDirSize=67109337\n"
        "dataLogDir=/data\ndataLogSize=67109337\ntickTime=2000\nmaxClientCnxns=60\n"
        "minSessionTimeout=4000\nmaxSessionTimeout=40000\nclientPortListenBacklog=-1\n"
        "serverId=0\n"
    )
    assert answer(view, "dirs") == "datadir_size: 67109337\nlogdir_size: 67109337\n"
    assert answer(view, "envi") == "Environment:\nzookeeper.version=v\nos.memory.free=379MB\n"
    assert answer(view, "crst") == "Connection stats reset.\n"
    assert view.conns[0].stats.last_op == "NA" and view.conns[0].stats.packets_sent == 0
    assert answer(view, "srst") == "Server stats reset.\n"
    assert (answer(view, "ruok"), answer(view, "isro"), answer(view, "gtmk")) == (
        "imok",
        "rw",
        "306",
    )


def test_not_whitelisted_and_not_serving() -> None:
    view = FakeView()
    assert answer(view, "stat") == "stat is not executed because it is not in the whitelist.\n"
    view.serving = False
    assert answer(view, "srvr") == ("This ZooKeeper instance is not currently serving requests\n")


def test_mntr_starts_with_version_and_state_then_gauges() -> None:
    lines = answer(FakeView(**{"4lw.commands.whitelist": "mntr"}), "mntr").splitlines()
    assert lines[:4] == [
        f"zk_version\t{ZK_VERSION}",
        "zk_server_state\tstandalone",
        "zk_avg_latency\t0.0",
        "zk_max_latency\t0",
    ]
    assert "zk_approximate_data_size\t44" in lines  # the system nodes, as ZooKeeper
    assert "zk_p999_readlatency\t0" in lines


def test_admin_commands_answer_with_command_and_error() -> None:
    view = FakeView()
    assert admin.run(view, "ruok") == {"command": "ruok", "error": None}
    assert admin.run(view, "wchs") == {
        "num_connections": 0,
        "num_paths": 0,
        "num_total_watches": 0,
        "command": "watch_summary",
        "error": None,
    }
    assert admin.run(view, "bogus")["error"] == "Unknown command: bogus"
    assert admin.run(view, "stmk", {"traceMask": "x"})["error"] == (
        "setTraceMask requires long traceMask argument, got x"
    )
    assert admin.run(view, "lsnp")["zxid"] == "ffffffffffffffff"
