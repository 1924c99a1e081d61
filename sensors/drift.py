"""The drift → retrain sensor, with guardrails, and the retraining audit trail.

Each tick:

1. audits finished retraining runs it requested (outcome promoted / rejected / failed, the drift
   reports that triggered them, the champion they meant to replace) as materializations of the
   ``retraining_audit`` asset and lines in ``reports/retraining_audit.jsonl``;
2. reads new ``drift_report`` materializations after its cursor; a partition whose drift share
   reaches its threshold becomes *pending* (a later report of the same partition replaces it);
3. with pending drift, checks the guardrails in order — cooldown since the last retraining,
   enough new labelled rows, thermal clearance from the hardware gate (hysteresis state kept in
   the cursor) — and either skips saying which one held, or writes the reference window plus the
   drifted batches as one Parquet file and requests one run of the training job on it, with a
   ``run_key`` derived from the drift events so one event gives one run.
"""

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from efficientai_assets.defs.monitoring.assets import append_audit_record
from efficientai_assets.gate.policy import GatePolicy, GateState, Priority, evaluate
from efficientai_assets.names import AUDIT_ASSET, LABEL_COLUMN, TAG_DATA_MD5, TRAIN_SPLIT_FILE
from efficientai_assets.names import VALIDATION_SPLIT_FILE as VALIDATION_FILE
from resources.dvc.resource import DvcResource
from resources.evidently.resource import EvidentlyResource
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    from dagster._core.storage.dagster_run import RunRecord

CURSOR_VERSION = 1
SENSOR_NAME = "drift_retrain_sensor"
DRIFT_ASSET = dg.AssetKey("drift_report")
TAG_PREFIX = "efficientai/"
TAG_TRIGGER = f"{TAG_PREFIX}trigger"
TAG_PARTITIONS = f"{TAG_PREFIX}drift_partitions"
TAG_REPORTS = f"{TAG_PREFIX}drift_reports"
TAG_DRIFT_SHARE = f"{TAG_PREFIX}drift_share"
TAG_REPLACED = f"{TAG_PREFIX}replaced_champion"
TAG_NEW_ROWS = f"{TAG_PREFIX}new_rows"
TAG_TRAINING_DATA = f"{TAG_PREFIX}training_data"
TRIGGER_DRIFT = "drift"
_AUDITED_MEMORY = 200
_LOG = logging.getLogger(__name__)
_FINISHED = (
    dg.DagsterRunStatus.SUCCESS,
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
)


@dataclass(frozen=True)
class RetrainPolicy:
    """The guardrails. Defaults suit a daily monitoring cadence."""

    cooldown_seconds: float = 6 * 3600.0
    min_new_rows: int = 500
    priority: Priority = "normal"
    max_reference_rows: int | None = None  # cap on the reference window (seeded sample)
    seed: int = 0


@dataclass(frozen=True)
class DriftEvent:
    """One drifted partition, as its drift_report materialization recorded it."""

    partition: str
    storage_id: int
    drift_share: float
    threshold: float
    labelled_rows: int
    batch_path: str
    report_path: str

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()

    @classmethod
    def from_json(cls, data: Any) -> "DriftEvent":
        """Parse a stored event; raises TypeError, KeyError or ValueError on a malformed one."""
        if not isinstance(data, dict):
            raise TypeError(f"a pending drift event must be an object, got {type(data).__name__}")
        return cls(
            partition=_field(data, "partition", str),
            storage_id=_field(data, "storage_id", int),
            drift_share=float(_field(data, "drift_share", float)),
            threshold=float(_field(data, "threshold", float)),
            labelled_rows=_field(data, "labelled_rows", int),
            batch_path=_field(data, "batch_path", str),
            report_path=_field(data, "report_path", str),
        )


def _field(data: Mapping[str, Any], key: str, kind: type) -> Any:
    """``data[key]`` when it is of ``kind`` (an int passes for a float, a bool never does)."""
    value = data[key]
    kinds = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise TypeError(f"{key} must be {kind.__name__}, got {type(value).__name__}")
    return value


class RetrainingDataError(Exception):
    """The retraining data cannot be assembled (no champion, its data version is gone, a
    drifted batch is missing or unreadable); the message says which."""


@dataclass
class Cursor:
    after_storage_id: int = 0
    pending: dict[str, DriftEvent] | None = None
    last_request_at: float | None = None
    last_run_key: str | None = None
    gate: GateState = field(default_factory=GateState)
    audited: list[str] | None = None

    def encode(self) -> str:
        return json.dumps(
            {
                "version": CURSOR_VERSION,
                "after_storage_id": self.after_storage_id,
                "pending": [e.to_json() for e in (self.pending or {}).values()],
                "last_request_at": self.last_request_at,
                "last_run_key": self.last_run_key,
                "gate": self.gate.to_json(),
                "audited": (self.audited or [])[-_AUDITED_MEMORY:],
            },
            sort_keys=True,
        )

    @classmethod
    def decode(cls, text: str | None, log: logging.Logger | None = None) -> "Cursor":
        """A missing or foreign cursor starts from the beginning (reports are re-read, and
        run keys keep the same events from requesting twice); so does a corrupt one, with a
        warning, rather than failing every tick."""
        try:
            data = json.loads(text) if text else None
            if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
                return cls(pending={}, audited=[])
            return cls._parse(data)
        except (TypeError, KeyError, ValueError) as error:
            (log or _LOG).warning(
                f"{SENSOR_NAME}: malformed cursor ({type(error).__name__}: {error}); "
                "starting from a fresh one"
            )
            return cls(pending={}, audited=[])

    @classmethod
    def _parse(cls, data: dict[str, Any]) -> "Cursor":
        after = data.get("after_storage_id") or 0
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError(f"after_storage_id must be a non-negative int, got {after!r}")
        raw_pending = data.get("pending") or []
        if not isinstance(raw_pending, list):
            raise TypeError(f"pending must be a list, got {type(raw_pending).__name__}")
        events = [DriftEvent.from_json(e) for e in raw_pending]
        last_at = data.get("last_request_at")
        if last_at is not None and (
            isinstance(last_at, bool) or not isinstance(last_at, int | float)
        ):
            raise TypeError(f"last_request_at must be a number, got {type(last_at).__name__}")
        last_key = data.get("last_run_key")
        if last_key is not None and not isinstance(last_key, str):
            raise TypeError(f"last_run_key must be a string, got {type(last_key).__name__}")
        audited = data.get("audited") or []
        if not isinstance(audited, list) or not all(isinstance(a, str) for a in audited):
            raise TypeError("audited must be a list of run ids")
        return cls(
            after_storage_id=after,
            pending={e.partition: e for e in events},
            last_request_at=None if last_at is None else float(last_at),
            last_run_key=last_key,
            gate=GateState.from_json(data.get("gate")),
            audited=list(audited),
        )


def _number(metadata: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    entry = metadata.get(key)
    value = getattr(entry, "value", entry)
    return float(value) if isinstance(value, int | float) else default


def _text(metadata: Mapping[str, Any], key: str) -> str:
    entry = metadata.get(key)
    return str(getattr(entry, "value", entry) or "")


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_key_for(events: list[DriftEvent]) -> str:
    """Deterministic: the same drift events always give the same key."""
    material = ",".join(f"{e.partition}@{e.storage_id}" for e in sorted(events, key=_order))
    return f"drift-retrain-{hashlib.sha256(material.encode()).hexdigest()[:16]}"


def _order(event: DriftEvent) -> tuple[str, int]:
    return (event.partition, event.storage_id)


# ---- reading drift reports -------------------------------------------------------------------


def read_drift_events(
    instance: dg.DagsterInstance, cursor: Cursor, limit: int = 200
) -> tuple[list[str], int]:
    """Fold new drift_report materializations into ``cursor.pending``; returns notes on what
    was seen and the new high-water storage id."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=DRIFT_ASSET, after_storage_id=cursor.after_storage_id),
        limit=limit,
        ascending=True,
    ).records
    notes: list[str] = []
    high = cursor.after_storage_id
    pending = cursor.pending if cursor.pending is not None else {}
    for record in records:
        high = max(high, record.storage_id)
        materialization = record.asset_materialization
        if materialization is None or record.partition_key is None:
            continue
        metadata = materialization.metadata
        event = DriftEvent(
            partition=record.partition_key,
            storage_id=record.storage_id,
            drift_share=_number(metadata, "drift_share"),
            threshold=_number(metadata, "drift_share_threshold", 1.0),
            labelled_rows=int(_number(metadata, "labelled_rows")),
            batch_path=_text(metadata, "batch_path"),
            report_path=_text(metadata, "report_path"),
        )
        if event.drift_share >= event.threshold:
            pending[event.partition] = event
            notes.append(
                f"{event.partition}: drift share {event.drift_share:.3f} >= {event.threshold:.3f}"
            )
        else:
            pending.pop(event.partition, None)
            notes.append(
                f"{event.partition}: no drift (share {event.drift_share:.3f} < "
                f"{event.threshold:.3f})"
            )
    cursor.pending = pending
    return notes, high


# ---- the audit trail ---------------------------------------------------------------------------


def audit_run(instance: dg.DagsterInstance, record: "RunRecord") -> dict[str, Any]:
    """What a finished retraining run did: promoted, rejected (and why) or failed."""
    run = record.dagster_run
    events = instance.all_logs(
        run.run_id,
        of_type={
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            dg.DagsterEventType.STEP_FAILURE,
        },
    )
    champion: Mapping[str, Any] | None = None
    quality: tuple[bool, str] | None = None
    failures: list[str] = []
    bento = ""
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            key = materialization.asset_key.to_user_string()
            if key == "champion_model":
                champion = materialization.metadata
            elif key == "model_bento":
                bento = _text(materialization.metadata, "bento_tag")
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.asset_key.to_user_string() == "candidate_model":
                quality = (evaluation.passed, evaluation.description or "")
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            failures.append(f"{event.step_key}: {error.message.strip() if error else 'failed'}")
    if champion is not None and champion.get("promoted") is not None:
        promoted = bool(getattr(champion["promoted"], "value", champion["promoted"]))
        outcome, reason = ("promoted" if promoted else "rejected"), _text(champion, "reason")
        new_champion = _text(champion, "champion_version")
    elif quality is not None and not quality[0]:
        outcome, reason, new_champion = "rejected", f"quality check failed: {quality[1]}", ""
    else:
        outcome = "failed"
        reason = "; ".join(failures) or f"run ended {run.status.value}"
        new_champion = ""
    tags = run.tags
    return {
        "run_id": run.run_id,
        "run_status": run.status.value,
        "run_key": tags.get("dagster/run_key", ""),
        "outcome": outcome,
        "reason": reason[:2000],
        "drift_partitions": tags.get(TAG_PARTITIONS, ""),
        "drift_reports": tags.get(TAG_REPORTS, ""),
        "drift_share": tags.get(TAG_DRIFT_SHARE, ""),
        "replaced_champion": tags.get(TAG_REPLACED, ""),
        "new_champion": new_champion if outcome == "promoted" else "",
        "bento": bento,
        "training_data": tags.get(TAG_TRAINING_DATA, ""),
        "new_rows": tags.get(TAG_NEW_ROWS, ""),
        "finished_at": record.end_time,
    }


def audit_finished_runs(
    instance: dg.DagsterInstance, cursor: Cursor, evidently: EvidentlyResource
) -> list[dg.AssetMaterialization]:
    """An audit materialization for each finished drift-triggered run not yet audited."""
    audited = cursor.audited if cursor.audited is not None else []
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={TAG_TRIGGER: TRIGGER_DRIFT}, statuses=list(_FINISHED)),
        limit=50,
    )
    out: list[dg.AssetMaterialization] = []
    for record in sorted(records, key=lambda r: r.create_timestamp.timestamp()):
        if record.dagster_run.run_id in audited:
            continue
        entry = audit_run(instance, record)
        append_audit_record(evidently, entry)
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


# ---- the retraining data -----------------------------------------------------------------------


def write_training_data(
    events: list[DriftEvent],
    run_key: str,
    policy: RetrainPolicy,
    mlflow: MlflowResource,
    dvc: DvcResource,
    evidently: EvidentlyResource,
) -> tuple[Path, int, str]:
    """Reference window (the champion's train + validation split) plus the labelled rows of the
    drifted batches, as one Parquet file under ``<reports>/retraining/``. Returns the path, the
    number of new rows and the replaced champion's version. Raises
    :class:`RetrainingDataError` naming the problem when an input is missing or unreadable."""
    import pandas as pd
    from dvc.exceptions import DvcException

    from efficientai_assets.defs.monitoring.assets import (
        MonitoringError,
        champion_version,
        split_file_at,
    )
    from resources.dvc.resource import DvcVersioningError

    try:
        version = champion_version(mlflow)
    except MonitoringError as error:
        raise RetrainingDataError(f"no reference window: {error.description}") from error
    md5 = version.tags[TAG_DATA_MD5]  # champion_version guarantees the tag
    try:
        splits = [
            split_file_at(dvc, evidently, md5, f) for f in (TRAIN_SPLIT_FILE, VALIDATION_FILE)
        ]
        reference = pd.concat([pd.read_parquet(f) for f in splits], ignore_index=True)
    except MonitoringError as error:
        raise RetrainingDataError(
            f"champion v{version.version}'s training data {md5}: {error.description}"
        ) from error
    except (DvcException, DvcVersioningError, OSError, ValueError) as error:
        raise RetrainingDataError(
            f"champion v{version.version}'s training data {md5} cannot be read: "
            f"{type(error).__name__}: {error}"
        ) from error
    if policy.max_reference_rows is not None and len(reference) > policy.max_reference_rows:
        reference = reference.sample(policy.max_reference_rows, random_state=policy.seed)
    batches = []
    for event in sorted(events, key=_order):
        where = f"drifted batch of {event.partition} ({event.batch_path or 'no path recorded'})"
        if not event.batch_path or not Path(event.batch_path).is_file():
            raise RetrainingDataError(f"{where} is missing")
        try:
            batch = pd.read_parquet(event.batch_path)
        except (OSError, ValueError) as error:
            raise RetrainingDataError(
                f"{where} cannot be read: {type(error).__name__}: {error}"
            ) from error
        if LABEL_COLUMN not in batch.columns:
            continue
        absent = [c for c in reference.columns if c not in batch.columns]
        if absent:
            raise RetrainingDataError(
                f"{where} lacks the reference window's column(s) {absent[:10]}"
            )
        batches.append(batch[batch[LABEL_COLUMN].notna()][list(reference.columns)])
    new = pd.concat(batches, ignore_index=True) if batches else reference.iloc[:0]
    combined = pd.concat([reference, new], ignore_index=True)
    try:
        combined[LABEL_COLUMN] = combined[LABEL_COLUMN].astype("int64")
    except (TypeError, ValueError) as error:
        raise RetrainingDataError(
            f"the {LABEL_COLUMN!r} column of the reference window or the drifted batches "
            f"is not integer class ids: {error}"
        ) from error
    path = evidently.reports_root() / "retraining" / f"{run_key}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    combined.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path, len(new), str(version.version)


# ---- the sensor --------------------------------------------------------------------------------


def _last_retrain_at(instance: dg.DagsterInstance, cursor: Cursor) -> float | None:
    """The later of the cursor's last request and the newest drift-triggered run."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={TAG_TRIGGER: TRIGGER_DRIFT}), limit=1
    )
    stamps = [r.create_timestamp.timestamp() for r in records]
    if cursor.last_request_at is not None:
        stamps.append(cursor.last_request_at)
    return max(stamps) if stamps else None


def build_drift_sensor(
    job: Any,
    *,
    name: str = SENSOR_NAME,
    policy: RetrainPolicy | None = None,
    clock: Callable[[], float] = time.time,
    extra_run_config: Mapping[str, Any] | None = None,
    minimum_interval_seconds: int = 60,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """The sensor for ``job`` (the training job). ``clock`` exists so tests can move time;
    ``extra_run_config`` is merged into every requested run (e.g. training hyperparameters)."""
    policy = policy or RetrainPolicy()

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Requests retraining on the reference window plus drifted batches when a "
        "drift report crosses its threshold — after a cooldown, with enough new labelled rows, "
        "and when the hardware gate is clear. Audits each retraining it requested.",
    )
    def drift_retrain_sensor(
        context: dg.SensorEvaluationContext,
        hardware: HardwareResource,
        evidently: EvidentlyResource,
        mlflow: MlflowResource,
        dvc: DvcResource,
    ) -> dg.SensorResult:
        cursor = Cursor.decode(context.cursor, context.log)
        audit_events = audit_finished_runs(context.instance, cursor, evidently)
        notes, high = read_drift_events(context.instance, cursor)
        cursor.after_storage_id = high
        pending = sorted((cursor.pending or {}).values(), key=_order)
        seen = f" (seen: {'; '.join(notes[-5:])})" if notes else ""

        def skip(message: str) -> dg.SensorResult:
            context.log.info(message)
            return dg.SensorResult(
                skip_reason=dg.SkipReason(message),
                cursor=cursor.encode(),
                asset_events=audit_events,
            )

        if not pending:
            return skip(f"no drift pending{seen or ' (no new drift reports)'}")
        partitions = ", ".join(e.partition for e in pending)
        now = clock()
        last = _last_retrain_at(context.instance, cursor)
        if last is not None and now - last < policy.cooldown_seconds:
            left = (policy.cooldown_seconds - (now - last)) / 60
            return skip(
                f"cooldown: last retraining requested {_when(last)}, {left:.0f} min of "
                f"{policy.cooldown_seconds / 60:.0f} left; drift pending in {partitions}"
            )
        new_rows = sum(e.labelled_rows for e in pending)
        if new_rows < policy.min_new_rows:
            return skip(
                f"waiting for labelled rows: {new_rows} of {policy.min_new_rows} needed from "
                f"drifted partitions {partitions}"
            )
        snapshot = hardware.snapshot()
        gate = evaluate(GatePolicy.from_resource(hardware), cursor.gate, snapshot, policy.priority)
        cursor.gate = gate.state
        if gate.verdict != "go":
            return skip(
                f"deferred by the hardware gate ({gate.state.phase}): {gate.reason} "
                f"[{snapshot.summary()}]; drift pending in {partitions}"
            )

        run_key = run_key_for(pending)
        try:
            path, added, replaced = write_training_data(
                pending, run_key, policy, mlflow, dvc, evidently
            )
        except RetrainingDataError as error:
            # Skip with the advanced cursor, so the audit above is recorded once and the
            # pending drift is retried when the problem is fixed.
            return skip(
                f"cannot assemble the retraining data: {error}; drift pending in {partitions}"
            )
        run_config: dict[str, Any] = {
            "ops": {"raw_dataset": {"config": {"source_path": str(path)}}}
        }
        for op, value in (extra_run_config or {}).get("ops", {}).items():
            run_config["ops"].setdefault(op, {}).update(value)
        tags = {
            TAG_TRIGGER: TRIGGER_DRIFT,
            TAG_PARTITIONS: ",".join(e.partition for e in pending),
            TAG_REPORTS: ",".join(e.report_path for e in pending)[:4000],
            TAG_DRIFT_SHARE: f"{max(e.drift_share for e in pending):.4f}",
            TAG_REPLACED: replaced,
            TAG_NEW_ROWS: str(added),
            TAG_TRAINING_DATA: str(path),
            f"{TAG_PREFIX}gate": f"{gate.verdict}: {gate.reason}"[:1000],
        }
        cursor.pending = {}
        cursor.last_request_at = now
        cursor.last_run_key = run_key
        context.log.info(f"requesting retraining {run_key} for {partitions} ({added} new rows)")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=run_key, run_config=run_config, tags=tags)],
            cursor=cursor.encode(),
            asset_events=audit_events,
        )

    return drift_retrain_sensor


def _default_job() -> Any:
    from efficientai_assets.defs.jobs import training_job

    return training_job


drift_retrain_sensor = build_drift_sensor(_default_job())
