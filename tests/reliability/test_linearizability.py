"""Concurrent clients on a 3-server ensemble under faults: the history must check out.

Leader kill -9 and restart, SIGSTOP/SIGCONT, and partitions through the fault proxy
(silent and with resets), while 5 (long: 8) kazoo clients read, sync+read, write and
compare-and-set three znodes. The checker prints the minimal offending sub-history of
any violation.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.reliability.conftest import LONG, Figures
from tests.reliability.jepsen import Run, run
from tests.reliability.nemesis import KINDS

SHORT_RUNS = [
    Run(seed=1, processes=5, faults=["kill-leader", "pause-leader", "partition-leader"]),
    Run(seed=2, processes=5, faults=["partition-follower", "reset-leader", "pause-follower"]),
]


def _long_runs() -> list[Run]:
    runs = []
    for seed in range(10, 16):
        rng = random.Random(seed)
        faults = [rng.choice(KINDS) for _ in range(12)]
        runs.append(Run(seed=seed, processes=8, faults=faults, hold_ops=60))
    return runs


RUNS = _long_runs() if LONG else SHORT_RUNS


@pytest.mark.timeout(1800 if LONG else 240)
@pytest.mark.parametrize("spec", RUNS, ids=lambda r: f"seed{r.seed}")
def test_writes_are_linearizable_and_reads_sequentially_consistent_under_faults(
    tmp_path: Path, spec: Run, figures: Figures
) -> None:
    done = run(tmp_path, spec)
    violations = len(done.result.violations) if done.result else 0
    figures.add(
        "linearizability",
        histories=1,
        operations=sum(done.ops.values()),
        faults=sum(done.injected.values()),
        violations=violations + len(done.errors) + len(done.divergent),
    )
    assert done.ok, done.report()
