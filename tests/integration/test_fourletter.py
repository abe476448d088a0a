"""Four-letter words: each answer compared, field by field, with Apache ZooKeeper's.

Both servers get the same scene (one session with two ephemerals and three watches),
then each word is asked of both. Values that legitimately differ between two servers
(ports, session ids, dates, latencies, packet counts, versions, paths, memory) are
masked; everything else (the lines, their order where ZooKeeper's is fixed, the keys,
the counts of nodes, watches, sessions and connections) must match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient

from tests.conftest import TARGETS, connect
from tests.servers import ServerProcess, four_letter, make_server

pytestmark = pytest.mark.skipif(
    set(TARGETS) != {"pyzk", "zookeeper"}, reason="compares pyzk with ZooKeeper"
)

MASKS = [
    (re.compile(r"(?<=Zookeeper version: ).*"), "V"),
    (re.compile(r"\d+\.\d+\.\d+\.\d+:\d+"), "IP:PORT"),
    (re.compile(r"0x[0-9a-f]{9,}"), "SID"),
    (re.compile(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}"), "DATE"),
    (re.compile(r"Latency min/avg/max: \d+/\d+\.\d+(E-?\d+)?/\d+"), "Latency min/avg/max: L"),
    (re.compile(r"(Received|Sent): \d+"), r"\1: N"),
    (re.compile(r"(recved|sent|est|lresp|llat|minlat|avglat|maxlat|lcxid)=[0-9a-fx]+"), r"\1=N"),
    (re.compile(r"lop=\w+"), "lop=OP"),
]


def mask(text: str) -> str:
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


@pytest.fixture(scope="module")
def scene(both_servers: dict[str, ServerProcess]) -> Iterator[dict[str, ServerProcess]]:
    """On each server: ephemerals /eph and /eph2, watches on /zookeeper, /nothere, /."""
    clients: list[KazooClient] = []
    for srv in both_servers.values():
        zk = connect(srv)
        clients.append(zk)
        zk.create("/eph", b"x", ephemeral=True)
        zk.create("/eph2", b"xy", ephemeral=True)
        zk.get("/zookeeper", watch=lambda e: None)
        zk.exists("/nothere", watch=lambda e: None)
        zk.get_children("/", watch=lambda e: None)
    yield both_servers
    for zk in clients:
        zk.stop()
        zk.close()


def ask(scene: dict[str, ServerProcess], word: str) -> tuple[str, str]:
    return four_letter(scene["pyzk"].port, word), four_letter(scene["zookeeper"].port, word)


@pytest.mark.parametrize("word", ["ruok", "isro", "gtmk", "wchs", "crst", "srst"])
def test_fixed_answers_are_identical(scene: dict[str, ServerProcess], word: str) -> None:
    ours, theirs = ask(scene, word)
    assert ours == theirs


def test_srvr_matches_line_by_line(scene: dict[str, ServerProcess]) -> None:
    ours, theirs = ask(scene, "srvr")
    assert mask(ours).splitlines() == mask(theirs).splitlines()


def test_stat_matches_line_by_line(scene: dict[str, ServerProcess]) -> None:
    ours, theirs = (mask(t).splitlines() for t in ask(scene, "stat"))
    assert ours[:2] == theirs[:2] and ours[-8:] == theirs[-8:]  # version, Clients:, summary
    assert sorted(ours) == sorted(theirs)  # client lines come in hash order in ZooKeeper


def test_cons_lists_the_same_connections(scene: dict[str, ServerProcess]) -> None:
    ours, theirs = ask(scene, "cons")
    assert sorted(mask(ours).splitlines()) == sorted(mask(theirs).splitlines())
    assert ours.endswith("\n\n") and theirs.endswith("\n\n")


def test_conf_has_zookeepers_keys_and_values(scene: dict[str, ServerProcess]) -> None:
    ours, theirs = (dict(ln.split("=", 1) for ln in t.splitlines()) for t in ask(scene, "conf"))
    assert list(ours) == list(theirs)
    for key in ("dataDir", "dataDirSize", "dataLogDir", "dataLogSize", "clientPort"):
        ours.pop(key), theirs.pop(key)
    assert ours == theirs


def test_envi_has_zookeepers_keys_in_order(scene: dict[str, ServerProcess]) -> None:
    ours, theirs = ask(scene, "envi")
    keys = [[ln.split("=")[0] for ln in t.splitlines()] for t in (ours, theirs)]
    assert keys[0] == keys[1]
    assert re.search(r"^os\.memory\.free=\d+MB$", ours, re.M)


def test_dirs_format(scene: dict[str, ServerProcess]) -> None:
    for text in ask(scene, "dirs"):
        assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", text)


def _groups(text: str) -> dict[str, set[str]]:
    """wchc/wchp: heading line -> its tab-indented lines."""
    out: dict[str, set[str]] = {}
    head = ""
    for line in mask(text).splitlines():
        if line.startswith("\t"):
            out[head].add(line)
        elif line:
            head = line
            out[head] = set()
    return out


@pytest.mark.parametrize("word", ["wchc", "wchp"])
def test_watch_listings_match(scene: dict[str, ServerProcess], word: str) -> None:
    ours, theirs = ask(scene, word)
    assert _groups(ours) == _groups(theirs)
    assert ours.endswith("\n\n") or ours == "\n"


def test_dump_sessions_ephemerals_and_connections(scene: dict[str, ServerProcess]) -> None:
    ours, theirs = (mask(t) for t in ask(scene, "dump"))

    def sections(text: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        head = ""
        for line in text.splitlines():
            if line.endswith("dump:"):
                head = line
                out[head] = []
            else:
                out[head].append(line)
        return out

    a, b = sections(ours), sections(theirs)
    assert (
        list(a) == list(b) == ["SessionTracker dump:", "ephemeral nodes dump:", "Connections dump:"]
    )
    # Expiry buckets depend on timing: compare which sessions/connections they hold.
    for head in ("SessionTracker dump:", "Connections dump:"):
        assert sorted(ln for ln in a[head] if ln.startswith("\t")) == sorted(
            ln for ln in b[head] if ln.startswith("\t")
        )
        assert all(
            re.fullmatch(r"(\w+ Sets \(\d+\)/\(\d+\)|\d+ expire at DATE):|\t.*", ln)
            for ln in a[head]
        )
    assert sorted(a["ephemeral nodes dump:"]) == sorted(b["ephemeral nodes dump:"])


def _mntr(text: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in text.splitlines())


# Per-namespace summaries are keyed by the top-level paths a server has seen.
_DYNAMIC = re.compile(r"_(read|write)_per_namespace$")
# Keys whose values must be equal on both servers in this scene.
_SAME_VALUE = [
    "zk_server_state",
    "zk_znode_count",
    "zk_ephemerals_count",
    "zk_watch_count",
    "zk_approximate_data_size",
    "zk_global_sessions",
    "zk_local_sessions",
    "zk_outstanding_requests",
]


def test_mntr_has_zookeepers_keys_and_types(scene: dict[str, ServerProcess]) -> None:
    ours, theirs = (_mntr(t) for t in ask(scene, "mntr"))
    assert list(ours)[:2] == ["zk_version", "zk_server_state"]
    keys = [{k for k in m if not _DYNAMIC.search(k)} for m in (ours, theirs)]
    assert keys[0] == keys[1]
    for key in keys[0] - {"zk_version"}:
        # Same type: integers print as integers, doubles with a point.
        assert ("." in ours[key]) == ("." in theirs[key]), key
    assert {k: ours[k] for k in _SAME_VALUE} == {k: theirs[k] for k in _SAME_VALUE}


@pytest.fixture(scope="module")
def default_whitelist(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, ServerProcess]]:
    servers = {
        k: make_server(k, tmp_path_factory.mktemp(f"wl-{k}"), {"4lw.commands.whitelist": None})
        for k in ("pyzk", "zookeeper")
    }
    for s in servers.values():
        s.start()
    yield servers
    for s in servers.values():
        s.stop()


WORDS = [
    "ruok",
    "stat",
    "srvr",
    "conf",
    "cons",
    "crst",
    "srst",
    "envi",
    "dump",
    "wchs",
    "wchc",
    "wchp",
    "mntr",
    "isro",
    "dirs",
    "gtmk",
]


@pytest.mark.parametrize("word", WORDS)
def test_default_whitelist_refuses_as_zookeeper(
    default_whitelist: dict[str, ServerProcess], word: str
) -> None:
    ours, theirs = ask(default_whitelist, word)
    if word == "srvr":
        assert mask(ours).splitlines()[1:] == mask(theirs).splitlines()[1:]
    else:
        assert ours == theirs == f"{word} is not executed because it is not in the whitelist.\n"
