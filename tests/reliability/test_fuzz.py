"""Fuzzing the client port: generated broken frames, against pyzk and Apache ZooKeeper.

Two claims. Each broken input gets ZooKeeper's answer (the same replies and error
codes, the connection closed or kept alike). And however much of it comes, the server
stays up, its memory stays bounded, and a well-behaved client next to it sees no error.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from kazoo.client import KazooClient

from tests.conftest import TARGETS, configured_server
from tests.reliability.conftest import LONG, Figures
from tests.reliability.fuzzing import ROOT, Case, Outcome, cases, equivalent, run_case
from tests.reliability.probes import bystander, peak_rss_bytes, reset_peak_rss
from tests.servers import ServerProcess

EXAMPLES = 2000 if LONG else 100
# Memory a server may gain over a fuzz run (sessions and their buffers come and go).
MAX_GROWTH_BYTES = 64 * 1024 * 1024
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG,  # CI runs the same examples every time; --long explores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_roots = (f"/fz{n:04x}" for n in itertools.count())


def _client(srv: ServerProcess) -> KazooClient:
    zk = KazooClient(hosts=srv.hosts, timeout=10.0)
    zk.start(timeout=15)
    return zk


@pytest.fixture(scope="module")
def pair(
    both_servers: dict[str, ServerProcess],
) -> Iterator[dict[str, tuple[ServerProcess, KazooClient]]]:
    if set(both_servers) != {"pyzk", "zookeeper"}:
        pytest.skip("needs both servers (PYZK_TEST_TARGETS)")
    clients = {kind: (srv, _client(srv)) for kind, srv in both_servers.items()}
    yield clients
    for _, zk in clients.values():
        zk.stop()
        zk.close()


@pytest.mark.timeout(3600 if LONG else 600)
@FUZZ_SETTINGS
@given(case=cases(differential=True))
def test_broken_frames_get_zookeepers_answer(
    pair: dict[str, tuple[ServerProcess, KazooClient]], case: Case, figures: Figures
) -> None:
    outcomes = _both(pair, case)
    if not equivalent(outcomes["zookeeper"], outcomes["pyzk"]):
        outcomes = _both(pair, case)  # once more: a slow answer reads as silence
    same = equivalent(outcomes["zookeeper"], outcomes["pyzk"])
    figures.add("fuzz (vs ZooKeeper)", requests=len(case.frames), violations=int(not same))
    assert same, outcomes


def _both(pair: dict[str, tuple[ServerProcess, KazooClient]], case: Case) -> dict[str, Outcome]:
    """The case on each server, each under a fresh root of its own."""
    root = next(_roots)
    assert len(root) == len(ROOT)
    outcomes = {}
    for kind, (srv, zk) in pair.items():
        zk.create(root, b"")
        outcomes[kind] = run_case(srv.host, srv.port, case, root, step=True)
    return outcomes


@pytest.fixture(scope="module", params=TARGETS)
def lone(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    for srv in configured_server(request, tmp_path_factory, {"maxClientCnxns": "0"}):
        zk = _client(srv)
        zk.ensure_path(ROOT)
        zk.stop()
        yield srv


@pytest.mark.timeout(3600 if LONG else 600)
# The bystander's kazoo thread draws from the random module (ping jitter) while
# hypothesis generates cases, which hypothesis flags; the cases do not use it.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module")
def test_broken_frames_leave_the_server_up_and_its_clients_served(
    lone: ServerProcess, figures: Figures
) -> None:
    sent = [0]

    @FUZZ_SETTINGS
    @given(case=cases())
    def hammer(case: Case) -> None:
        run_case(lone.host, lone.port, case)
        sent[0] += len(case.frames)

    with bystander(lone, f"{ROOT}/bystander") as b:
        before = reset_peak_rss(lone)
        hammer()
        b.wait_ops(10)
        growth = peak_rss_bytes(lone) - before
    figures.add(f"fuzz ({lone.kind}, served)", requests=sent[0])
    figures.note("fuzz", f"{lone.kind}: memory +{growth // 2**20} MiB over the run")
    assert lone.proc is not None and lone.proc.poll() is None, "the server died"
    if lone.kind == "pyzk":  # a JVM grows its heap up to -Xmx as it likes
        assert growth < MAX_GROWTH_BYTES, f"memory grew by {growth // 2**20} MiB"
