"""Whole ensembles in one process under seeded faults (see cluster.py for the checks).

CI runs a few hundred seeds; ``python -m tests.sim.run --seeds 5000`` runs more, and a
failing seed prints the command that replays it step by step.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from pyzk.zab import leader as leader_module
from pyzk.zab.messages import Commit, Inform
from tests.sim.cluster import Cluster, Violation

SEEDS = int(os.environ.get("PYZK_SIM_SEEDS", "150"))


@pytest.mark.parametrize("chunk", range(5))
def test_three_voters_keep_every_invariant(chunk: int) -> None:
    per = SEEDS // 5
    for seed in range(chunk * per, (chunk + 1) * per):
        try:
            Cluster(seed).run()
        except Violation as e:
            pytest.fail(f"seed {seed}: {e}\nreplay: python -m tests.sim.run --seed {seed} --trace")


def test_five_voters_and_an_observer_keep_every_invariant() -> None:
    for seed in range(SEEDS // 5):
        try:
            Cluster(seed, voters=5, observers=1).run()
        except Violation as e:
            pytest.fail(
                f"seed {seed}: {e}\nreplay: python -m tests.sim.run --seed {seed} "
                "--voters 5 --observers 1 --trace"
            )


def test_a_broken_commit_rule_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkers can fail: commit without waiting for a quorum, and a seed notices."""

    def commit_at_once(self: leader_module.Leader) -> None:
        p = self.peer
        committed = p.commit_to(p.history.last)
        for sid, lk in self.learners.items():
            if lk.phase in ("syncing", "synced") and not lk.observer and committed:
                p.send(sid, Commit(lk.link, committed[-1][0]))
            elif lk.phase in ("syncing", "synced"):
                for zxid, payload in committed:
                    p.send(sid, Inform(lk.link, zxid, [payload]))

    monkeypatch.setattr(leader_module.Leader, "_try_commit", commit_at_once)
    monkeypatch.setattr(
        leader_module.Leader, "propose", _propose_and_commit(leader_module.Leader.propose)
    )
    caught = []
    for seed in range(SEEDS):
        try:
            Cluster(seed).run()
        except (Violation, AssertionError) as e:
            caught.append((seed, e))
            break
    assert caught, f"a leader that commits before a quorum logged went unnoticed in {SEEDS} seeds"


Propose = Callable[[leader_module.Leader, list[bytes]], int | None]


def _propose_and_commit(propose: Propose) -> Propose:
    def wrapped(self: leader_module.Leader, payloads: list[bytes]) -> int | None:
        zxid = propose(self, payloads)
        if zxid is not None:
            self._try_commit()  # before anyone, even this server, logged it
        return zxid

    return wrapped


def test_a_sync_answered_without_a_leadership_round_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sync check can fail: a leader that answers a sync at once (what a thawed,
    deposed leader did before rounds) is caught by a seed with a pause."""

    def confirm_at_once(self: leader_module.Leader) -> tuple[int, int] | None:
        if not self.established:
            return None
        self.round += 1
        self.confirmed = self.round
        return self.term, self.round

    confirmed = sum(Cluster(seed).run_counting_syncs() for seed in range(20))
    assert confirmed > 100, "too few syncs confirmed for the check to mean anything"
    monkeypatch.setattr(leader_module.Leader, "confirm", confirm_at_once)
    for seed in range(SEEDS * 4):
        try:
            Cluster(seed).run()
        except Violation as e:
            assert "stale sync" in str(e)
            return
    pytest.fail(f"a leader answering syncs without a round went unnoticed in {SEEDS * 4} seeds")
