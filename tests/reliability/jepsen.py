"""One Jepsen-style run: a 3-server ensemble behind the fault proxy, concurrent clients,
faults, then the history checked (writes linearizable, reads sequentially consistent).

At the end, with every fault repaired, each server is asked for every key after a
``sync``, as a client of its own: those reads join the history (so an acknowledged
write lost anywhere is a violation), and all servers must agree.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kazoo.client import KazooClient

from tests.ensemble.cluster import Ensemble
from tests.faultproxy import FaultProxy
from tests.reliability.checker import Result, check
from tests.reliability.history import OK, SREAD, Recorder
from tests.reliability.nemesis import Nemesis
from tests.reliability.workload import CONNECT_TIMEOUT_S, OP_TIMEOUT_S, Workload

INITIAL = "init"
FINAL_PROCESS = 1000  # process ids of the final reads: 1000 + server id


@dataclass
class Run:
    seed: int
    processes: int
    faults: list[str]
    keys: int = 3
    hold_ops: int = 20
    # filled in by run()
    result: Result | None = None
    ops: Counter[str] = field(default_factory=Counter)  # by outcome
    injected: Counter[str] = field(default_factory=Counter)
    journal: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    divergent: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result is not None and self.result.ok and not self.errors and not self.divergent

    def report(self) -> str:
        lines = [
            f"seed {self.seed}: {self.processes} clients, {self.keys} keys, "
            f"ops {dict(self.ops)}, faults {dict(self.injected)}",
            *self.journal,
            *(f"ERROR {e}" for e in self.errors),
            *(f"DIVERGED {d}" for d in self.divergent),
        ]
        if self.result is not None:
            lines.append(self.result.report())
        return "\n".join(lines)


def run(workdir: Path, spec: Run) -> Run:
    proxy = FaultProxy()
    ens = Ensemble(workdir, proxy=proxy)
    try:
        ens.start()
        keys = {f"k{i}": f"/register-{i}" for i in range(spec.keys)}
        _create(ens.hosts, keys)
        rec = Recorder()
        work = Workload(ens.hosts, keys, spec.processes, rec, seed=spec.seed)
        nemesis = Nemesis(ens, work.ok_count, random.Random(spec.seed), spec.hold_ops)
        work.start()
        try:
            nemesis.settle()
            nemesis.run(spec.faults)
        finally:
            work.join()
            spec.journal, spec.injected = nemesis.journal, nemesis.counts
        spec.errors = list(work.errors)
        nemesis.settle_servers()
        spec.divergent = _final_reads(ens, keys, rec)
        spec.ops = Counter(op.status for op in rec.ops)
        spec.result = check(rec.ops, dict.fromkeys(keys, INITIAL))
        return spec
    finally:
        ens.stop()
        proxy.stop()


def _create(hosts: str, keys: dict[str, str]) -> None:
    zk = KazooClient(hosts=hosts, timeout=10.0)
    zk.start(timeout=CONNECT_TIMEOUT_S)
    try:
        for path in keys.values():
            zk.create(path, INITIAL.encode())
    finally:
        zk.stop()
        zk.close()


def _final_reads(ens: Ensemble, keys: dict[str, str], rec: Recorder) -> list[str]:
    """Each server, after sync, reads every key; they must all say the same."""
    seen: dict[str, dict[int, tuple[str, int]]] = {k: {} for k in keys}
    for i in ens.ids:
        zk = KazooClient(hosts=f"127.0.0.1:{ens.client_ports[i]}", timeout=10.0)
        zk.start(timeout=CONNECT_TIMEOUT_S)
        try:
            sid = zk.client_id[0]
            for key, path in keys.items():
                op = rec.invoke(FINAL_PROCESS + i, sid, SREAD, key)
                zk.sync_async(path).get(timeout=OP_TIMEOUT_S)
                data, stat = zk.get_async(path).get(timeout=OP_TIMEOUT_S)
                rec.complete(op, OK, value=data.decode(), version=stat.version, zxid=stat.mzxid)
                seen[key][i] = (data.decode(), stat.version)
        finally:
            zk.stop()
            zk.close()
    return [
        f"{key}: {by_server}" for key, by_server in seen.items() if len(set(by_server.values())) > 1
    ]
