"""One PNG: absolute figures of both servers, and every headline ratio.

Four panels: throughput at 8 x 64 (ops/s), latency at 1 x 1 (p50 and p99), the
resource figures (memory per session and per znode, RSS, start-up, fan-out, lock), and,
across the bottom, the pyzk/ZooKeeper ratio of every headline figure (log scale, green
where pyzk is better, the issue's target drawn where there is one). Error bars are the
range over the repeated back-to-back pairs, where there were repeats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"zookeeper": "#4c72b0", "pyzk": "#dd8452"}


Spread = dict[str, list[tuple[float, float] | None]]


def _bars(
    ax: Any,
    labels: list[str],
    series: dict[str, list[float]],
    title: str,
    spread: Spread | None = None,
) -> None:
    n = len(series)
    width = 0.8 / max(n, 1)
    for j, (name, vals) in enumerate(series.items()):
        xs = [i + (j - (n - 1) / 2) * width for i in range(len(labels))]
        color = COLORS.get(name.split()[0])
        hatch = "//" if "p99" in name else None
        ax.bar(xs, vals, width, label=name, color=color, hatch=hatch, edgecolor="white")
        ranges = (spread or {}).get(name)
        if ranges and any(ranges):
            lo = [v - r[0] if r else 0 for v, r in zip(vals, ranges, strict=True)]
            hi = [r[1] - v if r else 0 for v, r in zip(vals, ranges, strict=True)]
            ax.errorbar(xs, vals, yerr=[lo, hi], fmt="none", ecolor="black", lw=0.8, capsize=2)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)
    ax.grid(axis="y", alpha=0.3)


def _val(r: dict[str, Any], kind: str, key: str) -> float:
    v = r.get(kind, {}).get(key)
    return float(v) if isinstance(v, int | float) else 0.0


def _range(r: dict[str, Any], kind: str, key: str) -> tuple[float, float] | None:
    s = r.get(kind, {}).get("spread", {}).get(key)
    return (float(s[0]), float(s[1])) if s else None


def _throughput(ax: Any, results: list[dict[str, Any]]) -> None:
    rs = [
        r
        for r in results
        if r["group"] in ("throughput", "ensemble") and "ops_per_sec" in r["ratios"]
    ]
    labels = [r["workload"].removesuffix("-8x64") for r in rs]
    series = {k: [_val(r, k, "ops_per_sec") for r in rs] for k in COLORS}
    spread = {k: [_range(r, k, "ops_per_sec") for r in rs] for k in COLORS}
    _bars(ax, labels, series, "Throughput, 8 clients x 64 in flight (ops/s)", spread)


def _latency(ax: Any, results: list[dict[str, Any]]) -> None:
    rs = [r for r in results if r["group"] == "latency" and "p99_us" in r["ratios"]]
    labels = [r["workload"].removesuffix("-1x1") for r in rs]
    series = {
        f"{k} {q}": [_val(r, k, f"{q}_us") for r in rs] for k in COLORS for q in ("p50", "p99")
    }
    spread = {
        f"{k} {q}": [_range(r, k, f"{q}_us") for r in rs] for k in COLORS for q in ("p50", "p99")
    }
    _bars(ax, labels, series, "Latency, 1 client x 1 in flight (us)", spread)
    ax.set_yscale("log")


def _ratios(ax: Any, results: list[dict[str, Any]]) -> None:
    names, vals, colors, targets = [], [], [], []
    for r in results:
        for m in r["headline"]:
            ratio = r["ratios"].get(m["key"])
            if not ratio or ratio <= 0:
                continue
            names.append(f"{r['workload']}: {m['label']}")
            vals.append(ratio)
            good = ratio >= 1 if m["better"] == "higher" else ratio <= 1
            colors.append("#55a868" if good else "#c44e52")
            targets.append(m["target"])
    ys = list(range(len(names)))
    ax.barh(ys, vals, color=colors)
    for y, t in zip(ys, targets, strict=True):
        if t is not None:
            ax.plot([t, t], [y - 0.4, y + 0.4], color="black", lw=1.5)
    ax.axvline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator([0.01, 0.03, 0.1, 0.25, 0.5, 1, 2, 4, 10, 30]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_title("pyzk / ZooKeeper (green: pyzk better; black tick: target)", fontsize=10)
    ax.grid(axis="x", alpha=0.3)


RESOURCE_FIGURES = (
    ("idle-sessions", "bytes_per_session", "B per idle session"),
    ("znodes", "bytes_per_znode", "B per znode"),
    ("znodes", "rss_mb", "RSS MB with N znodes"),
    ("znodes", "startup_empty_ms", "start-up ms, empty"),
    ("znodes", "startup_loaded_ms", "start-up ms, N znodes"),
    ("watch-fanout", "all_notified_ms", "fan-out ms, all notified"),
    ("kazoo-lock", "acquisitions_per_sec", "lock acquisitions/s"),
    ("ensemble-failover", "failover_ms", "failover ms"),
)


def _resources(ax: Any, results: list[dict[str, Any]]) -> None:
    by_name = {r["workload"]: r for r in results}
    labels: list[str] = []
    series: dict[str, list[float]] = {k: [] for k in COLORS}
    for name, key, label in RESOURCE_FIGURES:
        r = by_name.get(name)
        if r is None or key not in r.get("zookeeper", {}) or key not in r.get("pyzk", {}):
            continue
        if any(key in r[k].get("not_comparable", {}) for k in COLORS):
            continue
        labels.append(label)
        for k in COLORS:
            series[k].append(max(_val(r, k, key), 1e-3))
    _bars(ax, labels, series, "Memory, start-up, fan-out, lock (units in labels)")
    ax.set_yscale("log")


def write_png(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = doc["results"]
    n_ratios = sum(len(r["headline"]) for r in results)
    fig = plt.figure(figsize=(16, 10 + 0.16 * n_ratios))
    grid = fig.add_gridspec(3, 2, height_ratios=[1, 1, max(1.0, 0.05 * n_ratios)])
    _throughput(fig.add_subplot(grid[0, 0]), results)
    _latency(fig.add_subplot(grid[0, 1]), results)
    _resources(fig.add_subplot(grid[1, :]), results)
    _ratios(fig.add_subplot(grid[2, :]), results)
    meta = doc["meta"]
    fig.suptitle(
        f"pyzk vs Apache ZooKeeper {meta['versions'].get('zookeeper', '')}: {meta['name']} "
        f"({meta['preset']} run, {meta['machine']['cpus']} CPUs, shared machine: noisy)",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
