"""Plotly figures (``{"data": [...], "layout": {...}}``) built from the page documents.

The figures are plain JSON that Plotly.js draws in the browser: every number in a chart is the
number in the page's JSON document, which is the number in the store.
"""

from __future__ import annotations

from typing import Any

Figure = dict[str, Any]


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "height": 340,
        "legend": {"orientation": "h"},
        **extra,
    }


def overview_accuracy(document: dict[str, Any]) -> Figure:
    """Champion and challenger validation accuracy per namespace."""
    names, data = [], []
    rows = [r for r in document["namespaces"] if r["registry"].get("status") == "up"]
    names = [r["namespace"] for r in rows]
    for seat in ("champion", "challenger"):
        values = [(r["registry"].get(seat) or {}).get("val_accuracy") for r in rows]
        data.append({"type": "bar", "name": seat, "x": names, "y": values})
    return {
        "data": data,
        "layout": _layout("Validation accuracy", "namespace", "accuracy", barmode="group"),
    }


def experiment_curves(document: dict[str, Any], metric: str = "val_accuracy") -> Figure:
    """``metric`` per epoch, one line per run of the page."""
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": run["name"] or run["run_id"][:8],
            "x": run["curves"][metric]["steps"],
            "y": run["curves"][metric]["values"],
        }
        for run in document.get("runs", [])
        if metric in run["curves"]
    ]
    return {"data": data, "layout": _layout(f"{metric} per epoch", "epoch", metric)}


def model_accuracy(document: dict[str, Any]) -> Figure:
    """Validation accuracy of every registered version, per namespace; champions marked."""
    data = []
    for row in document["namespaces"]:
        if row.get("status") != "up" or not row["versions"]:
            continue
        versions = sorted(row["versions"], key=lambda v: int(v["version"]))
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": row["namespace"],
                "x": [int(v["version"]) for v in versions],
                "y": [v["val_accuracy"] for v in versions],
                "text": [", ".join(v["aliases"]) for v in versions],
                "marker": {"size": [14 if "champion" in v["aliases"] else 8 for v in versions]},
            }
        )
    return {
        "data": data,
        "layout": _layout("Validation accuracy by version", "version", "accuracy"),
    }


def drift_share(document: dict[str, Any]) -> Figure:
    """Drift share per day per namespace, with each namespace's threshold as a dashed line."""
    data: list[dict[str, Any]] = []
    for row in document.get("namespaces", []):
        days = row["days"]
        if not days:
            continue
        x = [d["day"] for d in days]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{row['namespace']} drift share",
                "x": x,
                "y": [d["drift_share"] for d in days],
            }
        )
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{row['namespace']} threshold",
                "x": x,
                "y": [d["threshold"] for d in days],
                "line": {"dash": "dash"},
            }
        )
    return {
        "data": data,
        "layout": _layout("Drift share per day", "day", "share of drifted columns"),
    }


def gate_timeline(document: dict[str, Any]) -> Figure:
    """The gate's decisions (go) and holds over time; height is how long the step had waited."""
    events = document["gate"].get("events", []) if document["gate"].get("status") == "up" else []
    data = []
    for kind, symbol in (("decision", "circle"), ("hold", "x")):
        chosen = [e for e in events if e["kind"] == kind]
        if chosen:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": "go" if kind == "decision" else "hold",
                    "x": [e["at"] for e in chosen],
                    "y": [e["held_seconds"] for e in chosen],
                    "text": [
                        f"{e['namespace'] or '?'} {e['asset']}: {e['reason']}" for e in chosen
                    ],
                    "marker": {"symbol": symbol, "size": 11},
                }
            )
    return {"data": data, "layout": _layout("Hardware gate over time", "time", "held (s)")}


def throughput(document: dict[str, Any]) -> Figure:
    """Training throughput (samples/s, last epoch) of every version, per namespace."""
    data = [
        {
            "type": "bar",
            "name": row["namespace"],
            "x": [f"v{p['version']}" for p in row["versions"]],
            "y": [p["samples_per_second"] for p in row["versions"]],
        }
        for row in document["throughput"]
        if row.get("status") == "up" and row["versions"]
    ]
    return {
        "data": data,
        "layout": _layout("Training throughput", "version", "samples / s", barmode="group"),
    }


def alert_counts(document: dict[str, Any]) -> Figure:
    """Alerts by kind, open and total."""
    counts = document.get("counts", {})
    kinds = sorted(counts)
    data = [
        {"type": "bar", "name": "open", "x": kinds, "y": [counts[k]["open"] for k in kinds]},
        {"type": "bar", "name": "total", "x": kinds, "y": [counts[k]["total"] for k in kinds]},
    ]
    return {"data": data, "layout": _layout("Alerts by kind", "kind", "alerts", barmode="group")}
