"""Each page's HTML from its JSON document (``pages`` / ``alerts``): tables, charts and, where a
store is down, a banner in place of the section it feeds."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from efficientai_assets.dashboard import charts
from efficientai_assets.dashboard.html import Charts, down, esc, link, number, page, table


def _seat(seat: dict[str, Any] | None) -> str:
    if not seat:
        return "—"
    return f"v{esc(seat['version'])} · {number(seat['val_accuracy'])} · {esc(seat['quality'])}"


def _live(section: dict[str, Any]) -> str:
    banner = down(section, "live")
    if banner:
        return banner
    live = section.get("deployment")
    if not live:
        return "not deployed"
    text = f"#{esc(live['deployment_id'])} {esc(live['bento'])}"
    if live["shadow"]:
        text += f" + v{esc(live['canary_version'])} in shadow"
    elif live["canary_version"]:
        text += f" + canary v{esc(live['canary_version'])} ({live['canary_share']:.0%})"
    return text


def overview(document: dict[str, Any]) -> str:
    chart = Charts()
    totals = document["totals"]
    cards = "".join(
        f'<div class="card" id="total-{esc(k)}"><b>{esc(v)}</b>{esc(k.replace("_", " "))}</div>'
        for k, v in totals.items()
    )
    rows = []
    for row in document["namespaces"]:
        registry, monitoring = row["registry"], row["monitoring"]
        drift = monitoring.get("last_drift") or {}
        gate = monitoring.get("last_gate") or {}
        rows.append(
            [
                f'<span class="ns">{esc(row["namespace"])}</span>',
                down(registry, "registry") or _seat(registry.get("champion")),
                down(registry, "registry") or _seat(registry.get("challenger")),
                _live(row["live"]),
                down(monitoring, "monitoring")
                or (
                    f"{number(drift.get('drift_share'), 3)} on {esc(drift.get('day'))}"
                    if drift
                    else "—"
                ),
                down(monitoring, "monitoring")
                or (f"{esc(gate.get('decision'))}: {esc(gate.get('reason'))}" if gate else "—"),
                f'<span class="{"open" if row["open_alerts"] else "ok"}">{row["open_alerts"]}</span>',
            ]
        )
    headers = [
        "namespace",
        "champion",
        "challenger",
        "live",
        "last drift share",
        "last gate",
        "open alerts",
    ]
    body = (
        f'<div class="cards">{cards}</div>'
        + table(headers, rows, "no project namespace in this home yet: run `make run`")
        + chart(charts.overview_accuracy(document), "accuracy")
    )
    return page("Overview", "/", body)


def experiments(document: dict[str, Any]) -> str:
    chart = Charts()
    chooser = " · ".join(
        link("/experiments?" + urlencode({"namespace": ns}), ns) for ns in document["namespaces"]
    )
    body = f"<p>Namespace: {chooser or '—'} (showing <b>{esc(document['namespace'])}</b>)</p>"
    banner = down(document, "runs")
    if banner:
        return page("Experiments", "/experiments", body + banner)
    rows = []
    for run in document["runs"]:
        hw = run["hardware"]
        context = ", ".join(
            f"{esc(k)}={esc(hw[k])}"
            for k in (
                "training.device",
                "hardware.start.logical_cpus",
                "hardware.start.thermal_state",
                "hardware.end.thermal_state",
                "blas.source",
                "gate.decision",
            )
            if k in hw
        )
        rows.append(
            [
                link(run["mlflow_url"], run["name"] or run["run_id"][:8]),
                esc(run["experiment"]),
                esc(run["status"]),
                esc(run["started_at"]),
                number(run["duration_s"], 1),
                number(run["metrics"].get("val_accuracy")),
                context or "—",
            ]
        )
    more = ""
    if document.get("next_page_token"):
        query = urlencode(
            {"namespace": document["namespace"], "page_token": document["next_page_token"]}
        )
        more = f"<p>{link('/experiments?' + query, 'next page →')}</p>"
    body += (
        chart(charts.experiment_curves(document, "val_accuracy"), "val-accuracy")
        + chart(charts.experiment_curves(document, "train_loss"), "train-loss")
        + table(
            ["run", "experiment", "status", "started", "seconds", "val_accuracy", "hardware"], rows
        )
        + more
    )
    return page("Experiments", "/experiments", body)


def _lineage(lineage: dict[str, Any]) -> str:
    parts = []
    if lineage["mlflow_run"]:
        parts.append("run " + link(lineage["mlflow_run"]["url"], lineage["mlflow_run"]["id"][:8]))
    parts.append(f"data {esc(lineage['data_md5'][:12] if lineage['data_md5'] else '')}")
    parts.append(f"git {esc(lineage['git_sha'][:10] if lineage['git_sha'] else '')}")
    if lineage["dagster_run"]:
        parts.append(
            "dagster " + link(lineage["dagster_run"]["url"], lineage["dagster_run"]["id"][:8])
        )
    if lineage["bento"]:
        stored = {True: "", False: " (not in store)", None: ""}[lineage["bento"]["in_store"]]
        parts.append(f"bento {esc(lineage['bento']['tag'])}{stored}")
    return " → ".join(parts)


def models(document: dict[str, Any]) -> str:
    chart = Charts()
    body = chart(charts.model_accuracy(document), "model-accuracy")
    for row in document["namespaces"]:
        body += f"<h2>{esc(row['namespace'])}</h2>"
        banner = down(row, "registry")
        if banner:
            body += banner
            continue
        rows = [
            [
                link(v["lineage"]["mlflow_url"], f"v{v['version']}"),
                esc(", ".join(v["aliases"])),
                esc(v["quality"]) + (" · rolled back" if v["rolled_back"] else ""),
                number(v["val_accuracy"]),
                esc(v["deployment_role"]),
                esc(v["created_at"]),
                _lineage(v["lineage"]),
            ]
            for v in row["versions"]
        ]
        body += table(
            [
                "version",
                "aliases",
                "quality",
                "val_accuracy",
                "role",
                "created",
                "lineage: run → data → git → Dagster run → bento",
            ],
            rows,
        )
    return page("Models", "/models", body)


def monitoring(document: dict[str, Any]) -> str:
    banner = down(document, "monitoring")
    if banner:
        return page("Monitoring", "/monitoring", banner)
    chart = Charts()
    body = chart(charts.drift_share(document), "drift-share")
    for row in document["namespaces"]:
        body += f"<h2>{esc(row['namespace'])}</h2>"
        rows = [
            [
                esc(d["day"]),
                number(d["drift_share"], 3),
                number(d["threshold"], 3),
                '<span class="open">drift</span>' if d["dataset_drift"] else "no drift",
                esc(
                    ", ".join(d["drifted_columns"][:12])
                    + (" …" if len(d["drifted_columns"]) > 12 else "")
                ),
                esc(d["champion_version"]),
                number(d["champion_accuracy"]),
                link(d["report_url"], "report") if d["report_url"] else "—",
            ]
            for d in reversed(row["days"])
        ]
        body += table(
            [
                "day",
                "drift share",
                "threshold",
                "verdict",
                "drifted columns",
                "champion",
                "champion accuracy",
                "Evidently",
            ],
            rows,
        )
    return page("Monitoring", "/monitoring", body)


def hardware(document: dict[str, Any]) -> str:
    chart = Charts()
    snap = document["snapshot"]
    body = "<h2>Now</h2>" + (
        down(snap, "snapshot")
        or f"<p>{esc(snap['summary'])} ({esc(snap['taken_at'])})</p>"
        + table(
            ["reading", "value"],
            [[esc(k), esc(v)] for k, v in snap["readings"].items() if v not in (None, [], "")],
        )
    )
    body += "<h2>Gate</h2>" + (down(document["gate"], "gate") or "")
    body += chart(charts.gate_timeline(document), "gate")
    events = document["gate"].get("events", [])
    body += table(
        ["when", "namespace", "asset", "decision", "held (s)", "reason"],
        [
            [
                esc(e["at"]),
                esc(e["namespace"]),
                esc(e["asset"]),
                esc(e["decision"] if e["kind"] == "decision" else "hold"),
                number(e["held_seconds"], 0),
                esc(e["reason"]),
            ]
            for e in reversed(events)
        ],
    )
    body += "<h2>Training throughput</h2>" + chart(charts.throughput(document), "throughput")
    for row in document["throughput"]:
        banner = down(row, f"throughput of {row['namespace']}")
        if banner:
            body += banner
    return page("Hardware", "/hardware", body)


def alerts(document: dict[str, Any]) -> str:
    banner = down(document, "alerts")
    if banner:
        return page("Alerts", "/alerts", banner)
    chart = Charts()
    rows = [
        [
            '<span class="open">open</span>' if a["open"] else "closed",
            esc(a["severity"]),
            esc(a["kind"]),
            esc(a["namespace"]),
            esc(a["at"]),
            esc(a["title"]),
            esc(a["detail"][:300]),
            link(a["run_url"], a["run_id"][:8]) if a["run_url"] else "—",
        ]
        for a in document["alerts"]
    ]
    body = chart(charts.alert_counts(document), "alerts") + table(
        ["state", "severity", "kind", "namespace", "when", "what", "detail", "run"],
        rows,
        "no alerts",
    )
    return page("Alerts", "/alerts", body)
