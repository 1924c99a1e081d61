"""The drift → retrain sensor: it reads and requests, nothing more.

Each tick:

1. audits finished retraining runs it requested (:mod:`sensors.drift_audit`);
2. reads new ``drift_report`` materializations after its cursor (:mod:`sensors.drift_cursor`);
   a partition whose drift share reaches its threshold becomes *pending*;
3. decides with the pure guardrails (:mod:`sensors.drift_guardrails`) — cooldown since the last
   retraining, enough new labelled rows, clearance from the hardware gate — and either skips
   saying which one held, or reads the champion's reference window (its version and data version
   in the registry) and requests one run of the training job. The run's tags carry what it
   retrains on; its ``raw_dataset`` step assembles and versions the data
   (:mod:`efficientai_assets.defs.monitoring.retraining`). The ``run_key`` is derived from the
   drift events, so one event gives one run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import dagster as dg

from efficientai_assets.defs.monitoring.reference import (
    MonitoringError,
    champion_version,
    registry_commit_for,
    splits_pointer,
)
from efficientai_assets.defs.monitoring.retraining import RetrainingRequest
from efficientai_assets.gate.policy import GatePolicy, evaluate
from efficientai_assets.names import (
    DRIFT_SENSOR,
    TAG_DATA_MD5,
    TAG_DRIFT_REPORTS,
    TAG_DRIFT_SHARE,
    TAG_RETRAIN_GATE,
    TAG_RUN_NAMESPACE,
    TAG_TRIGGER,
    TRIGGER_DRIFT,
)
from resources.dvc.resource import DvcResource
from resources.evidently.resource import EvidentlyResource
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource
from sensors.drift_audit import audit_finished_runs
from sensors.drift_cursor import Cursor, DriftEvent, read_drift_events, run_key_for
from sensors.drift_guardrails import GateAnswer, RetrainPolicy, retraining_verdict


def _last_retrain_at(instance: dg.DagsterInstance, cursor: Cursor) -> float | None:
    """The later of the cursor's last request and the newest drift-triggered run."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags={TAG_TRIGGER: TRIGGER_DRIFT}), limit=1
    )
    stamps = [r.create_timestamp.timestamp() for r in records]
    if cursor.last_request_at is not None:
        stamps.append(cursor.last_request_at)
    return max(stamps) if stamps else None


def _ask_gate(hardware: HardwareResource, cursor: Cursor, policy: RetrainPolicy) -> GateAnswer:
    """One reading through the gate's hysteresis (its state kept in the cursor)."""
    snapshot = hardware.snapshot()
    gate = evaluate(GatePolicy.from_resource(hardware), cursor.gate, snapshot, policy.priority)
    cursor.gate = gate.state
    return GateAnswer(gate.verdict == "go", gate.state.phase, gate.reason, snapshot.summary())


def retraining_request(
    events: tuple[DriftEvent, ...],
    policy: RetrainPolicy,
    mlflow: MlflowResource,
    dvc: DvcResource,
) -> RetrainingRequest:
    """What the run will retrain on: the champion's data version, located in the registry (a
    read of its git history, no data), plus the drifted batches. Raises ``MonitoringError``
    when there is no reference window to retrain from."""
    version = champion_version(mlflow)
    md5 = version.tags[TAG_DATA_MD5]  # champion_version guarantees the tag
    return RetrainingRequest(
        batches=tuple((e.partition, e.batch_path) for e in events),
        champion_version=str(version.version),
        data_md5=md5,
        registry_commit=registry_commit_for(dvc, splits_pointer(dvc), md5),
        max_reference_rows=policy.max_reference_rows,
        seed=policy.seed,
    )


def _extra_ops(extra_run_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``ops`` part of the run config merged into every requested run (copied per request)."""
    ops = (extra_run_config or {}).get("ops", {})
    return {"ops": {op: dict(value) for op, value in ops.items()}} if ops else {}


def build_drift_sensor(
    job: Any,
    *,
    name: str = DRIFT_SENSOR,
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
        audit_events = audit_finished_runs(
            context.instance, cursor, evidently, mlflow.project_namespace
        )
        notes, cursor.after_storage_id = read_drift_events(context.instance, cursor)
        seen = f" (seen: {'; '.join(notes[-5:])})" if notes else ""

        def skip(message: str) -> dg.SensorResult:
            context.log.info(message)
            return dg.SensorResult(
                skip_reason=dg.SkipReason(message),
                cursor=cursor.encode(),
                asset_events=audit_events,
            )

        pending = list((cursor.pending or {}).values())
        now = clock()
        last = _last_retrain_at(context.instance, cursor) if pending else None
        verdict = retraining_verdict(pending, policy, now, last, seen=seen)
        if verdict.action == "ask_gate":
            gate = _ask_gate(hardware, cursor, policy)
            verdict = retraining_verdict(pending, policy, now, last, gate, seen)
        if verdict.action != "request":
            return skip(verdict.reason)
        try:
            request = retraining_request(verdict.events, policy, mlflow, dvc)
        except MonitoringError as error:
            # The cursor advances (the audit above is recorded once); the drift stays pending
            # and is requested once a champion with a known data version exists again.
            return skip(
                f"no reference window to retrain from: {error.description}; drift pending in "
                f"{verdict.partitions}"
            )
        run_key = run_key_for(verdict.events)
        tags = {
            **request.to_tags(),
            TAG_DRIFT_REPORTS: ",".join(e.report_path for e in verdict.events)[:4000],
            TAG_DRIFT_SHARE: f"{max(e.drift_share for e in verdict.events):.4f}",
            TAG_RETRAIN_GATE: verdict.reason[:1000],
            TAG_RUN_NAMESPACE: mlflow.project_namespace,
        }
        cursor.pending = {}
        cursor.last_request_at = now
        cursor.last_run_key = run_key
        rows = sum(e.labelled_rows for e in verdict.events)
        context.log.info(
            f"requesting retraining {run_key} for {verdict.partitions} ({rows} labelled rows)"
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=run_key, run_config=_extra_ops(extra_run_config), tags=tags)
            ],
            cursor=cursor.encode(),
            asset_events=audit_events,
        )

    return drift_retrain_sensor


def _default_job() -> Any:
    from efficientai_assets.defs.jobs import training_job

    return training_job


drift_retrain_sensor = build_drift_sensor(_default_job())
