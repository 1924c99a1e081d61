"""Monitoring assets: a daily inference batch, its drift report against the champion's training
data (Evidently, explicit schema), a WARN check on the drift share, and the retraining audit trail
(materialized by the drift sensor, ``sensors/drift.py``).

Per partition everything lives in the namespace's reports folder, ``<home>/reports/<YYYY-MM-DD>/``
for the default namespace and ``<home>/reports/namespaces/<namespace>/<YYYY-MM-DD>/`` for any
other: ``batch.parquet`` (the validated batch), ``drift.html`` and ``drift.json`` (the report). Where batches come from is in
:mod:`~efficientai_assets.defs.monitoring.sources`, the reference window in
:mod:`~efficientai_assets.defs.monitoring.reference`.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from efficientai_assets.defs.data.memo import INPUT_FINGERPRINT, file_sha256
from efficientai_assets.defs.monitoring.recall import (
    BATCH_SHA256,
    batch_fingerprint,
    drift_fingerprint,
    recall_batch,
    recall_drift,
)
from efficientai_assets.defs.monitoring.reference import MonitoringError, reference_profile
from efficientai_assets.defs.monitoring.sources import (
    MONITORING_START_DATE,
    InferenceBatchConfig,
    landing_batch,
    shift_strength,
    simulate_batch,
)
from efficientai_assets.defs.training.registry_peek import PeekedVersion, peek_registered
from efficientai_assets.names import (
    AUDIT_ASSET,
    DRIFT_ASSET,
    DRIFT_CHECK,
    INFERENCE_BATCH_ASSET,
    LABEL_COLUMN,
    TAG_DATA_MD5,
)
from resources.dvc.resource import DvcResource
from resources.evidently.resource import DriftInputError, DriftResult, EvidentlyResource
from resources.home import default_home
from resources.mlflow.resource import MlflowResource
from resources.store_retry import retry_transient_store_errors

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

MONITORING_CODE_VERSION = "1"
BATCH_FILE = "batch.parquet"
REPORT_STEM = "drift"

daily_partitions = dg.DailyPartitionsDefinition(start_date=MONITORING_START_DATE)


def partition_folder(evidently: EvidentlyResource, namespace: str, partition_key: str) -> Path:
    """The day's folder of ``namespace``'s reports: under the resource's configured folder when
    one is set (a code location serves one namespace, so its configured folder is that
    namespace's), else under the home's folder for that namespace
    (:meth:`~resources.home.EfficientAIHome.reports_for`): two namespaces on one home never
    write into one day's folder."""
    if evidently.reports_dir:
        return evidently.partition_dir(partition_key)
    evidently.partition_dir(partition_key)  # refuses a key that is not a plain folder name
    return default_home().reports_for(namespace) / partition_key


def batch_path(evidently: EvidentlyResource, namespace: str, partition_key: str) -> Path:
    return partition_folder(evidently, namespace, partition_key) / BATCH_FILE


# ---- assets ----------------------------------------------------------------------------------


@dg.asset(
    group_name="monitoring",
    kinds={"pandas"},
    code_version=MONITORING_CODE_VERSION,
    partitions_def=daily_partitions,
    description="A day's inference batch (landing folder or simulator), validated against the "
    "champion's training schema before anything is written.",
)
@retry_transient_store_errors
def inference_batch(
    context: dg.AssetExecutionContext,
    config: InferenceBatchConfig,
    evidently: EvidentlyResource,
    mlflow: MlflowResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    from efficientai_assets.defs.data.datasets import DatasetError

    day = context.partition_key
    fingerprint = batch_fingerprint(config, day, mlflow, MONITORING_CODE_VERSION)
    known = (
        recall_batch(context, fingerprint, batch_path(evidently, mlflow.project_namespace, day))
        if fingerprint
        else None
    )
    if known is not None:
        return known
    if config.source == "simulator":
        frame, source = simulate_batch(config, day), f"simulator (shift {config.shift})"
    else:
        try:
            frame, source = landing_batch(config, day)
        except DatasetError as error:
            raise MonitoringError(str(error)) from error
    version, profile, _ = reference_profile(mlflow, dvc, evidently)
    try:
        evidently.check_frame(frame, profile.schema, f"inference batch {day}", profile)
    except DriftInputError as error:
        raise MonitoringError(f"bad inference batch from {source}: {error}") from error
    keep = [*profile.schema.features]
    labelled = LABEL_COLUMN in frame.columns and bool(frame[LABEL_COLUMN].notna().any())
    if labelled:
        keep.append(LABEL_COLUMN)
    path = batch_path(evidently, mlflow.project_namespace, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame[keep].to_parquet(tmp, index=False)
    tmp.replace(path)
    labelled_rows = int(frame[LABEL_COLUMN].notna().sum()) if labelled else 0
    return dg.MaterializeResult(
        metadata={
            "source": dg.MetadataValue.text(source),
            "dagster/row_count": len(frame),
            "labelled_rows": labelled_rows,
            "columns": len(keep),
            "batch_path": dg.MetadataValue.path(str(path)),
            "champion_version": dg.MetadataValue.text(str(version.version)),
            "shift_strength": shift_strength(config, day) if config.source == "simulator" else 0.0,
            INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint or ""),
            BATCH_SHA256: dg.MetadataValue.text(file_sha256(path)),
        }
    )


def _drifted_table(result: DriftResult, limit: int = 30) -> str:
    # Most drifted first: largest distance, smallest p-value.
    rows = sorted(
        result.drifted_columns, key=lambda c: -c.score if c.score_kind == "distance" else c.score
    )
    if not rows:
        return "no column drifted"
    lines = ["| column | test | score | kind | threshold |", "|---|---|---|---|---|"]
    lines += [
        f"| {c.column} | {c.method} | {c.score:.4g} | {c.score_kind} | {c.threshold:g} |"
        for c in rows[:limit]
    ]
    if len(rows) > limit:
        lines.append(f"| … {len(rows) - limit} more | | | | |")
    return "\n".join(lines)


def champion_accuracy(
    mlflow: MlflowResource, version: "ModelVersion | PeekedVersion", frame: "pd.DataFrame"
) -> float:
    """Accuracy of the champion on the labelled rows of ``frame``: only a version the pipeline
    produced, its weights loaded by the project's own loader (no code from the registry runs)."""
    import tempfile

    import numpy as np

    from efficientai_assets.defs.training.origin import (
        fetch_registered,
        predict_labels,
        require_pipeline_model,
    )

    labelled = frame[frame[LABEL_COLUMN].notna()]
    with tempfile.TemporaryDirectory(prefix="efficientai-champion-") as scratch:
        # Read in place from the embedded store when it can be (no MLflow), else downloaded.
        peeked = peek_registered(mlflow, version) if isinstance(version, PeekedVersion) else None
        fetched = peeked or fetch_registered(mlflow, version, Path(scratch))  # type: ignore[arg-type]
        require_pipeline_model(str(version.name), "champion", fetched)
        predicted = predict_labels(fetched, labelled.drop(columns=[LABEL_COLUMN]))
    truth = labelled[LABEL_COLUMN].to_numpy(dtype=np.int64)
    return float((np.asarray(predicted).astype(np.int64) == truth).mean())


@dg.asset(
    group_name="monitoring",
    kinds={"evidently"},
    code_version=MONITORING_CODE_VERSION,
    partitions_def=daily_partitions,
    deps=[INFERENCE_BATCH_ASSET],
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset=DRIFT_ASSET,
            description="The share of drifted columns stays under the configured threshold.",
        )
    ],
    description="Evidently DataDriftPreset of the day's batch against the champion's training "
    "split; HTML + JSON under reports/<day>/; champion accuracy when labels exist.",
)
@retry_transient_store_errors
def drift_report(
    context: dg.AssetExecutionContext,
    evidently: EvidentlyResource,
    mlflow: MlflowResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    day = context.partition_key
    path = batch_path(evidently, mlflow.project_namespace, day)
    if not path.is_file():
        raise MonitoringError(f"no batch for {day} at {path}: materialize inference_batch first")
    folder = partition_folder(evidently, mlflow.project_namespace, day)
    fingerprint = drift_fingerprint(path, mlflow, evidently, MONITORING_CODE_VERSION)
    known = recall_drift(context, fingerprint, folder, REPORT_STEM) if fingerprint else None
    if known is not None:
        return known
    import pandas as pd

    batch = pd.read_parquet(path)
    version, profile, origin = reference_profile(mlflow, dvc, evidently)
    try:  # the verdict now; Evidently's HTML report from a child process when not yet made
        result = evidently.decide(profile, batch, profile.schema)
    except DriftInputError as error:
        raise MonitoringError(f"bad inference batch {path}: {error}") from error
    html_path, json_path = evidently.publish(result, profile, path, folder, REPORT_STEM)
    labelled_rows = int(batch[LABEL_COLUMN].notna().sum()) if LABEL_COLUMN in batch else 0
    metadata: dict[str, Any] = {
        "drift_share": result.drift_share,
        "drift_share_threshold": result.drift_share_threshold,
        "dataset_drift": result.dataset_drift,
        "drifted_count": result.drifted_count,
        "columns_tested": len(result.columns),
        "drifted_columns": dg.MetadataValue.md(_drifted_table(result)),
        "drifted_column_names": dg.MetadataValue.json([c.column for c in result.drifted_columns]),
        "report_path": dg.MetadataValue.path(str(html_path)),
        "json_path": dg.MetadataValue.path(str(json_path)),
        "batch_path": dg.MetadataValue.path(str(path)),
        "current_rows": result.current_rows,
        "reference_rows": result.reference_rows,
        "current_rows_used": result.current_rows_used,
        "reference_rows_used": result.reference_rows_used,
        "cdf_error_bound": result.cdf_error_bound,
        "labelled_rows": labelled_rows,
        "champion_version": dg.MetadataValue.text(str(version.version)),
        "reference_data_md5": dg.MetadataValue.text(version.tags[TAG_DATA_MD5]),
        "reference_profile": dg.MetadataValue.text(origin),
        "numerical_method": result.settings.numerical_method,
        "evidently_report": "rendered" if result.snapshot is not None else "rendering",
        INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint or ""),
    }
    if labelled_rows:
        metadata["champion_accuracy"] = champion_accuracy(mlflow, version, batch)
    context.log.info(
        "drift %s: share %.3f (threshold %.3f), %d of %d columns",
        day, result.drift_share, result.drift_share_threshold, result.drifted_count,
        len(result.columns),
    )  # fmt: skip
    passed = not result.dataset_drift
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name=DRIFT_CHECK,
                passed=passed,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    f"drift share {result.drift_share:.3f} "
                    f"{'<' if passed else '>='} threshold {result.drift_share_threshold:.3f}"
                ),
                metadata={
                    "drift_share": result.drift_share,
                    "threshold": result.drift_share_threshold,
                    "drifted_count": result.drifted_count,
                    "report_path": dg.MetadataValue.path(str(html_path)),
                },
            )
        ],
    )


retraining_audit = dg.AssetSpec(
    AUDIT_ASSET,
    group_name="monitoring",
    kinds={"dagster"},
    description="One materialization per drift-triggered retraining: the drift reports that "
    "triggered it, the champion it meant to replace, and the outcome (promoted / rejected / "
    "failed) with the reason. Recorded by the drift sensor; also appended to "
    "reports/retraining_audit.jsonl.",
)
