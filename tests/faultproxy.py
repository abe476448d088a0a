"""A fault-injecting TCP proxy for the links between ensemble members (test infrastructure).

Every directed pair of servers (i dials j) gets its own *route*: a listener that server
i's configuration names as server j's quorum or election address, forwarding to j's
real port. The proxy dials j from i's own address (127.0.0.i), so j sees the connection
come from where its configuration says i lives, as it would without the proxy.

A route is ``up`` (bytes flow), ``stall`` (nothing is delivered and nothing is lost:
connections stay open, new ones are held, bytes wait, as across a partition TCP does not
notice; the servers find out by their own timeouts) or ``reset`` (existing connections
closed, new ones closed at once: a partition that answers with RSTs).

Everything runs on one asyncio loop in a daemon thread; the methods are thread-safe and
return once the change is in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

UP, STALL, RESET = "up", "stall", "reset"
_CHUNK = 65536


@dataclass(eq=False)
class Route:
    name: str  # "1->2 quorum"
    listen: tuple[str, int]
    target: tuple[str, int]
    source_ip: str  # the dialing server's address, used as the proxy's source
    mode: str = UP
    flowing: asyncio.Event = field(default_factory=asyncio.Event)  # set while UP
    server: asyncio.Server | None = None
    conns: set[_Conn] = field(default_factory=set)
    accepted: int = 0
    forwarded_bytes: int = 0


class _Conn:
    """One proxied connection: two pumps, closed together."""

    def __init__(self, route: Route, down: asyncio.StreamWriter) -> None:
        self.route = route
        self.writers: list[asyncio.StreamWriter] = [down]
        self.tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        for w in self.writers:
            with contextlib.suppress(Exception):
                w.transport.abort()
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.route.conns.discard(self)


class FaultProxy:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    # --- setup ---------------------------------------------------------------------

    def add_route(
        self, name: str, listen: tuple[str, int], target: tuple[str, int], source_ip: str
    ) -> Route:
        route = self._run(self._listen(name, listen, target, source_ip))
        self.routes[name] = route
        return route  # type: ignore[no-any-return]

    async def _listen(
        self, name: str, listen: tuple[str, int], target: tuple[str, int], source_ip: str
    ) -> Route:
        route = Route(name, listen, target, source_ip)
        route.flowing.set()

        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self._serve(route, r, w)

        route.server = await asyncio.start_server(accept, listen[0], listen[1], reuse_address=True)
        return route

    # --- faults --------------------------------------------------------------------

    def set_mode(self, mode: str, names: list[str] | None = None) -> None:
        """Put the named routes (all, by default) in ``mode``; returns once in effect."""
        routes = list(self.routes.values()) if names is None else [self.routes[n] for n in names]
        self._run(self._set_mode(routes, mode))

    async def _set_mode(self, routes: list[Route], mode: str) -> None:
        for route in routes:
            route.mode = mode
            if mode == UP:
                route.flowing.set()
                continue
            route.flowing.clear()
            if mode == RESET:
                for conn in list(route.conns):
                    conn.close()

    def heal(self) -> None:
        self.set_mode(UP)

    def stop(self) -> None:
        self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _stop(self) -> None:
        for route in self.routes.values():
            if route.server is not None:
                route.server.close()
            for conn in list(route.conns):
                conn.close()
        for route in self.routes.values():
            if route.server is not None:
                await route.server.wait_closed()

    # --- forwarding ----------------------------------------------------------------

    async def _serve(self, route: Route, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        route.accepted += 1
        conn = _Conn(route, w)
        route.conns.add(conn)
        if route.mode == RESET:
            conn.close()
            return
        task = asyncio.current_task()
        assert task is not None
        conn.tasks.append(task)  # a stalled connect is cancelled with the connection
        try:
            await route.flowing.wait()  # a stalled route: the SYN is "in flight"
            ur, uw = await asyncio.open_connection(
                route.target[0], route.target[1], local_addr=(route.source_ip, 0)
            )
        except (OSError, asyncio.CancelledError):
            conn.close()
            return
        conn.writers.append(uw)
        loop = asyncio.get_running_loop()
        conn.tasks = [
            loop.create_task(self._pump(conn, r, uw)),
            loop.create_task(self._pump(conn, ur, w)),
        ]

    async def _pump(self, conn: _Conn, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        """Copy one direction. While the route stalls nothing is read, so nothing is
        delivered and nothing lost: the sender's TCP buffers it, as across a partition."""
        route = conn.route
        try:
            while True:
                await route.flowing.wait()
                data = await r.read(_CHUNK)
                if not data:
                    break
                await route.flowing.wait()  # a stall that began while we waited for data
                route.forwarded_bytes += len(data)
                w.write(data)
                await w.drain()
        except OSError:
            pass
        finally:
            conn.close()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)
