"""The retraining audit trail: what each drift-triggered run did — promoted, rejected (and why) or
failed (and where) — recorded once per run as a materialization of ``retraining_audit`` and a
line of ``retraining_audit.jsonl`` in the namespace's reports folder (``<home>/reports/`` for the
default namespace, ``<home>/reports/namespaces/<namespace>/`` for any other: the folder its day
reports are in). Each line names its ``namespace``; lines written before it did lack the field,
and :func:`read_audit_records` reads them as ``None``.

The drift sensor audits the runs it requested when they finish; the trail is the only record
that ties a champion change to the drift reports behind it. A run whose request named another
namespace (``TAG_RUN_NAMESPACE``) is that namespace's sensor's to audit: code locations of several
namespaces may share one Dagster instance.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from efficientai_assets.names import (
    AUDIT_ASSET,
    BENTO_ASSET,
    CANDIDATE_ASSET,
    CHAMPION_ASSET,
    RAW_DATASET_ASSET,
    TAG_DRIFT_PARTITIONS,
    TAG_DRIFT_REPORTS,
    TAG_DRIFT_SHARE,
    TAG_REPLACED_CHAMPION,
    TAG_RUN_NAMESPACE,
    TAG_TRIGGER,
    TRIGGER_DRIFT,
)
from resources.evidently.resource import EvidentlyResource
from resources.home import namespace_reports
from sensors.drift_cursor import Cursor, metadata_text

AUDIT_FILE = "retraining_audit.jsonl"
_FINISHED = (
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
)


def audit_path(evidently: EvidentlyResource, namespace: str) -> Path:
    """The trail of ``namespace``: in its reports folder, beside its day folders."""
    return namespace_reports(evidently.reports_dir, namespace) / AUDIT_FILE


def run_namespace(record: dg.RunRecord, default: str) -> str:
    """The namespace a drift-triggered run retrains: its request's tag, or ``default`` for runs
    requested before the tag existed (audited, as then, by the sensor that finds them)."""
    return record.dagster_run.tags.get(TAG_RUN_NAMESPACE) or default


def audit_run(instance: dg.DagsterInstance, record: dg.RunRecord, namespace: str) -> dict[str, Any]:
    """What a finished retraining run of ``namespace`` did: promoted, rejected (and why) or
    failed."""
    run = record.dagster_run
    kinds = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.STEP_FAILURE,
    }
    logs = instance.all_logs(run.run_id, of_type=kinds)
    materialized: dict[str, Mapping[str, Any]] = {}
    quality: tuple[bool, str] | None = None
    failures: list[str] = []
    for event in (entry.dagster_event for entry in logs if entry.dagster_event is not None):
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            materialized[materialization.asset_key.to_user_string()] = materialization.metadata
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.asset_key.to_user_string() == CANDIDATE_ASSET:
                quality = (evaluation.passed, evaluation.description or "")
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            failures.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    champion = materialized.get(CHAMPION_ASSET)
    if champion is not None and champion.get("promoted") is not None:
        promoted = bool(getattr(champion["promoted"], "value", champion["promoted"]))
        outcome = "promoted" if promoted else "rejected"
        reason = metadata_text(champion, "reason")
        new_champion = metadata_text(champion, "champion_version")
    elif quality is not None and not quality[0]:
        outcome, reason, new_champion = "rejected", f"quality check failed: {quality[1]}", ""
    else:
        outcome = "failed"
        reason = "; ".join(failures) or f"run ended {run.status.value}"
        new_champion = ""
    data = materialized.get(RAW_DATASET_ASSET, {})
    tags = run.tags
    return {
        "namespace": namespace,
        "run_id": run.run_id,
        "run_status": run.status.value,
        "run_key": tags.get("dagster/run_key", ""),
        "outcome": outcome,
        "reason": reason[:2000],
        "drift_partitions": tags.get(TAG_DRIFT_PARTITIONS, ""),
        "drift_reports": tags.get(TAG_DRIFT_REPORTS, ""),
        "drift_share": tags.get(TAG_DRIFT_SHARE, ""),
        "replaced_champion": tags.get(TAG_REPLACED_CHAMPION, ""),
        "new_champion": new_champion if outcome == "promoted" else "",
        "bento": metadata_text(materialized.get(BENTO_ASSET, {}), "bento_tag"),
        "training_data": metadata_text(data, "dvc_md5"),
        "new_rows": metadata_text(data, "new_rows"),
        "finished_at": record.end_time,
    }


def audit_finished_runs(
    instance: dg.DagsterInstance, cursor: Cursor, evidently: EvidentlyResource, namespace: str
) -> list[dg.AssetMaterialization]:
    """An audit materialization for each finished drift-triggered run of ``namespace`` not yet
    audited, each also a line of the namespace's trail (:func:`audit_path`)."""
    audited = cursor.audited if cursor.audited is not None else []
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={TAG_TRIGGER: TRIGGER_DRIFT}, statuses=list(_FINISHED)),
        limit=50,
    )
    out: list[dg.AssetMaterialization] = []
    for record in sorted(records, key=lambda r: r.create_timestamp.timestamp()):
        if record.dagster_run.run_id in audited or run_namespace(record, namespace) != namespace:
            continue
        entry = audit_run(instance, record, namespace)
        append_audit_record(audit_path(evidently, namespace), entry)
        out.append(
            dg.AssetMaterialization(
                asset_key=AUDIT_ASSET,
                description=f"{entry['outcome']}: {entry['reason'][:200]}",
                metadata={k: dg.MetadataValue.text(str(v)) for k, v in entry.items()},
            )
        )
        audited.append(record.dagster_run.run_id)
    cursor.audited = audited
    return out


def append_audit_record(path: Path, record: dict[str, Any]) -> Path:
    """Append one JSON line to ``path``, unless a line with the same ``run_id`` is already
    there: a retried or restarted sensor tick re-audits a run, and the trail must still hold it
    once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    run_id = record.get("run_id")
    torn = False
    if path.is_file():
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                torn = not line.endswith("\n")
                try:
                    existing = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash is not a record
                if run_id and isinstance(existing, dict) and existing.get("run_id") == run_id:
                    return path
    with path.open("a", encoding="utf-8") as handle:
        # After a torn last line, start on a fresh one so this record stays readable.
        handle.write(
            ("\n" if torn else "") + json.dumps(record, sort_keys=True, default=str) + "\n"
        )
    return path


def read_audit_records(path: Path) -> list[dict[str, Any]]:
    """Every record of the trail at ``path``, oldest first; a missing file is an empty trail, a
    torn line (a crash mid-write) is skipped, and a line from before records named their
    namespace reads with ``namespace`` None (the trail then held every namespace's runs)."""
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append({"namespace": None, **record})
    return out
