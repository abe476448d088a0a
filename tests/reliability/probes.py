"""What the fuzz and overload tests watch: a server's memory, its view of a connection,
and a well-behaved client that must keep being served meanwhile."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from kazoo.client import KazooClient

from tests.servers import ServerProcess, four_letter


def _status_kb(pid: int, field_name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise LookupError(field_name)


def rss_bytes(srv: ServerProcess) -> int:
    assert srv.proc is not None
    return _status_kb(srv.proc.pid, "VmRSS") * 1024


def peak_rss_bytes(srv: ServerProcess) -> int:
    """The most memory the process has had resident (VmHWM) since start or the last
    :func:`reset_peak_rss`."""
    assert srv.proc is not None
    return _status_kb(srv.proc.pid, "VmHWM") * 1024


def reset_peak_rss(srv: ServerProcess) -> int:
    """Start measuring the peak afresh (``clear_refs`` 5); returns the RSS now."""
    assert srv.proc is not None
    with open(f"/proc/{srv.proc.pid}/clear_refs", "w") as f:
        f.write("5")
    return rss_bytes(srv)


_CONS = re.compile(r"/(?P<peer>\S+?)\[(?P<ops>\w+)\]\(queued=(?P<q>\d+),recved=(?P<r>\d+)")


def connection_stats(srv: ServerProcess, local_port: int) -> tuple[int, int] | None:
    """(interest ops, packets received) of our connection from ``local_port``, per ``cons``."""
    for line in four_letter(srv.port, "cons", srv.host).splitlines():
        m = _CONS.search(line)
        if m and m["peer"].endswith(f":{local_port}"):
            return int(m["ops"], 16), int(m["r"])
    return None


@dataclass
class Bystander:
    """A well-behaved kazoo client doing small reads and writes in a loop.

    It must see no error at all while the server is being abused next to it.
    """

    srv: ServerProcess
    path: str
    ops: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        zk = KazooClient(hosts=self.srv.hosts, timeout=10.0)
        try:
            zk.start(timeout=15)
            zk.ensure_path(self.path)
            n = 0
            while not self._stop.is_set():
                n += 1
                zk.set(self.path, str(n).encode())
                data, _ = zk.get(self.path)
                if data != str(n).encode():
                    self.errors.append(f"read {data!r} after writing {n}")
                self.ops += 2
        except Exception as e:  # any error at all is what this client exists to catch
            self.errors.append(repr(e))
        finally:
            with contextlib.suppress(Exception):
                zk.stop()
                zk.close()

    def wait_ops(self, n: int, timeout_s: float = 30.0) -> None:
        """Wait until it has done ``n`` more operations (it is being served)."""
        target = self.ops + n
        deadline = time.monotonic() + timeout_s
        while self.ops < target and not self.errors:
            assert time.monotonic() < deadline, f"bystander starved: {self.ops}/{target} ops"
            time.sleep(0.02)


@contextlib.contextmanager
def bystander(srv: ServerProcess, path: str) -> Iterator[Bystander]:
    b = Bystander(srv, path)
    t = threading.Thread(target=b._run, daemon=True)
    t.start()
    try:
        b.wait_ops(2)
        yield b
    finally:
        b._stop.set()
        t.join(30)
    assert not b.errors, f"the well-behaved client saw errors: {b.errors}"


def raise_fd_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to ``needed`` (servers started after
    this inherit it); returns the soft limit now in force."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft
