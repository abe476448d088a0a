"""A leader frozen (SIGSTOP, a VM pause) and thawed must not answer a sync from its past.

While it was frozen the others elected a new leader and acknowledged a write. A sync and
a read that a client queued to it meanwhile are waiting in its socket buffer when it
thaws. The read after the sync may not be stale: either the server finds out first
that it no longer leads and disconnects the client (which goes to a serving member), or
it answers the sync only after a leadership round that a quorum answered, which a
deposed leader never gets.

On both event loops (uvloop and the standard library's, both run here) the overdue tick
happens to run before the client's input is read, so the step-down comes first; the
leadership round is what makes the answer right whatever the order, and the simulation
(tests/sim) checks it with the input first, where a sync answered at once is caught.

Its links to the others are stalled through the fault proxy, so that nothing from them
(their hang-ups, the new election) reaches it first: the client's requests are all it
finds when it thaws.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from pyzk.jute import records as r
from pyzk.jute.codes import OpCode
from tests.ensemble.cluster import Ensemble
from tests.faultproxy import FaultProxy
from tests.rawclient import RawClient
from tests.reliability.conftest import Figures

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["uvloop", "asyncio"])
def ensemble(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Ensemble]:
    proxy = FaultProxy()
    ens = Ensemble(tmp_path, proxy=proxy, env={"PYZK_EVENT_LOOP": request.param})
    try:
        ens.start()
        yield ens
    finally:
        ens.stop()
        proxy.stop()


def test_a_thawed_leader_answers_no_stale_sync(ensemble: Ensemble, figures: Figures) -> None:
    old = ensemble.leader()
    assert old is not None
    others = [i for i in ensemble.ids if i != old]
    writer = KazooClient(hosts=",".join(f"127.0.0.1:{ensemble.client_ports[i]}" for i in others))
    writer.start(timeout=30)
    parked = RawClient("127.0.0.1", ensemble.client_ports[old], timeout=20)
    try:
        writer.create("/reg", b"before")
        parked.connect(timeout_ms=60000)
        ensemble.isolate(old)  # stalled: it hears nothing, and nothing of it is heard
        ensemble.stop_signal(old)
        try:
            ensemble.wait_for(lambda: any(ensemble.mode(i) == "leader" for i in others))
            writer.set("/reg", b"after")  # acknowledged by the new majority
            parked.send_frame(
                r.RequestHeader(1, OpCode.sync).encode() + r.PathRequest("/reg").encode()
            )
            get = (
                r.RequestHeader(2, OpCode.getData).encode()
                + r.PathWatchRequest("/reg", False).encode()
            )
            parked.send_frame(get)
        finally:
            ensemble.cont_signal(old)
        try:
            replies = [parked.reply() for _ in range(2)]
        except ConnectionError:
            replies = []  # it closed the connection once it found out: the right answer
        if replies:
            (sync_hdr, _), (hdr, data) = replies
            assert (sync_hdr.xid, hdr.xid, hdr.err) == (1, 2, 0)
            assert r.GetDataResponse.from_bytes(data).data == b"after", "a stale read after sync"
        figures.add("stale leader", requests=2, faults=2)
    finally:
        parked.close()
        writer.stop()
        writer.close()
