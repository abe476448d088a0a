"""``/metrics`` on ``metricsProvider.httpPort`` (7000): ZooKeeper's PrometheusMetricsProvider.

Enabled by ``metricsProvider.className=org.apache.zookeeper.metrics.prometheus.
PrometheusMetricsProvider`` (the class ZooKeeper deployments already name), served on
``metricsProvider.httpHost:httpPort``. The ZooKeeper families are written exactly as
ZooKeeper 3.8 (Prometheus simpleclient 0.9) writes them, so dashboards built for it
work unchanged: counters keep their bare name (``looking_count``, no ``_total``),
``packets_received``/``packets_sent`` are gauges, summaries carry the 0.5 quantile (and
0.9, 0.99 for the detailed ones). prometheus_client adds the ``process_*`` families,
which ZooKeeper exports too.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from pyzk.ops.metrics import Family, prometheus_families
from pyzk.ops.stats import java_double
from pyzk.server.http import start_site

if TYPE_CHECKING:
    from pyzk.ops.view import ServerView

log = logging.getLogger(__name__)

# The text format ZooKeeper's servlet answers with (what every Prometheus scrapes).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def exposition(families: list[Family]) -> str:
    """Prometheus text format 0.0.4, ``# HELP name name`` as ZooKeeper writes it."""
    out: list[str] = []
    for name, kind, samples in families:
        out.append(f"# HELP {name} {name}\n# TYPE {name} {kind}\n")
        for sample, labels, value in samples:
            lbl = ",".join(f'{k}="{v}"' for k, v in labels.items())
            lbl = f"{{{lbl}}}" if lbl else ""
            out.append(f"{sample}{lbl} {_number(value)}\n")
    return "".join(out)


def _number(value: float) -> str:
    """As simpleclient prints a double (Java's Double.toString, +Inf/-Inf/NaN)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return java_double(value)


class MetricsListener:
    def __init__(self, view: ServerView, host: str, port: int) -> None:
        self.view = view
        self.host, self.port = host, port
        self._process = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self._process)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner, self.port = await start_site(
            app, self.host, self.port, "metricsProvider.httpPort"
        )
        log.info("Started /metrics HTTP endpoint at host: %s, port: %d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        text = exposition(prometheus_families(self.view))
        body = text.encode() + generate_latest(self._process)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
