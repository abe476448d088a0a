"""A thin podman driver for the image tests: bounded commands, and nothing left behind.

Every container, network and image a test run makes carries the label
``pyzk-test-run=<pid of the run>``; ``cleanup`` removes this run's, and ``remove_stale``
those of earlier runs whose process is gone (a run killed before its teardown).
podman reads tests/deploy/containers.conf (runc, bounded ulimits) through
CONTAINERS_CONF, so the machine's own configuration is left alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CONTAINERS_CONF = Path(__file__).with_name("containers.conf")
LABEL_KEY = "pyzk-test-run"
RUN_ID = str(os.getpid())
LABEL = f"{LABEL_KEY}={RUN_ID}"
# Names of this run's containers and networks start with this.
PREFIX = f"pyzk-test-{RUN_ID}-"
COMMAND_TIMEOUT_S = 120
READY_POLL_S = 0.5


class PodmanError(RuntimeError):
    pass


class Podman:
    def __init__(self, exe: str) -> None:
        self.exe = exe
        self.env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}

    @classmethod
    def find(cls) -> Podman | None:
        exe = shutil.which("podman")
        return cls(exe) if exe else None

    def __call__(
        self, *args: str, timeout: float = COMMAND_TIMEOUT_S, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [self.exe, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and out.returncode != 0:
            raise PodmanError(f"podman {' '.join(args)}: exit {out.returncode}\n{out.stderr}")
        return out

    # --- containers -------------------------------------------------------------------------

    def run(self, name: str, image: str, *opts: str, args: tuple[str, ...] = ()) -> str:
        """Start a detached container of this run; returns its name."""
        self("run", "-d", "--name", name, "--label", LABEL, *opts, image, *args)
        return name

    def exec(self, name: str, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self("exec", name, *cmd, timeout=timeout, check=False)

    def inspect(self, name: str) -> dict[str, Any]:
        (info,) = json.loads(self("inspect", name).stdout)
        return dict(info)

    def running(self, name: str) -> bool:
        return bool(self.inspect(name)["State"]["Running"])

    def logs(self, name: str) -> str:
        out = self("logs", name, check=False)
        return out.stdout + out.stderr

    def wait_ready(self, name: str, timeout_s: float) -> str:
        """Poll ready.sh in the container until it passes; returns its output."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if not self.running(name):
                raise PodmanError(f"{name} stopped:\n{self.logs(name)}")
            out = self.exec(name, "ready.sh", timeout=15)
            if out.returncode == 0:
                return out.stdout
            last = out.stdout + out.stderr
            time.sleep(READY_POLL_S)
        raise PodmanError(f"{name} not ready in {timeout_s}s: {last}\n{self.logs(name)}")

    # --- clean-up -----------------------------------------------------------------------------

    # what -> (list command, the format of one id)
    _LISTS = {
        "container": (("ps", "-a"), "{{.ID}}"),
        "network": (("network", "ls"), "{{.Name}}"),
        "image": (("images",), "{{.ID}}"),
    }

    def _list(self, what: str, label: str, fmt: str | None = None) -> list[str]:
        command, id_format = self._LISTS[what]
        out = self(
            *command, "--filter", f"label={label}", "--format", fmt or id_format, check=False
        )
        return sorted(set(out.stdout.split()))

    def cleanup(self, label: str = LABEL) -> None:
        """Remove the containers (with their anonymous volumes: the image declares data
        and WAL volumes), networks and images with this label, in that order."""
        if containers := self._list("container", label):
            self("rm", "-f", "-v", "-t", "2", *containers, check=False)
        if networks := self._list("network", label):
            self("network", "rm", "-f", *networks, check=False)
        if images := self._list("image", label):
            self("rmi", "-f", *images, check=False)

    def remove_stale(self) -> None:
        """What earlier runs left when they were killed before their teardown."""
        label_value = '{{index .Labels "' + LABEL_KEY + '"}}'
        runs = set(self._list("container", LABEL_KEY, label_value))
        runs |= set(self._list("image", LABEL_KEY, label_value))
        # (network ls cannot print one label's value; its names carry the run)
        for net in self._list("network", LABEL_KEY):
            if m := re.match(r"pyzk-test-(\d+)-", net):
                runs.add(m[1])
        for run in runs - {RUN_ID}:
            if not _alive(run):
                self.cleanup(f"{LABEL_KEY}={run}")


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
