"""The documents behind the pages: overview, experiments, models, monitoring and hardware (alerts
are in ``alerts``). Each is plain JSON, served as is by ``/api/<page>`` and rendered by
``render``; a section whose store is down says so (``status: down``) and the rest still shows.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import quote

from efficientai_assets.dashboard.alerts import alerts
from efficientai_assets.dashboard.cache import StoreDown
from efficientai_assets.dashboard.data import (
    HEAVY_ASSETS,
    DashboardData,
    clean,
    down_section,
    iso,
    section,
)
from efficientai_assets.dashboard.mlflow_reader import RegistryView, VersionView
from efficientai_assets.names import CHALLENGER_ALIAS, CHAMPION_ALIAS, DRIFT_ASSET

CURVE_READERS = 8
PAGE_TOKEN = re.compile(r"^[A-Za-z0-9+/=_-]{1,4000}$")
UNATTRIBUTED = "(unattributed)"
# The run tags that say on what a run trained: device, BLAS, the gate, the machine at start/end.
HARDWARE_CONTEXT = (
    "training.device",
    "blas.source",
    "gate.decision",
    "gate.held_seconds",
    "gate.reason",
    "hardware.start.platform",
    "hardware.start.chip",
    "hardware.start.logical_cpus",
    "hardware.start.memory_total_bytes",
    "hardware.start.thermal_state",
    "hardware.start.psi_cpu.some_avg10",
    "hardware.end.thermal_state",
    "hardware.end.psi_cpu.some_avg10",
)


class UnknownNamespace(LookupError):
    """A page was asked for a namespace the stores do not hold."""


def _seat(version: VersionView | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version": version.version,
        "val_accuracy": version.val_accuracy,
        "quality": version.tags.get("efficientai.quality_check", ""),
    }


def _live(data: DashboardData, namespace: str) -> dict[str, Any]:
    records = data.deployments(namespace)
    if not records:
        return {"deployment": None}
    now = records[-1]
    return {
        "deployment": {
            "deployment_id": now.deployment_id,
            "action": now.action,
            "mode": now.mode,
            "champion_version": now.champion.model_version,
            "bento": now.champion.bento_tag,
            "canary_version": now.canary.model_version if now.canary else None,
            "canary_bento": now.canary.bento_tag if now.canary else None,
            "canary_share": now.canary_share,
            "shadow": now.mode == "shadow",
            "created_at": now.created_at,
            "requested_by": now.requested_by,
            "reason": now.reason,
        }
    }


def _report_url(data: DashboardData, namespace: str, day: str, name: str) -> str | None:
    """Where the dashboard serves the namespace's report of ``day``, when the file is there."""
    if data.files.report_path(namespace, day, name) is None:
        return None
    return f"/reports/{quote(namespace, safe='')}/{day}/{name}"


def drift_days(data: DashboardData) -> dict[str, list[dict[str, Any]]]:
    """``namespace → days`` (oldest first), the newest report of each day."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[dict[str, Any]]] = {}
    for event in data.materializations(DRIFT_ASSET):
        namespace = data.namespace_of(event) or UNATTRIBUTED
        day = event.partition or ""
        if (namespace, day) in seen:
            continue
        seen.add((namespace, day))
        meta = event.metadata
        names = meta.get("drifted_column_names")
        out.setdefault(namespace, []).append(
            {
                "day": day,
                "drift_share": meta.get("drift_share"),
                "threshold": meta.get("drift_share_threshold"),
                "dataset_drift": meta.get("dataset_drift"),
                "drifted_count": meta.get("drifted_count"),
                "columns_tested": meta.get("columns_tested"),
                "drifted_columns": names if isinstance(names, list) else [],
                "champion_version": meta.get("champion_version"),
                "champion_accuracy": meta.get("champion_accuracy"),
                "current_rows": meta.get("current_rows"),
                "run_id": event.run_id,
                "materialized_at": iso(event.timestamp),
                "report_url": _report_url(data, namespace, day, "drift.html"),
                "json_url": _report_url(data, namespace, day, "drift.json"),
            }
        )
    for days in out.values():
        days.sort(key=lambda d: d["day"])
    return out


def gate_events(data: DashboardData) -> list[dict[str, Any]]:
    """The gate's decisions at the start of heavy steps (go) and its holds, oldest first."""
    events = []
    for asset in HEAVY_ASSETS:
        for kind, found in (
            ("decision", data.materializations(asset)),
            ("hold", data.observations(asset)),
        ):
            for event in found:
                meta = event.metadata
                if "gate.decision" not in meta:
                    continue
                events.append(
                    {
                        "at": iso(event.timestamp),
                        "timestamp": event.timestamp,
                        "namespace": data.namespace_of(event),
                        "asset": asset,
                        "kind": kind,
                        "decision": meta.get("gate.decision"),
                        "state": meta.get("gate.state"),
                        "level": meta.get("gate.level"),
                        "reason": meta.get("gate.reason"),
                        "held_seconds": meta.get("gate.held_seconds") or 0.0,
                        "thermal_state": meta.get("hardware.start.thermal_state"),
                        "run_id": event.run_id,
                    }
                )
    return sorted(events, key=lambda e: e["timestamp"])


def overview(data: DashboardData) -> dict[str, Any]:
    listing = data.page(("alerts",), lambda: clean(alerts(data)))
    try:
        days: dict[str, list[dict[str, Any]]] | StoreDown = drift_days(data)
        gates: list[dict[str, Any]] | StoreDown = gate_events(data)
    except StoreDown as error:
        days = gates = error
    rows: list[dict[str, Any]] = []
    for namespace in data.namespaces():

        def registry_part(ns: str = namespace) -> dict[str, Any]:
            registry = data.registry(ns)
            return {
                "model_name": registry.model_name,
                "versions": len(registry.versions),
                "champion": _seat(registry.by_alias(CHAMPION_ALIAS)),
                "challenger": _seat(registry.by_alias(CHALLENGER_ALIAS)),
            }

        def dagster_part(ns: str = namespace) -> dict[str, Any]:
            if isinstance(days, StoreDown):
                raise days
            assert not isinstance(gates, StoreDown)
            mine = days.get(ns, [])
            last_gate = next((g for g in reversed(gates) if g["namespace"] == ns), None)
            return {"last_drift": mine[-1] if mine else None, "last_gate": last_gate}

        rows.append(
            {
                "namespace": namespace,
                "registry": section(registry_part),
                "live": section(partial(_live, data, namespace)),
                "monitoring": section(dagster_part),
                "open_alerts": sum(
                    1
                    for a in listing.get("alerts", [])
                    if a["open"] and a["namespace"] == namespace
                ),
            }
        )
    totals = {
        "namespaces": len(rows),
        "model_versions": sum(r["registry"].get("versions", 0) for r in rows),
        "live_deployments": sum(
            1 for r in rows if r["live"].get("status") == "up" and r["live"].get("deployment")
        ),
        "drifted_days": sum(
            1
            for days_of in (days.values() if isinstance(days, dict) else [])
            for d in days_of
            if d["dataset_drift"]
        ),
        "open_alerts": sum(1 for a in listing.get("alerts", []) if a["open"]),
        "open_alerts_unattributed": sum(
            1 for a in listing.get("alerts", []) if a["open"] and a["namespace"] is None
        ),
    }
    return {"namespaces": rows, "totals": totals, "alerts_status": listing["status"]}


def experiments(
    data: DashboardData, namespace: str | None, page_token: str | None
) -> dict[str, Any]:
    known = data.namespaces()
    chosen = namespace or (known[0] if known else "")
    if namespace and namespace not in known:
        raise UnknownNamespace(f"unknown namespace {namespace!r}; known: {', '.join(known)}")
    if page_token and not PAGE_TOKEN.match(page_token):
        raise ValueError("page_token is not a token this dashboard handed out")
    settings = data.settings

    def read() -> dict[str, Any]:
        if not chosen:
            return {"runs": [], "next_page_token": None}
        key = ("runs", chosen, page_token or "")
        runs, token = data.cached(
            key, lambda: data.mlflow.runs_page(chosen, page_token, settings.page_size)
        )
        out = []
        # One metric history per run and metric: read the page's runs side by side.
        with ThreadPoolExecutor(max_workers=CURVE_READERS) as pool:
            histories = list(
                pool.map(
                    lambda run: data.cached(
                        ("curves", run["run_id"]), partial(data.mlflow.curves, run["run_id"])
                    ),
                    runs,
                )
            )
        for run, curves in zip(runs, histories, strict=True):
            tags = run["tags"]
            out.append(
                {
                    **{k: run[k] for k in ("run_id", "name", "experiment", "status", "metrics")},
                    "params": run["params"],
                    "started_at": iso(run["start_ms"] / 1000 if run["start_ms"] else None),
                    "duration_s": (run["end_ms"] - run["start_ms"]) / 1000
                    if run["end_ms"] and run["start_ms"]
                    else None,
                    "hardware": {k: tags[k] for k in HARDWARE_CONTEXT if k in tags},
                    "curves": curves,
                    "mlflow_url": f"{settings.mlflow_ui_url}/#/experiments/"
                    f"{run['experiment_id']}/runs/{run['run_id']}",
                }
            )
        return {"runs": out, "next_page_token": token}

    return {"namespace": chosen, "namespaces": known, "page_token": page_token, **section(read)}


def _lineage(data: DashboardData, registry: RegistryView, version: VersionView) -> dict[str, Any]:
    settings = data.settings
    tags = version.to_dict()
    run_id, dagster_run = tags["run_id"], tags["dagster_run_id"]
    try:
        in_store: bool | None = tags["bento_tag"] in data.bentos() if tags["bento_tag"] else None
    except StoreDown:
        in_store = None
    model = quote(registry.model_name, safe="")
    return {
        "mlflow_run": {"id": run_id, "url": f"{settings.mlflow_ui_url}/#/runs/{run_id}"}
        if run_id
        else None,
        "data_md5": tags["data_md5"],
        "git_sha": tags["git_sha"],
        "dagster_run": {"id": dagster_run, "url": f"{settings.dagster_ui_url}/runs/{dagster_run}"}
        if dagster_run
        else None,
        "bento": {"tag": tags["bento_tag"], "in_store": in_store} if tags["bento_tag"] else None,
        "mlflow_url": f"{settings.mlflow_ui_url}/#/models/{model}/versions/{version.version}",
    }


def models(data: DashboardData) -> dict[str, Any]:
    rows = []
    for namespace in data.namespaces():

        def read(ns: str = namespace) -> dict[str, Any]:
            registry = data.registry(ns)
            return {
                "model_name": registry.model_name,
                "aliases": registry.aliases,
                "versions": [
                    {
                        **v.to_dict(),
                        "created_at": iso(v.created_ms / 1000),
                        "lineage": _lineage(data, registry, v),
                    }
                    for v in registry.versions
                ],
            }

        rows.append({"namespace": namespace, **section(read)})
    return {"namespaces": rows}


def monitoring(data: DashboardData) -> dict[str, Any]:
    try:
        days = drift_days(data)
    except StoreDown as error:
        return {"namespaces": [], **down_section(error)}
    names = [*data.namespaces(), *([UNATTRIBUTED] if UNATTRIBUTED in days else [])]
    return {
        "status": "up",
        "namespaces": [{"namespace": ns, "days": days.get(ns, [])} for ns in names],
    }


def hardware(data: DashboardData) -> dict[str, Any]:
    def snapshot() -> dict[str, Any]:
        from resources.hardware.resource import HardwareResource

        snap = HardwareResource().snapshot()
        return {
            "readings": snap.to_dict(),
            "summary": snap.summary(),
            "taken_at": iso(snap.taken_at),
        }

    throughput = []
    for namespace in data.namespaces():

        def read(ns: str = namespace) -> dict[str, Any]:
            registry = data.registry(ns)
            runs = data.cached(
                ("run-metrics", ns),
                lambda: data.mlflow.run_metrics(ns, [v.run_id for v in registry.versions]),
            )
            points = []
            for version in sorted(registry.versions, key=lambda v: int(v.version)):
                run = runs.get(version.run_id)
                if run is None or "samples_per_second" not in run["metrics"]:
                    continue
                points.append(
                    {
                        "version": version.version,
                        "samples_per_second": run["metrics"]["samples_per_second"],
                        "device": run["tags"].get("training.device", ""),
                        "blas": run["tags"].get("blas.source", ""),
                        "batch_size": run["tags"].get("training.batch_size", ""),
                    }
                )
            return {"versions": points}

        throughput.append({"namespace": namespace, **section(read)})
    return {
        "snapshot": data.cached(("snapshot",), lambda: section(snapshot)),
        "gate": section(lambda: {"events": gate_events(data)}),
        "hold_alert_seconds": data.settings.hold_alert_seconds,
        "throughput": throughput,
    }
