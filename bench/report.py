"""Results as JSON (everything), Markdown (tables to read) and, in chart.py, a PNG.

The JSON is the record: every figure of every workload for both kinds, the ratios
pyzk/ZooKeeper, what the machine and the settings were. The Markdown is made from the
same dict, so a result file can be re-rendered later (``python -m bench --render``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.core import Metric
from bench.runner import Outcome

SCHEMA = "pyzk-bench/1"


def to_dict(
    meta: dict[str, Any],
    outcomes: list[Outcome],
    skipped: list[dict[str, str]],
    profiles: list[dict[str, Any]],
    notes: list[str],
) -> dict[str, Any]:
    results = []
    for o in outcomes:
        w = o.workload
        results.append(
            {
                "workload": w.name,
                "group": w.group,
                "topology": w.topology,
                "description": w.description,
                "params": o.params,
                "order": o.order,
                "loadavg_before": round(o.loadavg_before, 2),
                "wall_s": round(o.wall_s, 1),
                "headline": [
                    {
                        "key": m.key,
                        "label": m.label,
                        "unit": m.unit,
                        "better": m.better,
                        "target": m.target,
                    }
                    for m in w.headline
                ],
                **{kind: figures for kind, figures in o.servers.items()},
                "ratios": o.ratios,
            }
        )
    return {
        "schema": SCHEMA,
        "meta": meta,
        "notes": notes,
        "results": results,
        "skipped": skipped,
        "profiles": profiles,
    }


def failed_workloads(doc: dict[str, Any]) -> list[str]:
    """Workloads where either kind reported an error."""
    return [
        r["workload"]
        for r in doc["results"]
        if any("error" in r.get(k, {}) for k in ("zookeeper", "pyzk"))
    ]


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, list):
        return ", ".join(fmt(x) for x in v)
    return str(v)


def _not_comparable(r: dict[str, Any], key: str) -> str | None:
    for kind in ("zookeeper", "pyzk"):
        why = r.get(kind, {}).get("not_comparable", {}).get(key)
        if why:
            return f"not comparable: {kind} {why}"
    return None


def _verdict(m: dict[str, Any], ratio: float | None) -> str:
    if ratio is None or m["target"] is None:
        return ""
    metric = Metric(m["key"], m["label"], m["unit"], m["better"], m["target"])
    sign = "≥" if m["better"] == "higher" else "≤"
    return f"{sign} {m['target']:g}: " + ("met" if metric.meets(ratio) else "**not met**")


def _with_spread(figs: dict[str, Any], key: str) -> str:
    """``1,234`` or, over repeats, ``1,234 (1,100-1,300)``: median (min-max)."""
    spread = figs.get("spread", {}).get(key)
    text = fmt(figs.get(key))
    return f"{text} <sub>({fmt(spread[0])}-{fmt(spread[1])})</sub>" if spread else text


def _headline_rows(doc: dict[str, Any]) -> list[str]:
    rows = [
        "| workload | figure | ZooKeeper | pyzk | pyzk/ZK | better | target (issue 9) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in doc["results"]:
        zk, pz = r.get("zookeeper", {}), r.get("pyzk", {})
        for m in r["headline"]:
            ratio = r["ratios"].get(m["key"])
            zv = "error" if "error" in zk else _with_spread(zk, m["key"])
            pv = "error" if "error" in pz else _with_spread(pz, m["key"])
            why = _not_comparable(r, m["key"])
            rows.append(
                f"| {r['workload']} | {m['label']} ({m['unit']}) | {zv} | {pv} | "
                f"{fmt(ratio) if ratio is not None else '-'} | {m['better']} | "
                f"{why or _verdict(m, ratio)} |"
            )
    return rows


def _detail(r: dict[str, Any]) -> list[str]:
    zk, pz = r.get("zookeeper", {}), r.get("pyzk", {})
    out = [
        f"### {r['workload']}",
        "",
        f"{r['description']}. Order: {' then '.join(r['order'])}; load average before: "
        f"{r['loadavg_before']}.",
        "",
    ]
    for kind, figs in (("ZooKeeper", zk), ("pyzk", pz)):
        if "error" in figs:
            out += [f"{kind} failed: `{figs['error']}`", ""]
    hidden = ("error", "traceback", "spread", "not_comparable")
    keys = [k for k in {**zk, **pz} if k not in hidden]
    if keys:
        out += ["| figure | ZooKeeper | pyzk | pyzk/ZK |", "|---|---:|---:|---:|"]
        for k in keys:
            ratio = r["ratios"].get(k)
            out.append(
                f"| {k} | {fmt(zk.get(k))} | {fmt(pz.get(k))} | "
                f"{fmt(ratio) if ratio is not None else ''} |"
            )
        out.append("")
    return out


def _profiles(doc: dict[str, Any]) -> list[str]:
    out = []
    for p in doc["profiles"]:
        out += [
            f"### pyzk under {p['workload']}",
            "",
            f"Flame graph: [{p['svg']}]({p['svg']}). {p['samples']:,} samples at "
            f"{p['rate']} Hz over {p['seconds']} s; the process was on CPU in "
            f"{p['busy_pct']:.0f}% of them; throughput while profiled "
            f"{fmt(p.get('ops_per_sec'))} ops/s.",
            "",
            "| function (self time) | % of samples | | function (inclusive) | % |",
            "|---|---:|---|---|---:|",
        ]
        for (fn_s, pct_s), (fn_i, pct_i) in zip(p["top_self"], p["top_inclusive"], strict=False):
            out.append(f"| `{fn_s}` | {pct_s:.1f} | | `{fn_i}` | {pct_i:.1f} |")
        out.append("")
    return out


def _disk(d: dict[str, Any]) -> str:
    return f"{d['device']} ({d['fstype']}, mounted on {d['mount']}), under {d['path']}"


def to_markdown(doc: dict[str, Any], png_name: str) -> str:
    meta = doc["meta"]
    lines = [
        f"# pyzk and Apache ZooKeeper, side by side: {meta['name']}",
        "",
        f"Run {meta['started']} ({meta['preset']} run, {meta['wall_s']:.0f} s) on "
        f"{meta['machine']['cpus']} CPUs ({meta['machine']['cpu_model']}), "
        f"{meta['machine']['mem_gb']} GB, {meta['machine']['kernel']}. "
        f"ZooKeeper {meta['versions'].get('zookeeper', '?')} on "
        f"{meta['versions'].get('java', '?')}; pyzk {meta['versions'].get('pyzk', '?')} on "
        f"Python {meta['versions'].get('python', '?')}.",
        "",
        f"Settings (one zoo.cfg for both): {meta['settings_text']}. Data of both on "
        f"{_disk(meta['disk'])}. Pinning: {meta['pinning']}.",
        "",
        f"![chart]({png_name})",
        "",
        "## Read this first",
        "",
        *[f"- {n}" for n in doc["notes"]],
        "",
        "## Headline figures",
        "",
        "Ratios are pyzk / ZooKeeper: above 1 means pyzk's figure is larger. "
        "Whether that is good is in the *better* column. "
        + (
            f"Workloads on shared servers ran {meta['plan']['repeats']} back-to-back pairs: "
            "figures are medians, with the range over the pairs in brackets; the ratio is "
            "of the medians."
            if meta["plan"].get("repeats", 1) > 1
            else ""
        ),
        "",
        *_headline_rows(doc),
        "",
    ]
    if doc["skipped"]:
        lines += ["## Skipped", ""]
        lines += [f"- {s['workload']}: {s['reason']}" for s in doc["skipped"]]
        lines.append("")
    if doc["profiles"]:
        lines += ["## Where pyzk spends its time", "", *_profiles(doc)]
    lines += ["## All figures", ""]
    for r in doc["results"]:
        lines += _detail(r)
    return "\n".join(lines).rstrip() + "\n"
