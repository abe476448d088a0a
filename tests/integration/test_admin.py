"""The AdminServer: every JSON command compared with Apache ZooKeeper's (Jetty) AdminServer.

Both servers run their AdminServer on a free loopback port and get the same scene as
the four-letter-word tests. For each command the JSON must have the same shape (keys,
nesting, value types) and the same values wherever two servers can agree.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient

from bench.ports import free_port
from tests.conftest import TARGETS, connect
from tests.servers import ServerProcess, make_server

pytestmark = pytest.mark.skipif(
    set(TARGETS) != {"pyzk", "zookeeper"}, reason="compares pyzk with ZooKeeper"
)


class Admin:
    def __init__(self, srv: ServerProcess, port: int) -> None:
        self.srv, self.port = srv, port

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, method: str = "GET") -> tuple[int, str]:
        req = urllib.request.Request(self.url(path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, ""

    def command(self, name: str) -> dict[str, Any]:
        status, body = self.get(f"/commands/{name}")
        assert status == 200
        result: dict[str, Any] = json.loads(body)
        return result


@pytest.fixture(scope="module")
def admins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Admin]]:
    out: dict[str, Admin] = {}
    clients: list[KazooClient] = []
    try:
        for kind in ("pyzk", "zookeeper"):
            port = free_port()
            extra: dict[str, str | None] = {
                "admin.enableServer": "true",
                "admin.serverAddress": "127.0.0.1",
                "admin.serverPort": str(port),
            }
            srv = make_server(kind, tmp_path_factory.mktemp(f"admin-{kind}"), extra)
            srv.start()
            out[kind] = Admin(srv, port)
            zk = connect(srv)
            clients.append(zk)
            zk.create("/eph", b"x", ephemeral=True)
            zk.get("/zookeeper", watch=lambda e: None)
            zk.exists("/nothere", watch=lambda e: None)
        yield out
    finally:
        for zk in clients:
            zk.stop()
            zk.close()
        for a in out.values():
            a.srv.stop()


def shape(value: Any) -> Any:
    """Keys, nesting and value types; lists by their first element, ids and times as N."""
    if isinstance(value, dict):
        return {("N" if k.isdigit() else k): shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_command_list_is_zookeepers(admins: dict[str, Admin]) -> None:
    ours, theirs = (a.get("/commands") for a in admins.values())
    assert ours == theirs
    assert admins["pyzk"].get("/commands/")[1] == theirs[1]


def _names(admins: dict[str, Admin]) -> list[str]:
    return re.findall(r'href="/commands/(\w+)"', admins["zookeeper"].get("/commands")[1])


# Commands whose whole answer must be identical on both servers in this scene.
IDENTICAL = [
    "ruok",
    "is_read_only",
    "isro",
    "leader",
    "lead",
    "zabstate",
    "voting_view",
    "observers",
    "hash",
    "get_trace_mask",
    "set_trace_mask",
    "watch_summary",
    "wchs",
    "connection_stat_reset",
    "observer_connection_stat_reset",
    "stat_reset",
    "nosuch",
]


@pytest.mark.parametrize("name", IDENTICAL)
def test_answer_is_identical(admins: dict[str, Admin], name: str) -> None:
    ours, theirs = (a.command(name) for a in admins.values())
    assert ours == theirs


# Commands whose values depend on the machine or process: same shape only.
SHAPE_ONLY = {"environment", "initial_configuration", "last_snapshot", "dirs", "system_properties"}


def test_every_command_has_zookeepers_shape(admins: dict[str, Admin]) -> None:
    for name in _names(admins):
        ours, theirs = (a.command(name) for a in admins.values())
        if name == "monitor":
            dynamic = re.compile(r"_(read|write)_per_namespace$")
            theirs = {k: v for k, v in theirs.items() if not dynamic.search(k)}
        if name == "system_properties":
            assert ours.pop("error") is None
            assert all(isinstance(v, str) for v in ours.values())
            continue
        if name == "environment":
            assert list(ours) == list(theirs)
        assert shape(ours) == shape(theirs), name


def test_values_that_must_agree(admins: dict[str, Admin]) -> None:
    ours, theirs = (a.command("configuration") for a in admins.values())
    for key in ("data_dir", "data_log_dir", "client_port"):
        ours.pop(key), theirs.pop(key)
    assert ours == theirs
    ours, theirs = (a.command("stats") for a in admins.values())
    for key in ("last_processed_zxid", "server_state", "num_alive_client_connections"):
        assert ours["server_stats"][key] == theirs["server_stats"][key], key
    assert ours["node_count"] == theirs["node_count"]
    ours, theirs = (a.command("monitor") for a in admins.values())
    for key in ("znode_count", "ephemerals_count", "watch_count", "approximate_data_size"):
        assert ours[key] == theirs[key], key


def test_watches_and_dump_list_the_same_paths(admins: dict[str, Admin]) -> None:
    ours, theirs = (a.command("watches_by_path") for a in admins.values())
    assert set(ours["path_to_session_ids"]) == set(theirs["path_to_session_ids"])
    ours, theirs = (a.command("watches") for a in admins.values())
    assert [sorted(p) for p in ours["session_id_to_watched_paths"].values()] == [
        sorted(p) for p in theirs["session_id_to_watched_paths"].values()
    ]
    ours, theirs = (a.command("dump") for a in admins.values())
    assert list(ours["session_id_to_ephemeral_paths"].values()) == list(
        theirs["session_id_to_ephemeral_paths"].values()
    )


def test_http_errors_are_zookeepers(admins: dict[str, Admin]) -> None:
    for a in admins.values():
        assert a.get("/commands/ruok", method="POST")[0] == 405
        assert a.get("/nothing-here")[0] == 404
