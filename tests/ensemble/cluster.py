"""Real ensembles of pyzk processes on loopback, for tests (and benchmarks)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.ports import free_port, free_ports
from tests.faultproxy import FaultProxy
from tests.servers import ServerProcess, four_letter

START_TIMEOUT_S = 30.0


class Ensemble:
    """N pyzk servers on loopback, each with its own ports and data, MYID from the env.

    Clients reach every server on 127.0.0.1. The servers talk to each other on
    127.0.0.1 too, unless ``own_ips`` puts server i's quorum and election ports on
    127.0.0.i, or ``proxy`` puts a :class:`~tests.faultproxy.FaultProxy` route between
    every pair (server i's configuration then names the route's port as server j's
    address; the route dials j from 127.0.0.i), so tests can cut links.
    """

    def __init__(
        self,
        workdir: Path,
        n: int = 3,
        observers: int = 0,
        tick_ms: int = 300,
        extra: dict[str, str] | None = None,
        own_ips: bool = False,
        proxy: FaultProxy | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.ids = list(range(1, n + observers + 1))
        self.proxy = proxy
        self.peer_ip = {i: f"127.0.0.{i}" if own_ips or proxy else "127.0.0.1" for i in self.ids}
        # All ports of one address chosen together, so none is handed out twice.
        ips = list(self.peer_ip.values())
        wanted = {ip: 2 * ips.count(ip) for ip in ips}
        wanted["127.0.0.1"] = wanted.get("127.0.0.1", 0) + len(self.ids)
        pools = {ip: iter(free_ports(n, ip)) for ip, n in wanted.items()}
        self.client_ports = {i: next(pools["127.0.0.1"]) for i in self.ids}
        real = {i: (next(pools[self.peer_ip[i]]), next(pools[self.peer_ip[i]])) for i in self.ids}
        self.peer_ports = real  # server id -> its real (quorum, election) ports
        roles = {i: ":observer" if i > n else "" for i in self.ids}
        self.servers: dict[int, ServerProcess] = {}
        for i in self.ids:
            d = workdir / f"s{i}"
            (d / "data").mkdir(parents=True, exist_ok=True)
            settings = {
                "tickTime": str(tick_ms),
                "initLimit": "10",
                "syncLimit": "5",
                "dataDir": str(d / "data"),
                "clientPort": str(self.client_ports[i]),
                "clientPortAddress": "127.0.0.1",
                "admin.enableServer": "false",
                "4lw.commands.whitelist": "*",
                **(extra or {}),
            }
            lines = [
                f"server.{j} = {self.peer_ip[j]}:{q}:{e}{roles[j]}"
                for j, (q, e) in (self._routes_from(i, real) if proxy else real).items()
            ]
            cfg = d / "zoo.cfg"
            cfg.write_text("".join(f"{k}={v}\n" for k, v in settings.items()) + "\n".join(lines))
            srv = ServerProcess(
                "pyzk",
                self.client_ports[i],
                d,
                [sys.executable, "-m", "pyzk", "--config", str(cfg)],
                env={"MYID": str(i), **(env or {})},
            )
            self.servers[i] = srv

    def _routes_from(self, i: int, real: dict[int, tuple[int, int]]) -> dict[int, tuple[int, int]]:
        """Server i's view of the ports: its own real ones, a proxy route to each other."""
        assert self.proxy is not None
        ports = {}
        for j, (q, e) in real.items():
            if j == i:
                ports[j] = (q, e)
                continue
            ip = self.peer_ip[j]
            routed = []
            for kind, port in (("quorum", q), ("election", e)):
                listen = (ip, free_port(ip))
                self.proxy.add_route(f"{i}->{j} {kind}", listen, (ip, port), self.peer_ip[i])
                routed.append(listen[1])
            ports[j] = (routed[0], routed[1])
        return ports

    def isolate(self, i: int, mode: str = "stall") -> None:
        """Cut server i off from every other server (both directions) through the proxy."""
        self.partition([i], [j for j in self.ids if j != i], mode)

    def partition(self, side_a: list[int], side_b: list[int], mode: str = "stall") -> None:
        assert self.proxy is not None
        names = [
            f"{x}->{y} {kind}"
            for a in side_a
            for b in side_b
            for x, y in ((a, b), (b, a))
            for kind in ("quorum", "election")
        ]
        self.proxy.set_mode(mode, names)

    def heal(self) -> None:
        assert self.proxy is not None
        self.proxy.heal()

    @property
    def hosts(self) -> str:
        return ",".join(f"127.0.0.1:{self.client_ports[i]}" for i in self.ids)

    def start(self, ids: list[int] | None = None, wait: bool = True) -> None:
        for i in ids or self.ids:
            self.servers[i].start_process()
        if wait:
            self.wait_for(
                lambda: (
                    self.leader() is not None and all(self.mode(i) != "" for i in (ids or self.ids))
                )
            )

    def mode(self, i: int) -> str:
        """The Mode line of server i ("" when it is not serving or not reachable)."""
        try:
            text = four_letter(self.client_ports[i], "srvr", timeout=1.0)
        except OSError:
            return ""
        for line in text.splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return ""

    def leader(self) -> int | None:
        leaders = [i for i in self.ids if self.is_up(i) and self.mode(i) == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def is_up(self, i: int) -> bool:
        p = self.servers[i].proc
        return p is not None and p.poll() is None

    def wait_for(self, cond: Callable[[], bool], timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.05)
        raise TimeoutError(
            "condition not met; modes: "
            + ", ".join(f"{i}:{self.mode(i) or '-'}" for i in self.ids)
            + "\n"
            + self.logs()
        )

    def kill(self, i: int) -> None:
        self.servers[i].kill()

    def stop_signal(self, i: int) -> None:
        p = self.servers[i].proc
        assert p is not None
        os.kill(p.pid, signal.SIGSTOP)

    def cont_signal(self, i: int) -> None:
        p = self.servers[i].proc
        assert p is not None
        os.kill(p.pid, signal.SIGCONT)

    def stop(self) -> None:
        for i in self.ids:
            if self.is_up(i):
                self.cont_signal(i)
            self.servers[i].stop()

    def logs(self, n: int = 15) -> str:
        return "\n".join(f"--- server {i}\n{self.servers[i].log_tail(n)}" for i in self.ids)
