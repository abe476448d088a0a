"""``/metrics``: scraped and parsed with prometheus_client, names checked against ZooKeeper.

The Debian ZooKeeper has no Prometheus provider jar, so the reference for names is its
``mntr``, which lists the same metrics (``zk_<name>`` for gauges and counters,
``zk_{avg,min,max,cnt,sum}_<name>`` for summaries).
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bench.ports import free_port
from pyzk.ops import metric_names as names
from tests.conftest import TARGETS, connect
from tests.servers import ServerProcess, four_letter, make_server

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


@pytest.fixture(scope="module")
def pyzk_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    port = free_port()
    extra: dict[str, str | None] = {
        "metricsProvider.className": PROVIDER,
        "metricsProvider.httpHost": "127.0.0.1",
        "metricsProvider.httpPort": str(port),
    }
    srv = make_server("pyzk", tmp_path_factory.mktemp("metrics"), extra)
    srv.start()
    yield srv, port
    srv.stop()


def scrape_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return str(resp.read().decode())


def scrape(port: int) -> dict[str, tuple[str, list[Sample]]]:
    text = scrape_text(port)
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


def value(families: dict[str, tuple[str, list[Sample]]], name: str) -> float:
    """The unlabelled sample called ``name``, in whichever family holds it."""
    samples = (s for _, ss in families.values() for s in ss)
    return next(s.value for s in samples if s.name == name and not s.labels)


def test_every_zookeeper_metric_with_its_type(pyzk_metrics: tuple[ServerProcess, int]) -> None:
    text = scrape_text(pyzk_metrics[1])
    families = {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}
    for name in names.GAUGES:
        assert families[name][0] == "gauge", name
    for name in names.COUNTERS:
        assert families[name][0] == "counter", name
        # ZooKeeper's simpleclient 0.9 writes counters without "_total" (the parser
        # adds it back when it reads them).
        assert re.search(rf"^# TYPE {name} counter\n{name} \d", text, re.M), name
    for name in names.BASIC_SUMMARIES + names.ADVANCED_SUMMARIES:
        kind, samples = families[name]
        assert kind == "summary", name
        quantiles = [s.labels["quantile"] for s in samples if "quantile" in s.labels]
        assert quantiles == (
            ["0.5", "0.9", "0.99"] if name in names.ADVANCED_SUMMARIES else ["0.5"]
        )
        assert {s.name for s in samples} == {name, f"{name}_count", f"{name}_sum"}
    assert "process_open_fds" in families


def test_values_follow_the_server(pyzk_metrics: tuple[ServerProcess, int]) -> None:
    srv, port = pyzk_metrics
    zk = connect(srv)
    try:
        zk.create("/m", b"abc")
        zk.get("/m")
        families = scrape(port)
        mntr = dict(ln.split("\t", 1) for ln in four_letter(srv.port, "mntr").splitlines())
        for name in ("znode_count", "approximate_data_size", "ephemerals_count"):
            assert value(families, name) == float(mntr[f"zk_{name}"]), name
        assert value(families, "readlatency_count") >= 1
        assert value(families, "updatelatency_count") >= 2  # createSession, create
        assert value(families, "packets_received") >= 3
        zk.delete("/m")
    finally:
        zk.stop()
        zk.close()


def test_other_paths_are_not_found(pyzk_metrics: tuple[ServerProcess, int]) -> None:
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{pyzk_metrics[1]}/", timeout=10)
    assert e.value.code == 404


_SUMMARY_KEY = re.compile(r"^zk_(avg|min|max|cnt|sum|p50|p95|p99|p999)_(.+)$")


@pytest.mark.skipif("zookeeper" not in TARGETS, reason="needs Apache ZooKeeper")
def test_names_are_zookeepers(
    pyzk_metrics: tuple[ServerProcess, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    zk = make_server("zookeeper", tmp_path_factory.mktemp("metrics-zk"))
    zk.start()
    try:
        keys = [ln.split("\t")[0] for ln in four_letter(zk.port, "mntr").splitlines()]
    finally:
        zk.stop()
    theirs: dict[str, set[str]] = {"summary": set(), "other": set()}
    for key in keys[2:]:  # after zk_version, zk_server_state
        m = _SUMMARY_KEY.match(key)
        if m and f"zk_cnt_{m[2]}" in keys:
            theirs["summary"].add(m[2])
        else:
            theirs["other"].add(key[3:])
    theirs["summary"] = {n for n in theirs["summary"] if not n.endswith("_per_namespace")}
    families = scrape(pyzk_metrics[1])
    ours = {n for n in families if not n.startswith(("process_", "python_"))}
    assert {n for n in ours if families[n][0] == "summary"} == theirs["summary"]
    assert {n for n in ours if families[n][0] != "summary"} == theirs["other"]
