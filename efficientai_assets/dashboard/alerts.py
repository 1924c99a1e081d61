"""Alerts: what needs a look, read from the stores (the dashboard keeps no state of its own).

Kinds, and when one is *open* (still true now) rather than history:

- ``quality``: a candidate failed its blocking quality check — open while that version is its
  namespace's challenger;
- ``drift``: a drift report's WARN check failed — open while that day is its namespace's
  newest report;
- ``hold``: the hardware gate held a heavy step at least ``hold_alert_seconds`` — open while
  the run has not finished;
- ``failed_run``: a Dagster run failed — open until a later run over the same assets succeeds;
- ``retraining``: a drift-triggered retraining ended (promoted / rejected / failed) — a
  rejected or failed one is open while it is its namespace's newest retraining.
"""

from __future__ import annotations

from typing import Any

from efficientai_assets.dashboard.cache import StoreDown
from efficientai_assets.dashboard.data import (
    HEAVY_ASSETS,
    DashboardData,
    down_section,
    iso,
)
from efficientai_assets.names import (
    AUDIT_ASSET,
    BENTO_ASSET,
    CANDIDATE_ASSET,
    CHALLENGER_ALIAS,
    CHAMPION_ASSET,
    DATASET_SPLITS_ASSET,
    DEPLOYMENT_ASSET,
    DRIFT_ASSET,
    DRIFT_CHECK,
    INFERENCE_BATCH_ASSET,
    QUALITY_CHECK,
    RAW_DATASET_ASSET,
)

FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
PIPELINE_ASSETS = (
    RAW_DATASET_ASSET,
    DATASET_SPLITS_ASSET,
    CANDIDATE_ASSET,
    CHAMPION_ASSET,
    BENTO_ASSET,
    DEPLOYMENT_ASSET,
    INFERENCE_BATCH_ASSET,
    DRIFT_ASSET,
)


def _alert(
    kind: str,
    severity: str,
    namespace: str | None,
    at: float | None,
    title: str,
    detail: str,
    is_open: bool,
    run_id: str = "",
    dagster_ui: str = "",
) -> dict[str, Any]:
    return {
        "kind": kind,
        "severity": severity,
        "namespace": namespace,
        "at": iso(at),
        "timestamp": at,
        "title": title,
        "detail": detail,
        "open": is_open,
        "run_id": run_id,
        "run_url": f"{dagster_ui}/runs/{run_id}" if run_id and dagster_ui else None,
    }


def _challenger(data: DashboardData, namespace: str | None) -> str | None:
    if namespace is None:
        return None
    try:
        return data.registry(namespace).aliases.get(CHALLENGER_ALIAS)
    except StoreDown:
        return None


def quality_alerts(data: DashboardData) -> list[dict[str, Any]]:
    ui = data.settings.dagster_ui_url
    out = []
    for check in data.checks(CANDIDATE_ASSET, QUALITY_CHECK):
        if check.passed:
            continue
        namespace = data.namespace_of_run(check.run_id)
        version = str(check.metadata.get("model_version") or "")
        is_open = bool(version) and _challenger(data, namespace) == version
        out.append(
            _alert(
                "quality",
                "error",
                namespace,
                check.timestamp,
                f"version {version or '?'} failed its quality check",
                check.description,
                is_open,
                check.run_id,
                ui,
            )
        )
    return out


def drift_alerts(data: DashboardData) -> list[dict[str, Any]]:
    ui = data.settings.dagster_ui_url
    newest: dict[str | None, str] = {}
    reports = data.materializations(DRIFT_ASSET)
    run_namespace = {e.run_id: data.namespace_of(e) for e in reports}
    for event in reports:
        ns = run_namespace[event.run_id]
        if event.partition and event.partition > newest.get(ns, ""):
            newest[ns] = event.partition
    out = []
    for check in data.checks(DRIFT_ASSET, DRIFT_CHECK):
        if check.passed:
            continue
        namespace = run_namespace.get(check.run_id) or data.namespace_of_run(check.run_id)
        day = check.partition or next(
            (e.partition for e in reports if e.run_id == check.run_id), None
        )
        out.append(
            _alert(
                "drift",
                "warning",
                namespace,
                check.timestamp,
                f"drift on {day or '?'}",
                check.description,
                bool(day) and newest.get(namespace) == day,
                check.run_id,
                ui,
            )
        )
    return out


def hold_alerts(data: DashboardData) -> list[dict[str, Any]]:
    """Holds of at least the threshold: the longest wait per run and heavy asset, whether the
    step is still waiting (observations) or went after waiting (materialization)."""
    ui, threshold = data.settings.dagster_ui_url, data.settings.hold_alert_seconds
    longest: dict[tuple[str, str], tuple[float, Any]] = {}
    for asset in HEAVY_ASSETS:
        for event in [*data.observations(asset), *data.materializations(asset)]:
            held = event.metadata.get("gate.held_seconds")
            if not isinstance(held, int | float) or held < threshold:
                continue
            key = (event.run_id, asset)
            if key not in longest or held > longest[key][0]:
                longest[key] = (float(held), event)
    if not longest:
        return []
    status = {run.run_id: run.status for run in data.recent_runs()}
    out = []
    for (run_id, asset), (held, event) in longest.items():
        reason = str(event.metadata.get("gate.reason") or "")
        out.append(
            _alert(
                "hold",
                "warning",
                data.namespace_of(event),
                event.timestamp,
                f"{asset} held {held:.0f}s by the hardware gate",
                reason,
                status.get(run_id) not in FINISHED,
                run_id,
                ui,
            )
        )
    return out


def failed_run_alerts(data: DashboardData) -> list[dict[str, Any]]:
    """A failed run stays open until its failed asset materializes later (or, when the failure
    names no asset, until a later run over the same assets succeeds)."""
    ui = data.settings.dagster_ui_url
    succeeded = [r for r in data.recent_runs() if r.status == "SUCCESS"]
    out = []
    for run in data.failed_runs():
        ended = run.end or run.created
        if run.failed_step in PIPELINE_ASSETS:
            fixed = any(e.timestamp > ended for e in data.materializations(run.failed_step))
        else:
            covered = set(run.assets)
            fixed = any(
                later.created > run.created and covered and covered <= set(later.assets)
                for later in succeeded
            )
        what = run.failed_step or ", ".join(run.assets) or run.job_name
        out.append(
            _alert(
                "failed_run",
                "error",
                data.namespace_of_run(run.run_id),
                ended,
                f"{what} failed",
                run.error or "see the run's logs",
                not fixed,
                run.run_id,
                ui,
            )
        )
    return out


def _audited_namespace(data: DashboardData, meta: dict[str, Any], run_id: str) -> str | None:
    """The namespace an audit record names; records from before they named one: the namespace
    of the retraining run's own materializations."""
    named = meta.get("namespace")
    return str(named) if named else data.namespace_of_run(run_id)


def retraining_alerts(data: DashboardData) -> list[dict[str, Any]]:
    ui = data.settings.dagster_ui_url
    out = []
    latest: dict[str | None, float] = {}
    audits = data.materializations(AUDIT_ASSET)
    for event in audits:
        run_id = str(event.metadata.get("run_id") or event.run_id)
        latest_ns = _audited_namespace(data, event.metadata, run_id)
        latest[latest_ns] = max(latest.get(latest_ns, 0.0), event.timestamp)
    for event in audits:
        meta = event.metadata
        run_id = str(meta.get("run_id") or event.run_id)
        namespace = _audited_namespace(data, meta, run_id)
        outcome = str(meta.get("outcome") or "unknown")
        severity = {"promoted": "info", "rejected": "warning"}.get(outcome, "error")
        title = f"retraining {outcome}"
        if outcome == "promoted" and meta.get("new_champion"):
            title += (
                f": version {meta.get('new_champion')} replaced {meta.get('replaced_champion')}"
            )
        out.append(
            _alert(
                "retraining",
                severity,
                namespace,
                event.timestamp,
                title,
                str(meta.get("reason") or ""),
                severity != "info" and latest.get(namespace) == event.timestamp,
                run_id,
                ui,
            )
        )
    return out


def alerts(data: DashboardData) -> dict[str, Any]:
    """Every alert, open ones first, then by severity and newest first; counts by kind."""
    try:
        found = [
            *quality_alerts(data),
            *drift_alerts(data),
            *hold_alerts(data),
            *failed_run_alerts(data),
            *retraining_alerts(data),
        ]
    except StoreDown as error:
        return {"alerts": [], "counts": {}, **down_section(error)}
    found.sort(
        key=lambda a: (not a["open"], SEVERITY_ORDER.get(a["severity"], 3), -(a["timestamp"] or 0))
    )
    counts: dict[str, dict[str, int]] = {}
    for alert in found:
        entry = counts.setdefault(alert["kind"], {"total": 0, "open": 0})
        entry["total"] += 1
        entry["open"] += int(alert["open"])
    return {"status": "up", "alerts": found, "counts": counts}
