"""Start and stop one aiohttp site: the AdminServer and /metrics share this."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web


def describe(e: OSError) -> str:
    """The OS's words for a bind error (uvloop's own messages repeat the address)."""
    return os.strerror(e.errno) if e.errno else str(e)


async def start_site(
    app: web.Application, host: str, port: int, key: str
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on host:port; returns the runner and the port bound (port 0: any).

    A port that cannot be bound raises OSError naming the config ``key`` that chose it.
    """
    from aiohttp import web  # imported with the first listener: see server.runner

    runner = web.AppRunner(app, access_log=None)  # no log line per request
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        raise OSError(e.errno, f"{key} {host}:{port}: {describe(e)}") from None
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            port = int(addr[1])
    return runner, port
