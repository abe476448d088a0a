"""Three real pyzk servers on loopback: roles, replication, failover, catch-up, partitions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoAuthError, NotReadOnlyCallError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.security import make_digest_acl

from pyzk.jute.codes import OpCode
from pyzk.jute.records import ACL, CreateRequest, Id
from tests.ensemble.cluster import Ensemble
from tests.rawclient import RawClient
from tests.servers import four_letter

WAIT_S = 30.0


@pytest.fixture
def ensemble(tmp_path: Path) -> Iterator[Ensemble]:
    ens = Ensemble(tmp_path)
    try:
        ens.start()
        yield ens
    finally:
        ens.stop()


def client(hosts: str, **kw: object) -> KazooClient:
    c = KazooClient(hosts=hosts, timeout=10.0, **kw)
    c.start(timeout=WAIT_S)
    return c


def on(ens: Ensemble, i: int) -> KazooClient:
    return client(f"127.0.0.1:{ens.client_ports[i]}")


def retry_write(c: KazooClient, path: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            c.create(path, b"x")
            return
        except KazooException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_one_leader_and_two_followers(ensemble: Ensemble) -> None:
    modes = sorted(ensemble.mode(i) for i in ensemble.ids)
    assert modes == ["follower", "follower", "leader"]


def test_a_write_through_a_follower_is_read_on_every_server(ensemble: Ensemble) -> None:
    leader = ensemble.leader()
    assert leader is not None
    follower = next(i for i in ensemble.ids if i != leader)
    writer = on(ensemble, follower)
    try:
        writer.create("/via-follower", b"data")
        writer.set("/via-follower", b"data2")
        for i in ensemble.ids:
            c = on(ensemble, i)
            try:
                c.sync("/via-follower")
                assert c.get("/via-follower")[0] == b"data2"
                assert c.get("/via-follower")[1].version == 1
            finally:
                c.stop()
    finally:
        writer.stop()


def test_acls_hold_for_writes_through_followers(ensemble: Ensemble) -> None:
    """The leader checks a forwarded write against the ids of the client's connection
    on the follower, whichever client sent it (it keeps each id set it has built)."""
    followers = [i for i in ensemble.ids if i != ensemble.leader()]
    alice = client(
        f"127.0.0.1:{ensemble.client_ports[followers[0]]}", auth_data=[("digest", "alice:pw")]
    )
    bob = client(
        f"127.0.0.1:{ensemble.client_ports[followers[1]]}", auth_data=[("digest", "bob:pw")]
    )
    alice2 = client(
        f"127.0.0.1:{ensemble.client_ports[followers[1]]}", auth_data=[("digest", "alice:pw")]
    )
    try:
        alice.create("/alices", b"a", acl=[make_digest_acl("alice", "pw", all=True)])
        for _ in range(3):  # and again, once the leader knows both id sets
            with pytest.raises(NoAuthError):
                bob.set("/alices", b"b")
            alice2.set("/alices", b"c")
        alice.sync("/alices")  # another follower's writes: catch this one up first
        assert alice.get("/alices")[1].version == 3
    finally:
        for c in (alice, bob, alice2):
            c.stop()


def test_sessions_are_global(ensemble: Ensemble) -> None:
    leader = ensemble.leader()
    assert leader is not None
    f1, f2 = (i for i in ensemble.ids if i != leader)
    owner = on(ensemble, f1)
    owner.create("/eph", b"e", ephemeral=True)
    sid = owner.client_id[0]
    other = on(ensemble, f2)
    try:
        other.sync("/eph")
        assert other.exists("/eph").ephemeralOwner == sid
        owner.stop()
        other.sync("/")
        assert other.exists("/eph") is None  # the close reached every server
    finally:
        other.stop()


def test_leader_kill_9_fails_over_and_keeps_sessions(ensemble: Ensemble) -> None:
    c = client(ensemble.hosts)
    try:
        c.create("/before", b"1")
        c.create("/mine", b"e", ephemeral=True)
        sid = c.client_id[0]
        old = ensemble.leader()
        assert old is not None
        ensemble.kill(old)
        retry_write(c, "/after")
        ensemble.wait_for(lambda: ensemble.leader() not in (None, old))
        assert c.client_id[0] == sid  # the same session
        assert c.exists("/mine").ephemeralOwner == sid
        assert c.get("/before")[0] == b"1"
        # The old leader comes back and catches up.
        ensemble.start([old], wait=False)
        ensemble.wait_for(lambda: ensemble.mode(old) == "follower")
        back = on(ensemble, old)
        try:
            back.sync("/")
            assert back.exists("/after") is not None
            assert back.exists("/mine").ephemeralOwner == sid
        finally:
            back.stop()
    finally:
        c.stop()


def test_a_proposal_only_the_old_leader_had_is_truncated(ensemble: Ensemble) -> None:
    leader = ensemble.leader()
    assert leader is not None
    followers = [i for i in ensemble.ids if i != leader]
    c = on(ensemble, leader)
    c.create("/base", b"0")
    for f in followers:  # frozen: the proposal reaches their sockets, never their logs
        ensemble.stop_signal(f)
    lost = c.create_async("/never-committed", b"lost")
    ensemble.wait_for(lambda: "never-committed" in _log_text(ensemble, leader))
    ensemble.kill(leader)
    for f in followers:
        ensemble.kill(f)  # what was buffered for them dies with them
    with contextlib.suppress(Exception):
        lost.get(timeout=1)
    c.stop()
    ensemble.start(followers)
    w = client(",".join(f"127.0.0.1:{ensemble.client_ports[i]}" for i in followers))
    try:
        retry_write(w, "/new-epoch")
        ensemble.start([leader], wait=False)
        ensemble.wait_for(lambda: ensemble.mode(leader) == "follower")
        back = on(ensemble, leader)
        try:
            back.sync("/")
            assert back.exists("/new-epoch") is not None
            assert back.exists("/never-committed") is None
            assert back.get("/base")[0] == b"0"
        finally:
            back.stop()
        assert w.exists("/never-committed") is None
        assert "truncated the log" in ensemble.servers[leader].log_tail(200)
    finally:
        w.stop()


def _log_text(ensemble: Ensemble, i: int) -> str:
    """Every txn in server i's log, printed (logdump), to see what it logged."""
    from pyzk.storage.wal import log_files
    from pyzk.tools.logdump import dump

    out: list[str] = []
    for _, path in log_files(ensemble.servers[i].workdir / "data"):
        dump(path, out)
    return "\n".join(out)


def test_a_follower_without_its_data_catches_up_by_snapshot(ensemble: Ensemble) -> None:
    c = client(ensemble.hosts)
    try:
        # More than the leader keeps in memory for DIFFs (500): only a snapshot will do.
        for i in range(600):
            c.create_async(f"/k{i}", str(i).encode())
        c.sync("/")
        leader = ensemble.leader()
        assert leader is not None
        victim = next(i for i in ensemble.ids if i != leader)
        ensemble.kill(victim)
        data = ensemble.servers[victim].workdir / "data"
        for p in data.iterdir():
            if p.name.startswith(("log.", "snapshot.")):
                p.unlink()
        ensemble.start([victim], wait=False)
        ensemble.wait_for(lambda: ensemble.mode(victim) == "follower")
        v = on(ensemble, victim)
        try:
            v.sync("/")
            assert v.get("/k49")[0] == b"49"
        finally:
            v.stop()
        assert "installed the leader's snapshot" in ensemble.servers[victim].log_tail(100)
    finally:
        c.stop()


def test_a_partitioned_leader_is_replaced_and_stops_taking_writes(ensemble: Ensemble) -> None:
    old = ensemble.leader()
    assert old is not None
    others = [i for i in ensemble.ids if i != old]
    ensemble.stop_signal(old)  # cut off from everyone, as in a partition
    try:
        ensemble.wait_for(lambda: any(ensemble.mode(i) == "leader" for i in others))
        c = client(",".join(f"127.0.0.1:{ensemble.client_ports[i]}" for i in others))
        try:
            retry_write(c, "/majority-side")
        finally:
            c.stop()
    finally:
        ensemble.cont_signal(old)
    # Back from the partition, the old leader steps down and follows the new one.
    ensemble.wait_for(lambda: ensemble.mode(old) == "follower")
    c = on(ensemble, old)
    try:
        c.sync("/")
        assert c.exists("/majority-side") is not None
    finally:
        c.stop()


def test_the_minority_refuses_writes(ensemble: Ensemble) -> None:
    leader = ensemble.leader()
    assert leader is not None
    lonely = next(i for i in ensemble.ids if i != leader)
    others = [i for i in ensemble.ids if i != lonely]
    c = on(ensemble, lonely)
    try:
        for i in others:
            ensemble.kill(i)
        # Without a quorum the server stops serving: the write fails or never completes.
        attempt = c.create_async("/minority-write", b"x")
        with pytest.raises((KazooException, KazooTimeoutError)):
            attempt.get(timeout=10)
        ensemble.wait_for(lambda: ensemble.mode(lonely) == "")
    finally:
        c.stop()
    ensemble.start(others)
    check = client(ensemble.hosts)
    try:
        check.sync("/")
        assert check.exists("/minority-write") is None
    finally:
        check.stop()


def test_an_observer_follows_without_voting(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, n=3, observers=1)
    try:
        ens.start()
        ens.wait_for(lambda: ens.mode(4) == "observer")
        obs = on(ens, 4)
        try:
            obs.create("/via-observer", b"o")  # forwarded to the leader like a follower's
            leader = ens.leader()
            assert leader is not None
            c = on(ens, leader)
            try:
                assert c.get("/via-observer")[0] == b"o"
                c.create("/to-observer", b"t")
            finally:
                c.stop()
            obs.sync("/to-observer")
            assert obs.get("/to-observer")[0] == b"t"
        finally:
            obs.stop()
        # The observer's vote does not count: one voter plus it is no quorum.
        for i in (1, 2, 3):
            if i != leader:
                ens.kill(i)
        ens.wait_for(lambda: ens.mode(4) == "" and ens.mode(leader) == "")
    finally:
        ens.stop()


def test_a_partitioned_server_serves_read_only_clients(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, extra={"readonlymode.enabled": "true"})
    try:
        ens.start()
        ens_client = client(ens.hosts)
        ens_client.create("/ro-data", b"before")
        ens_client.stop()
        leader = ens.leader()
        lonely = next(i for i in ens.ids if i != leader)
        for i in ens.ids:
            if i != lonely:
                ens.kill(i)
        ens.wait_for(lambda: four_letter(ens.client_ports[lonely], "isro") == "ro")
        assert ens.mode(lonely) == "read-only"
        ro = KazooClient(hosts=f"127.0.0.1:{ens.client_ports[lonely]}", read_only=True)
        ro.start(timeout=WAIT_S)
        try:
            assert ro.get("/ro-data")[0] == b"before"
            with pytest.raises(NotReadOnlyCallError):
                ro.create("/ro-write", b"x")
        finally:
            ro.stop()
        # A client that does not accept a read-only server is refused.
        rw = KazooClient(hosts=f"127.0.0.1:{ens.client_ports[lonely]}")
        with pytest.raises(KazooTimeoutError):
            rw.start(timeout=3)
        rw.stop()
        # The quorum comes back: the server serves read-write clients again.
        ens.start([i for i in ens.ids if i != lonely])
        ens.wait_for(lambda: four_letter(ens.client_ports[lonely], "isro") == "rw")
    finally:
        ens.stop()


def test_get_config_shows_the_membership(ensemble: Ensemble) -> None:
    c = client(ensemble.hosts)
    try:
        data, _ = c.get("/zookeeper/config")
        lines = data.decode().splitlines()
        assert [ln.split("=")[0] for ln in lines] == ["server.1", "server.2", "server.3", "version"]
        assert all(ln.endswith(":participant") for ln in lines[:3])
    finally:
        c.stop()


def test_mntr_on_the_leader_reports_its_synced_followers(ensemble: Ensemble) -> None:
    leader = ensemble.leader()
    assert leader is not None
    text = four_letter(ensemble.client_ports[leader], "mntr")
    values = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
    assert values["zk_server_state"] == "leader"
    assert values["zk_quorum_size"] == "3"
    assert values["zk_synced_followers"] == "2" and values["zk_learners"] == "2"
    follower = next(i for i in ensemble.ids if i != leader)
    text = four_letter(ensemble.client_ports[follower], "mntr")
    assert "zk_server_state\tfollower" in text and "zk_synced_followers" not in text


def test_every_member_reports_its_log_fsyncs(ensemble: Ensemble) -> None:
    """fsynctime in mntr counts each member's own log writes, as in standalone."""
    c = client(ensemble.hosts)
    try:
        c.create("/fsynced", b"x")
        for n in range(5):  # one at a time: a member logs them in separate writes
            c.set("/fsynced", b"%d" % n)
    finally:
        c.stop()

    def fsyncs(i: int) -> int:
        text = four_letter(ensemble.client_ports[i], "mntr")
        values = dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)
        return int(values["zk_cnt_fsynctime"])

    # A write is answered once a majority logged it: the third member may still be
    # writing, so wait for it (bounded), rather than read its count at once.
    for i in ensemble.ids:
        ensemble.wait_for(lambda i=i: fsyncs(i) >= 2, timeout=WAIT_S)  # type: ignore[misc]


def test_containers_are_reaped_by_the_leader_only(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, extra={"znode.container.checkIntervalMs": "200"})
    try:
        ens.start()
        c = client(ens.hosts)
        raw = RawClient("127.0.0.1", ens.client_ports[ens.ids[0]])
        raw.connect(timeout_ms=30000)
        try:
            body = CreateRequest("/box", b"", [ACL(31, Id("world", "anyone"))], 4).encode()
            hdr, _ = raw.request(1, OpCode.createContainer, body)
            assert hdr.err == 0
            c.sync("/")
            c.create("/box/item")
            c.delete("/box/item")  # emptied after having had a child: reaped
            deadline = time.monotonic() + WAIT_S
            while c.exists("/box") is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.exists("/box") is None
            c.create("/plain")  # followers kept serving (no pending write was dropped)
        finally:
            raw.close()
            c.stop()
        for i in ens.ids:
            assert "leadership lost" not in ens.servers[i].log_tail(200)
    finally:
        ens.stop()


def test_watches_follow_a_client_to_another_server(ensemble: Ensemble) -> None:
    import threading

    leader = ensemble.leader()
    assert leader is not None
    f1, f2 = (i for i in ensemble.ids if i != leader)
    c = client(f"127.0.0.1:{ensemble.client_ports[f1]},127.0.0.1:{ensemble.client_ports[f2]}")
    fired = threading.Event()
    try:
        c.create("/watched", b"1")
        c.get("/watched", watch=lambda ev: fired.set())
        first = int(c._connection._socket.getpeername()[1])
        victim = f1 if ensemble.client_ports[f1] == first else f2
        ensemble.kill(victim)  # the client moves to the other follower, re-setting watches
        writer = on(ensemble, leader)
        try:
            retry_write(writer, "/unrelated")
            writer.set("/watched", b"2")
        finally:
            writer.stop()
        assert fired.wait(WAIT_S), "the watch did not follow the session"
    finally:
        c.stop()


def test_members_snapshot_and_recover_after_a_full_restart(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, extra={"snapCount": "100"})
    try:
        ens.start()
        c = client(ens.hosts)
        try:
            for i in range(300):
                c.create_async(f"/s{i}", str(i).encode())
            c.sync("/")
        finally:
            c.stop()
        for i in ens.ids:
            data = ens.servers[i].workdir / "data"

            def snapped(d: Path = data) -> bool:
                return any(p.name.startswith("snapshot.") for p in d.iterdir())

            ens.wait_for(snapped)
        ens.stop()
        ens.start()
        c = client(ens.hosts)
        try:
            c.sync("/")
            assert c.get("/s299")[0] == b"299"
            assert len([k for k in c.get_children("/") if k.startswith("s")]) == 300
        finally:
            c.stop()
    finally:
        ens.stop()
