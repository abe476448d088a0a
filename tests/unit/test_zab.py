"""The consensus core in isolation: vote order, sync plans, election and epochs."""

from __future__ import annotations

import random

import msgpack
import pytest

from pyzk.ensemble.messages import decode_app
from pyzk.zab.election import ElectionTiming
from pyzk.zab.history import Append, Epochs, History, Ready
from pyzk.zab.messages import (
    WIRE_VERSION,
    BadMessage,
    FollowerInfo,
    LeaderInfo,
    Notification,
    Proposals,
    State,
    Vote,
    decode,
    encode,
    make_zxid,
)
from pyzk.zab.peer import Durable, Peer, Timing
from pyzk.zab.sync import plan_sync

E1 = [(make_zxid(1, i), f"a{i}".encode()) for i in range(1, 6)]
E2 = [(make_zxid(2, i), f"b{i}".encode()) for i in range(1, 4)]


def test_votes_order_by_epoch_then_zxid_then_id() -> None:
    assert Vote(2, 1, 1).beats(Vote(1, 99, 3))  # epoch first
    assert Vote(1, 5, 1).beats(Vote(1, 4, 3))  # then zxid
    assert Vote(1, 5, 3).beats(Vote(1, 5, 2))  # then id
    assert not Vote(1, 5, 2).beats(Vote(1, 5, 2))


def test_messages_round_trip_on_the_wire() -> None:
    for msg in (
        Notification(State.LEADING, 7, Vote(3, make_zxid(3, 9), 2), 4),
        FollowerInfo(99, 3, make_zxid(3, 1), True),
        LeaderInfo(5, 4),
        Proposals(7, make_zxid(2, 3), [b"a", b"", b"c" * 300]),
    ):
        assert decode(encode(msg)) == msg


@pytest.mark.parametrize("kind", [-1, 15, 99, 100])
def test_a_message_of_an_unknown_kind_is_refused(kind: int) -> None:
    """Not read as another kind (a negative index would name one from the end)."""
    raw = msgpack.packb([WIRE_VERSION, kind, 1, 2, 3], use_bin_type=True)
    with pytest.raises(BadMessage):
        decode(raw)


@pytest.mark.parametrize(
    "body",
    [
        [14, 1, 2, [b"a", 3]],  # PROPOSALS with a payload that is not bytes
        [14, 1, 2, b"a"],  # ... and payloads that are not a list
        [7, 1, 2, "txn"],  # PROPOSAL with a str payload
        [11, 1, "2"],  # ACK of a str zxid
        [1, 1, 0, 0, 1],  # FOLLOWERINFO whose observer flag is not a bool
        [0, 9, 1, 1, 1, 1, 1],  # a notification of an unknown state
    ],
)
def test_a_message_with_a_malformed_field_is_refused(body: list[object]) -> None:
    """Refused when decoded (the link drops), not trusted until the log writer or the
    tree fails on it and takes the server down."""
    with pytest.raises(BadMessage):
        decode(msgpack.packb([WIRE_VERSION, *body], use_bin_type=True))


@pytest.mark.parametrize(
    "body",
    [
        [100, 1, 2, 5, 7, [["digest", "a:b"]]],  # FORWARD whose request is not bytes
        [100, 1, 2, 5, b"req", [["digest"]]],  # ... with an id that is not a pair
        [101, [[1, "x"]]],  # TOUCH with a timeout that is not an int
        [102, 1, 2, None],  # SYNC of no path
    ],
)
def test_an_app_message_with_a_malformed_field_is_refused(body: list[object]) -> None:
    with pytest.raises(BadMessage):
        decode_app(msgpack.packb([WIRE_VERSION, *body], use_bin_type=True))


def test_app_messages_round_trip_on_the_wire() -> None:
    from pyzk.ensemble.messages import Forward, SyncRequest, Touch, encode_app

    for msg in (
        Forward(-5, 3, 5, b"\x00req", [["digest", "a:b"], ["ip", "127.0.0.1"]]),
        Touch([[7, 30000], [-8, 4000]]),
        SyncRequest(7, 2, "/a"),
    ):
        assert decode_app(encode_app(msg)) == msg


@pytest.mark.parametrize("kind", [99, 104, 200])
def test_an_app_message_of_an_unknown_kind_is_refused(kind: int) -> None:
    raw = msgpack.packb([WIRE_VERSION, kind, 1, 2, 3], use_bin_type=True)
    with pytest.raises(BadMessage):
        decode_app(raw)


def history(entries: list[tuple[int, bytes]], base: int = 0, window: int = 100) -> History:
    return History(base, entries, window)


def test_diff_when_the_learner_is_a_prefix() -> None:
    h = history(E1 + E2)
    plan = plan_sync(h, h.last, E1[2][0], h.last)
    assert plan.kind == "diff" and plan.zxid == E1[2][0]
    assert plan.entries == E1[3:] + E2


def test_diff_is_empty_for_an_up_to_date_learner() -> None:
    h = history(E1)
    assert plan_sync(h, h.last, E1[-1][0], h.last).entries == []


def test_trunc_when_the_learner_has_a_tail_we_never_had() -> None:
    h = history(E1[:3] + E2)  # the leader never had a4, a5
    plan = plan_sync(h, h.last, E1[4][0], h.last)
    assert plan.kind == "trunc" and plan.zxid == E1[2][0]
    assert plan.entries == E2


def test_trunc_when_the_learner_is_ahead() -> None:
    h = history(E1[:3])
    plan = plan_sync(h, h.last, E1[4][0], h.last)
    assert (plan.kind, plan.zxid, plan.entries) == ("trunc", E1[2][0], [])


def test_snap_when_the_learner_is_older_than_our_memory() -> None:
    h = history(E1 + E2, window=2)
    h.trim(E2[1][0])  # only the last committed entries stay in memory
    assert h.base == E1[-1][0]
    plan = plan_sync(h, E2[1][0], E1[0][0], h.last)
    assert plan.kind == "snap" and plan.zxid == E2[1][0]
    assert plan.entries == E2[2:]


TIMING = Timing(tick_ms=100, election=ElectionTiming(finalize_wait_ms=20, max_resend_ms=400))
VOTERS = frozenset({1, 2, 3})


def peer(sid: int, durable: Durable | None = None, timing: Timing = TIMING) -> Peer:
    return Peer(sid, VOTERS, frozenset(), durable or Durable(), timing, random.Random(sid), 0)


def test_a_looking_server_votes_for_itself_with_its_epoch_and_zxid() -> None:
    p = peer(2, Durable(accepted_epoch=3, current_epoch=3, entries=E1))
    r = p.ready()
    sent = {to: m for to, m in r.messages}
    assert set(sent) == {1, 3}
    n = sent[1]
    assert isinstance(n, Notification) and n.state == State.LOOKING
    assert n.vote == Vote(3, E1[-1][0], 2)


def test_a_better_vote_is_adopted_and_a_quorum_decides_after_the_wait() -> None:
    p = peer(1)
    p.ready()
    better = Notification(State.LOOKING, 1, Vote(0, 0, 3), 0)
    p.step(0, 3, better)
    assert all(m.vote == Vote(0, 0, 3) for _, m in p.ready().messages)  # type: ignore[union-attr]
    assert p.state == State.LOOKING  # quorum reached, but finalize wait first
    p.tick(25)
    # mypy keeps p.state narrowed to LOOKING across p.tick(), which changes it.
    assert p.state == State.FOLLOWING and p.leader_id == 3  # type: ignore[comparison-overlap]
    r = p.ready()
    ((to, hello),) = [(t, m) for t, m in r.messages if isinstance(m, FollowerInfo)]
    assert to == 3 and hello.last_zxid == 0


def test_a_follower_persists_a_new_epoch_before_acknowledging_it() -> None:
    p = peer(1)
    p.step(0, 3, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    p.tick(25)
    hello = next(m for _, m in p.ready().messages if isinstance(m, FollowerInfo))
    p.step(30, 3, LeaderInfo(hello.link, 5))
    r: Ready = p.ready()
    assert r.ops == [Epochs(5, 0)]  # persisted ...
    assert [type(m).__name__ for _, m in r.messages] == ["AckEpoch"]  # ... then sent
    assert p.accepted_epoch == 5


def test_a_leader_epoch_below_our_promise_is_refused() -> None:
    p = peer(1, Durable(accepted_epoch=7, current_epoch=6))
    p.step(0, 3, Notification(State.LOOKING, 1, Vote(9, 0, 3), 0))
    p.tick(25)
    hello = next(m for _, m in p.ready().messages if isinstance(m, FollowerInfo))
    p.step(30, 3, LeaderInfo(hello.link, 6))
    assert p.state == State.LOOKING


def test_ready_appends_merge() -> None:
    r = Ready()
    r.add_append((1, b"x"))
    r.add_append((2, b"y"))
    assert r.ops == [Append([(1, b"x"), (2, b"y")])] and r.appended() == [1, 2]


def test_a_new_leader_keeps_leading_past_a_promise_it_will_outbid() -> None:
    """Before it picks its epoch, a voter's higher accepted epoch is no reason to step
    down: the epoch it picks is above every promise it heard of."""
    p = peer(3)
    p.step(0, 1, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    p.tick(25)
    assert p.state == State.LEADING
    p.ready()
    p.step(30, 2, Notification(State.LOOKING, 1, Vote(0, 0, 2), 4))  # 2 promised epoch 4
    assert p.state == State.LEADING
    p.step(35, 1, FollowerInfo(1, 0, 0, False))  # a quorum: it picks the epoch now
    infos = [m for _, m in p.ready().messages if isinstance(m, LeaderInfo)]
    assert infos and infos[0].epoch == 5


def test_an_observer_does_not_answer_a_voter_behind_its_round() -> None:
    """A voter only answers an observer: if the observer answered back, they would
    exchange notifications forever."""
    o = Peer(4, VOTERS, frozenset({4}), Durable(), TIMING, random.Random(4), 0)
    o.step(0, 1, Notification(State.LOOKING, 3, Vote(0, 0, 1), 0))  # round 3: it joins
    o.ready()
    o.step(5, 2, Notification(State.LOOKING, 2, Vote(0, 0, 2), 0))  # round 2: behind
    assert not o.ready().messages
    v = peer(1)
    v.ready()
    v.step(0, 2, Notification(State.LOOKING, 3, Vote(0, 0, 2), 0))
    v.ready()
    v.step(5, 3, Notification(State.LOOKING, 2, Vote(0, 0, 3), 0))  # a voter behind
    assert [to for to, _ in v.ready().messages] == [3]  # is told about our round


def test_a_voter_tells_a_voter_with_a_worse_vote_its_own_at_once() -> None:
    """A failover race: server 2 saw the leader die first, and its vote reached server 1
    while 1 was still following (1 answered with its old vote). When 1's own LOOKING
    vote comes, 2 must tell 1 its better vote now, not at the next resend (450 ms in a
    3-server failover, before this)."""
    p = peer(2)
    p.ready()  # round 1: 2's vote went out (and 1 answered it with its old one)
    p.step(1, 1, Notification(State.LOOKING, 1, Vote(0, 0, 1), 0))
    sent = [(to, m.vote.leader) for to, m in p.ready().messages if isinstance(m, Notification)]
    assert sent == [(1, 2)]
    p.step(2, 1, Notification(State.LOOKING, 1, Vote(0, 0, 2), 0))  # 1 took it: done
    assert not [m for _, m in p.ready().messages if isinstance(m, Notification)]


def test_a_learner_says_hello_again_soon_when_its_leader_is_slow_to_decide() -> None:
    """The learner may decide before its leader does; the leader drops FOLLOWERINFO until
    it leads, so the learner repeats it every ``hello_ms`` (ZooKeeper retries its
    connection every 100 ms), not every half tick: that cost failovers a second."""
    p = peer(1, timing=Timing(tick_ms=2000, election=TIMING.election))
    p.step(0, 3, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    p.tick(25)
    assert p.state == State.FOLLOWING
    hellos = []
    for now in range(50, 400, 50):
        p.tick(now)
        hellos += [now for _, m in p.ready().messages if isinstance(m, FollowerInfo)]
    assert hellos and hellos[0] <= 150 and len(hellos) >= 3


def test_an_observing_observer_does_not_answer_a_looking_voter() -> None:
    """Settled, an observer still must not answer a voter's LOOKING notification: the
    voter answers observers, so each would answer the other forever."""
    o = Peer(4, VOTERS, frozenset({4}), Durable(), TIMING, random.Random(4), 0)
    o.step(0, 1, Notification(State.FOLLOWING, 1, Vote(0, 0, 3), 0))
    o.step(1, 3, Notification(State.LEADING, 1, Vote(0, 0, 3), 0))
    assert o.state == State.OBSERVING
    o.ready()
    o.step(5, 2, Notification(State.LOOKING, 2, Vote(0, 0, 2), 0))
    assert not [m for _, m in o.ready().messages if isinstance(m, Notification)]
    v = peer(1)
    v.step(0, 3, Notification(State.LEADING, 1, Vote(0, 0, 3), 0))
    v.step(1, 2, Notification(State.FOLLOWING, 1, Vote(0, 0, 3), 0))
    assert v.state == State.FOLLOWING
    v.ready()
    v.step(5, 2, Notification(State.LOOKING, 2, Vote(0, 0, 2), 0))  # a voter looking
    assert [to for to, m in v.ready().messages if isinstance(m, Notification)] == [2]


def test_a_learner_acks_the_proposals_its_sync_brought_once_it_acks_newleader() -> None:
    """Joining an established leader, a learner gets the proposals still waiting for a
    quorum in its DIFF: it must ack them, or with enough such learners they (and every
    later one) never commit. Found by the simulation (5 voters, resyncs)."""
    from pyzk.zab.messages import Ack, Diff, NewLeader, Proposal

    p = peer(1)
    p.step(0, 3, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    p.tick(25)
    link = next(m for _, m in p.ready().messages if isinstance(m, FollowerInfo)).link
    p.step(30, 3, LeaderInfo(link, 5))
    p.ready()
    outstanding = [make_zxid(5, 1), make_zxid(5, 2)]
    p.step(31, 3, Diff(link, 0))
    for z in outstanding:
        p.step(32, 3, Proposal(link, z, b"x"))
    logged = p.ready()
    assert logged.appended() == outstanding and not logged.messages  # logged, not acked yet
    p.step(33, 3, NewLeader(link, make_zxid(5, 0)))
    acks = [m.zxid for _, m in p.ready().messages if isinstance(m, Ack)]
    assert acks == [make_zxid(5, 0), *outstanding]


def test_a_follower_acks_proposals_logged_together_once() -> None:
    """One ACK per batch, for its last proposal: ACKs are cumulative. An ACK of
    NEWLEADER (counter 0) is not a proposal's and stays."""
    from pyzk.zab.messages import Ack, Diff, NewLeader, Proposal, UpToDate

    p = peer(1)
    p.step(0, 3, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    p.tick(25)
    link = next(m for _, m in p.ready().messages if isinstance(m, FollowerInfo)).link
    p.step(30, 3, LeaderInfo(link, 5))
    p.step(31, 3, Diff(link, 0))
    p.ready()
    p.step(32, 3, NewLeader(link, make_zxid(5, 0)))
    p.step(33, 3, Proposal(link, make_zxid(5, 1), b"a"))
    p.step(33, 3, Proposal(link, make_zxid(5, 2), b"b"))
    acks = [m.zxid for _, m in p.ready().messages if isinstance(m, Ack)]
    assert acks == [make_zxid(5, 0), make_zxid(5, 2)]
    p.step(34, 3, UpToDate(link, make_zxid(5, 0)))
    p.step(35, 3, Proposal(link, make_zxid(5, 3), b"c"))
    p.step(35, 3, Proposals(link, make_zxid(5, 4), [b"d", b"e"]))
    p.step(35, 3, Proposals(link, make_zxid(5, 6), [b"f"]))
    r = p.ready()
    assert [m.zxid for _, m in r.messages if isinstance(m, Ack)] == [make_zxid(5, 6)]
    assert r.ops == [Append([(make_zxid(5, i), b"cdef"[i - 3 : i - 2]) for i in range(3, 7)])]


def established_leader() -> tuple[Peer, dict[int, int]]:
    """Server 3 leading voters 1 and 2 in epoch 1; the learners' links."""
    from pyzk.zab.messages import Ack, AckEpoch

    p = peer(3)
    p.step(0, 1, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    p.tick(25)
    assert p.state == State.LEADING
    links = {1: 11, 2: 22}
    for sid, link in links.items():
        p.step(30, sid, FollowerInfo(link, 0, 0, False))
    for sid, link in links.items():
        p.step(31, sid, AckEpoch(link, 0, 0))
    for sid, link in links.items():
        p.step(32, sid, Ack(link, make_zxid(1, 0)))
    assert p.serving
    p.advance(p.ready())
    return p, links


def test_a_cumulative_ack_commits_every_proposal_up_to_it() -> None:
    from pyzk.zab.messages import Ack, Commit

    p, links = established_leader()
    assert p.propose([b"x0", b"x1"]) == make_zxid(1, 1)
    assert p.propose([b"x2"]) == make_zxid(1, 3)
    zxids = [make_zxid(1, i) for i in (1, 2, 3)]
    p.advance(p.ready())  # logged here: one voter of the two needed
    assert p.committed < zxids[0]
    p.step(40, 1, Ack(links[1], zxids[1]))  # voter 1 logged the first two
    r = p.ready()
    assert p.committed == zxids[1]
    assert r.ops[-1].entries == [(zxids[0], b"x0"), (zxids[1], b"x1")]  # type: ignore[union-attr]
    assert sorted((to, m.zxid) for to, m in r.messages if isinstance(m, Commit)) == [
        (1, zxids[1]),
        (2, zxids[1]),
    ]
    p.step(41, 2, Ack(links[2], zxids[0]))  # behind the commit point: nothing new
    assert p.committed == zxids[1] and not p.ready().messages
    p.step(42, 2, Ack(links[2], zxids[2]))
    assert p.committed == zxids[2]


def test_followers_alone_commit_what_the_leader_has_not_logged_yet() -> None:
    """A quorum of voters need not include the leader (ZooKeeper's ack sets neither)."""
    from pyzk.zab.messages import Ack

    p, links = established_leader()
    z = p.propose([b"x"])
    assert z is not None
    p.step(40, 1, Ack(links[1], z))
    assert p.committed < z  # one voter of three
    p.step(41, 2, Ack(links[2], z))
    assert p.committed == z


def test_a_leader_broadcasts_a_batch_in_packets_of_bounded_size() -> None:
    from pyzk.zab import leader

    big = b"x" * (leader.BATCH_BYTES // 2 + 1)
    assert list(leader._batches(10, [b"a", b"b"])) == [(10, [b"a", b"b"])]
    assert list(leader._batches(10, [big, big, b"c", big])) == [
        (10, [big]),
        (11, [big, b"c"]),
        (13, [big]),
    ]
    huge = b"y" * (leader.BATCH_BYTES + 1)
    assert list(leader._batches(1, [huge, b"z"])) == [(1, [huge]), (2, [b"z"])]
    p, _ = established_leader()
    first = p.propose([big, big, b"c"])
    sent = []
    for to, m in p.ready().messages:
        assert isinstance(m, Proposals)
        sent.append((to, m.zxid, len(m.payloads)))
    assert first is not None
    assert sorted(sent) == [(1, first, 1), (1, first + 1, 2), (2, first, 1), (2, first + 1, 2)]


def test_only_a_leader_in_broadcast_sends_before_logging() -> None:
    """Ready.send_first: a leader's proposals may leave before its own log has them (its
    ack counts only after advance); a follower's ACKs never may."""
    from pyzk.zab.history import Apply
    from pyzk.zab.messages import Ack, Proposals

    p, links = established_leader()
    first = p.propose([b"a", b"b"])
    assert first is not None
    r = p.ready()
    assert r.send_first and r.appended() == [first, first + 1]
    assert {type(m) for _, m in r.messages} == {Proposals}
    p.advance(r)
    p.step(40, 1, Ack(links[1], first + 1))  # commits: an Apply and COMMITs, no disk
    r = p.ready()
    assert r.send_first and {type(op) for op in r.ops} == {Apply}

    f = peer(1)
    f.step(0, 3, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    f.tick(25)
    first_ready = f.ready()
    assert not first_ready.send_first  # FOLLOWERINFO of a new role
    link = next(m for _, m in first_ready.messages if isinstance(m, FollowerInfo)).link
    f.step(30, 3, LeaderInfo(link, 5))
    assert not f.ready().send_first  # an epoch to persist before ACKEPOCH
    f.step(31, 3, Proposals(link, make_zxid(5, 1), [b"a"]))
    assert not f.ready().send_first


def test_a_leader_sends_a_snapshot_only_after_applying() -> None:
    """A SNAP carries the state as applied after the Ready's ops: never sent first."""
    from pyzk.zab.history import Apply
    from pyzk.zab.messages import Snap

    r = Ready(ops=[Apply([(1, b"x")])], messages=[(1, Snap(7, 1))])
    assert not r.promises_nothing()
    r.messages = []
    assert r.promises_nothing()


def test_a_learner_looks_as_soon_as_its_leader_does() -> None:
    """A LOOKING notification from our leader in a round after the one that chose it:
    the leader stepped down (found by the simulation: waiting for the timeout let the
    others elect without this server, over and over, while it held proposals they
    lacked). One from the round that chose it may be late, and changes nothing."""
    f = peer(1)
    f.step(0, 3, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    f.tick(25)
    assert f.state == State.FOLLOWING and f.leader_id == 3
    f.step(30, 3, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))  # late, same round
    assert f.state == State.FOLLOWING
    f.step(31, 2, Notification(State.LOOKING, 2, Vote(0, 0, 2), 0))  # not our leader
    assert f.state == State.FOLLOWING
    f.step(32, 3, Notification(State.LOOKING, 2, Vote(0, 0, 3), 0))
    # mypy keeps f.state narrowed to FOLLOWING across f.step(), which changes it.
    assert f.state == State.LOOKING  # type: ignore[comparison-overlap]


def test_a_lone_append_is_one_entry_and_nothing_else_to_persist() -> None:
    """What the shell may sync on its own thread (QuorumServer._drive_lone)."""
    from pyzk.zab.history import Apply

    one = Ready(ops=[Apply([(1, b"x")]), Append([(2, b"y")])])
    assert one.lone_append()
    assert not Ready(ops=[Append([(2, b"y"), (3, b"z")])]).lone_append()
    assert not Ready(ops=[Epochs(1, 1), Append([(2, b"y")])]).lone_append()
    assert not Ready(ops=[Append([(2, b"y")]), Append([(3, b"z")])]).lone_append()
    assert not Ready(ops=[Apply([(1, b"x")])]).lone_append()


def test_an_observer_gets_what_commits_in_one_inform() -> None:
    from pyzk.zab import leader
    from pyzk.zab.messages import Ack, AckEpoch, Inform

    p = Peer(3, VOTERS, frozenset({4}), Durable(), TIMING, random.Random(3), 0)
    p.step(0, 1, Notification(State.LOOKING, 1, Vote(0, 0, 3), 0))
    p.tick(25)
    for sid, link in ((1, 11), (2, 22)):
        p.step(30, sid, FollowerInfo(link, 0, 0, False))
    for sid, link in ((1, 11), (2, 22)):
        p.step(31, sid, AckEpoch(link, 0, 0))
        p.step(32, sid, Ack(link, make_zxid(1, 0)))
    p.step(33, 4, FollowerInfo(44, 0, 0, True))
    p.step(34, 4, AckEpoch(44, 0, 0))
    p.step(35, 4, Ack(44, make_zxid(1, 0)))
    p.advance(p.ready())
    first = p.propose([b"a", b"b", b"c"])
    assert first is not None
    p.advance(p.ready())
    p.step(40, 1, Ack(11, first + 2))
    informs = [m for to, m in p.ready().messages if to == 4]
    assert informs == [Inform(44, first, [b"a", b"b", b"c"])]
    gap = [(5, b"x"), (6, b"y"), (9, b"z")]
    assert list(leader._runs(gap)) == [(5, [b"x", b"y"]), (9, [b"z"])]


def test_an_observer_logs_and_applies_an_inform_of_several_entries() -> None:
    from pyzk.zab.history import Apply
    from pyzk.zab.messages import Diff, Inform, NewLeader, UpToDate

    o = Peer(4, VOTERS, frozenset({4}), Durable(), TIMING, random.Random(4), 0)
    o.step(0, 1, Notification(State.FOLLOWING, 1, Vote(0, 0, 3), 0))
    o.step(1, 3, Notification(State.LEADING, 1, Vote(0, 0, 3), 0))
    assert o.state == State.OBSERVING
    link = next(m for _, m in o.ready().messages if isinstance(m, FollowerInfo)).link
    o.step(2, 3, LeaderInfo(link, 1))
    o.step(3, 3, Diff(link, 0))
    o.step(4, 3, NewLeader(link, make_zxid(1, 0)))
    o.step(5, 3, UpToDate(link, make_zxid(1, 0)))
    o.ready()
    o.step(6, 3, Inform(link, make_zxid(1, 1), [b"a", b"b"]))
    r = o.ready()
    entries = [(make_zxid(1, 1), b"a"), (make_zxid(1, 2), b"b")]
    assert r.ops == [Append(entries), Apply(entries)]
    assert o.committed == make_zxid(1, 2)
