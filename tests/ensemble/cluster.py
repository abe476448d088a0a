"""Real ensembles of pyzk processes on loopback, for tests (and benchmarks)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.servers import ServerProcess, four_letter, free_ports

START_TIMEOUT_S = 30.0


class Ensemble:
    """N pyzk servers on 127.0.0.1, each with its own ports and data, MYID from the env."""

    def __init__(
        self,
        workdir: Path,
        n: int = 3,
        observers: int = 0,
        tick_ms: int = 300,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.ids = list(range(1, n + observers + 1))
        ports = iter(free_ports(3 * len(self.ids)))
        self.client_ports = {i: next(ports) for i in self.ids}
        lines = []
        for i in self.ids:
            role = ":observer" if i > n else ""
            lines.append(f"server.{i} = 127.0.0.1:{next(ports)}:{next(ports)}{role}")
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
            cfg = d / "zoo.cfg"
            cfg.write_text("".join(f"{k}={v}\n" for k, v in settings.items()) + "\n".join(lines))
            srv = ServerProcess(
                "pyzk",
                self.client_ports[i],
                d,
                [sys.executable, "-m", "pyzk", "--config", str(cfg)],
                env={"MYID": str(i)},
            )
            self.servers[i] = srv

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
