"""The server's metrics under ZooKeeper's names: ``mntr`` lines and Prometheus families.

One source for both outputs, so ``mntr``, the AdminServer's ``monitor`` and ``/metrics``
can never disagree. Names and kinds are listed in :mod:`pyzk.ops.metric_names`.
Prometheus families come out as plain tuples; ``pyzk.server.metrics_listener`` turns
them into prometheus_client objects (the only module that imports it).
"""

from __future__ import annotations

from collections.abc import Callable

from pyzk.ops import ZK_VERSION
from pyzk.ops import metric_names as names
from pyzk.ops.stats import Summary
from pyzk.ops.view import ServerView

# One Prometheus sample: (sample name, labels, value).
Sample = tuple[str, dict[str, str], float]
# One family: (name, "gauge" | "counter" | "summary", samples).
Family = tuple[str, str, list[Sample]]


def znode_count(view: ServerView) -> int:
    # ZooKeeper's node map holds the root twice ("" and "/"): its count is one more.
    return view.tree.node_count() + 1


def _fds(i: int) -> Callable[[ServerView], int]:
    return lambda v: v.file_descriptors()[i]


# Gauge name -> how to read it (ZooKeeperServer.registerMetrics).
_GAUGES: dict[str, Callable[[ServerView], float]] = {
    "avg_latency": lambda v: v.stats.latency_avg_ms,
    "max_latency": lambda v: v.stats.latency_max_ms,
    "min_latency": lambda v: v.stats.latency_min_ms,
    "packets_received": lambda v: v.stats.packets_received,
    "packets_sent": lambda v: v.stats.packets_sent,
    "num_alive_connections": lambda v: len(v.connections()),
    "outstanding_requests": lambda v: v.outstanding(),
    "uptime": lambda v: v.uptime_ms(),
    "znode_count": znode_count,
    "watch_count": lambda v: v.tree.watches.count(),
    "ephemerals_count": lambda v: v.tree.ephemeral_count(),
    "approximate_data_size": lambda v: v.tree.data_size,
    "global_sessions": lambda v: v.global_sessions(),
    "local_sessions": lambda v: 0,
    "open_file_descriptor_count": _fds(0),
    "max_file_descriptor_count": _fds(1),
    "connection_drop_probability": lambda v: 0.0,
    "last_client_response_size": lambda v: v.stats.last_response_size,
    "max_client_response_size": lambda v: v.stats.max_response_size,
    "min_client_response_size": lambda v: v.stats.min_response_size,
    "outstanding_tls_handshake": lambda v: 0,
    "auth_failed_count": lambda v: v.stats.auth_failed_count,
    "non_mtls_remote_conn_count": lambda v: 0,
    "non_mtls_local_conn_count": lambda v: 0,
}
assert tuple(_GAUGES) == names.GAUGES


def gauges(view: ServerView) -> list[tuple[str, float]]:
    out = [(name, read(view)) for name, read in _GAUGES.items()]
    out += sorted(view.role_gauges().items())
    return out


def monitor(view: ServerView) -> list[tuple[str, object]]:
    """``mntr`` keys (without ``zk_``) and values, as ZooKeeper's MonitorCommand."""
    out: list[tuple[str, object]] = [
        ("version", ZK_VERSION),
        ("server_state", view.mode),
    ]
    out += gauges(view)
    out += list(view.metrics.counters.items())
    for name, summary in view.metrics.summaries.items():
        out += _summary_keys(name, summary)
    return out


def _summary_keys(name: str, s: Summary) -> list[tuple[str, object]]:
    keys: list[tuple[str, object]] = [
        (f"avg_{name}", s.avg),
        (f"min_{name}", s.min),
        (f"max_{name}", s.max),
        (f"cnt_{name}", s.count),
        (f"sum_{name}", s.total),
    ]
    if s.percentiles:
        keys += [(f"{p}_{name}", int(s.quantile(q))) for p, q in names.MNTR_PERCENTILES]
    return keys


def prometheus_families(view: ServerView) -> list[Family]:
    """Every ZooKeeper metric as a Prometheus family (PrometheusMetricsProvider's names)."""
    out: list[Family] = [(n, "gauge", [(n, {}, float(v))]) for n, v in gauges(view)]
    out += [(n, "counter", [(n, {}, float(v))]) for n, v in view.metrics.counters.items()]
    for name, s in view.metrics.summaries.items():
        quantiles = (
            names.PROMETHEUS_QUANTILES_ADVANCED
            if s.percentiles
            else names.PROMETHEUS_QUANTILES_BASIC
        )
        # An empty window has no quantiles: NaN, as simpleclient reports them.
        samples: list[Sample] = [
            (name, {"quantile": str(q)}, s.quantile(q) if s.recent else float("nan"))
            for q in quantiles
        ]
        samples += [(f"{name}_count", {}, float(s.count)), (f"{name}_sum", {}, float(s.total))]
        out.append((name, "summary", samples))
    return out
