"""Run a server until a signal: start the listeners, then one graceful shutdown path.

Start-up binds the client port, then the AdminServer and ``/metrics`` when configured;
any port that cannot be bound stops start-up with an OSError naming its config key.

Shutdown (SIGTERM or SIGINT; the handlers only set an event): stop accepting clients,
answer what the pipeline already holds and close every connection once its replies are
written, close the HTTP listeners, and return 0. If that takes longer than
:data:`SHUTDOWN_GRACE_S`, or a second signal arrives, the remaining connections are
aborted and the return value is 1.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

from pyzk import __version__
from pyzk.config import PROMETHEUS_PROVIDER, Config
from pyzk.server.http import describe
from pyzk.server.node import Server

log = logging.getLogger("pyzk")

# How long a graceful shutdown may take before the remaining connections are aborted
# (kept under the 30 s a container runtime waits between SIGTERM and SIGKILL).
SHUTDOWN_GRACE_S = 10.0


class _Listener(Protocol):
    async def stop(self) -> None: ...


async def serve(cfg: Config) -> int:
    """Run until SIGTERM/SIGINT; 0 after a clean shutdown, 1 if it had to be forced."""
    if cfg.standalone:
        server = Server(cfg)
    else:
        # Imported here, as the HTTP listeners below are: start-up time is part of what
        # pyzk offers, and a standalone server (or one without them) need not pay for it.
        from pyzk.server.quorum import QuorumServer

        server = QuorumServer(cfg)
    try:
        await server.start()
    except OSError as e:
        where = e.filename or f"clientPort {cfg.client_port_address}:{cfg.client_port}"
        raise OSError(e.errno, f"{where}: {describe(e)}") from None
    listeners: list[_Listener] = []
    try:
        await _start_http(cfg, server, listeners)
    except OSError:
        await _stop(server, listeners)
        raise
    log.info("pyzk %s serving clients on %s:%d (%s)", __version__, cfg.client_port_address,
             server.client_port, server.mode)  # fmt: skip
    stop, force = asyncio.Event(), asyncio.Event()
    _on_signals(stop, force)
    await stop.wait()
    return await _shutdown(server, listeners, force)


async def _start_http(cfg: Config, server: Server, listeners: list[_Listener]) -> None:
    if cfg.admin_enable:
        from pyzk.server.admin_listener import AdminListener

        admin = AdminListener(
            server.ops, cfg.admin_server_address, cfg.admin_server_port, cfg.admin_command_url
        )
        await admin.start()
        listeners.append(admin)
    if cfg.metrics_provider == PROMETHEUS_PROVIDER:
        from pyzk.server.metrics_listener import MetricsListener

        metrics = MetricsListener(server.ops, cfg.metrics_host, cfg.metrics_port)
        await metrics.start()
        listeners.append(metrics)


def _on_signals(stop: asyncio.Event, force: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            force.set()
        else:
            log.info("shutting down on %s", sig.name)
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, handle, sig)


async def _shutdown(server: Server, listeners: list[_Listener], force: asyncio.Event) -> int:
    graceful = asyncio.ensure_future(_stop(server, listeners))
    forced = asyncio.ensure_future(force.wait())
    done, _ = await asyncio.wait(
        {graceful, forced}, timeout=SHUTDOWN_GRACE_S, return_when=asyncio.FIRST_COMPLETED
    )
    forced.cancel()
    if graceful in done:
        graceful.result()
        log.info("shut down cleanly")
        return 0
    log.warning("shutdown not finished after %.0fs: aborting connections", SHUTDOWN_GRACE_S)
    for conn in list(server.connections):
        transport = conn.handle.transport
        if transport is not None:
            transport.abort()
    graceful.cancel()
    return 1


async def _stop(server: Server, listeners: list[_Listener]) -> None:
    await server.stop()
    for listener in listeners:
        await listener.stop()
