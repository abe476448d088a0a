"""Run the simulation over many seeds, or replay one step by step.

    python -m tests.sim.run --seeds 1000            # seeds 0..999
    python -m tests.sim.run --seed 42 --trace       # replay one seed, printing faults
    python -m tests.sim.run --seeds 200 --voters 5 --observers 1

A failing seed prints the command that replays it.
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.sim.cluster import Cluster, Violation


def run_seed(seed: int, voters: int, observers: int, trace: bool = False) -> Cluster:
    cluster = Cluster(seed, voters, observers, trace=print if trace else None)
    cluster.run()
    return cluster


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.sim.run")
    p.add_argument("--seed", type=int, help="run this one seed")
    p.add_argument("--seeds", type=int, default=100, help="run seeds 0..N-1")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--voters", type=int, default=3)
    p.add_argument("--observers", type=int, default=0)
    p.add_argument("--trace", action="store_true")
    args = p.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    t0, failed, writes, faults, syncs = time.monotonic(), [], 0, 0, 0
    for seed in seeds:
        try:
            c = run_seed(seed, args.voters, args.observers, args.trace)
            writes += len(c.checker.acked)
            faults += c.faults
            syncs += c.confirmed_syncs
        except (Violation, AssertionError) as e:
            failed.append(seed)
            print(
                f"seed {seed} FAILED: {e}\n  replay: python -m tests.sim.run --seed {seed} "
                f"--voters {args.voters} --observers {args.observers} --trace"
            )
    n = len(seeds)
    print(
        f"{n - len(failed)}/{n} seeds passed, {writes} acknowledged writes and {syncs} "
        f"sync rounds checked, {faults} faults injected, {time.monotonic() - t0:.1f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
