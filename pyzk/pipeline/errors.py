"""The error every stage raises for a request that fails with a ZooKeeper error code."""

from __future__ import annotations

from pyzk.jute.codes import Err


class KeeperError(Exception):
    """A request fails with a ZooKeeper error code (it goes back in the reply header)."""

    def __init__(self, code: int, path: str = "") -> None:
        super().__init__(f"{Err(code).name} {path}".strip())
        self.code = code
        self.path = path
