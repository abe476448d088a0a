"""The AdminServer: ZooKeeper's JSON commands over HTTP on ``admin.serverPort`` (8080).

``GET /commands`` lists the commands as links, ``GET /commands/<name>`` runs one (query
parameters are its arguments, as for ``set_trace_mask?traceMask=...``) and answers 200
with JSON that always has ``command`` and ``error``, as ZooKeeper's JettyAdminServer.
Other methods get 405 and other paths 404. The commands themselves are
:mod:`pyzk.ops.admin`; this module is only the HTTP side, served by aiohttp.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from pyzk.ops import admin
from pyzk.server.http import start_site

if TYPE_CHECKING:
    from pyzk.ops.view import ServerView

log = logging.getLogger(__name__)


class AdminListener:
    def __init__(self, view: ServerView, host: str, port: int, url: str = "/commands") -> None:
        self.view = view
        self.host, self.port = host, port
        self.url = "/" + url.strip("/")
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(self.url, self._links)
        app.router.add_get(self.url + "/", self._links)
        app.router.add_get(self.url + "/{name}", self._command)
        self._runner, self.port = await start_site(app, self.host, self.port, "admin.serverPort")
        log.info(
            "Started AdminServer on address %s, port %d and command URL %s",
            self.host,
            self.port,
            self.url,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _links(self, request: web.Request) -> web.Response:
        links = "".join(
            f'<a href="{self.url}/{name}">{name}</a>\n<br/>\n' for name in admin.primary_names()
        )
        return web.Response(text=links, content_type="text/html")

    async def _command(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        result = admin.run(self.view, name, dict(request.query))
        return web.Response(text=json.dumps(result, indent=2), content_type="application/json")
