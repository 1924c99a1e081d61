"""Monitoring assets: a daily inference batch, its drift report against the champion's training
data (Evidently, explicit schema), a WARN check on the drift share, and the retraining audit trail
(materialized by the drift sensor, ``sensors/drift.py``).

Per partition everything lives in ``<home>/reports/<YYYY-MM-DD>/``: ``batch.parquet`` (the
validated batch), ``drift.html`` and ``drift.json`` (the report).
"""

import hashlib
import json
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg
from pydantic import Field

from efficientai_assets.names import (
    AUDIT_ASSET,
    CHAMPION_ALIAS,
    DRIFT_CHECK,
    LABEL_COLUMN,
    MODEL_NAME,
    SPLITS_DIR,
    TAG_DATA_MD5,
    TRAIN_SPLIT_FILE,
)
from resources.dvc.resource import DvcResource
from resources.evidently.resource import (
    DriftInputError,
    DriftResult,
    DriftSchema,
    EvidentlyResource,
    ReferenceProfile,
)
from resources.home import default_home
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

MONITORING_CODE_VERSION = "1"
MONITORING_START_DATE = "2026-01-01"
BATCH_FILE = "batch.parquet"
REPORT_STEM = "drift"
AUDIT_FILE = "retraining_audit.jsonl"
_GIT_TIMEOUT_SECONDS = 60

daily_partitions = dg.DailyPartitionsDefinition(start_date=MONITORING_START_DATE)


class MonitoringError(dg.Failure):
    """A monitoring step cannot go on; the description says why."""


class InferenceBatchConfig(dg.Config):
    """Where a day's batch comes from."""

    source: Literal["simulator", "landing"] = Field(
        default="simulator",
        description="'landing': files in landing_dir; 'simulator': a batch drawn from the built-in "
        "sample, optionally shifted.",
    )
    landing_dir: str = Field(
        default="", description="Folder where files land; empty means <EFFICIENTAI_HOME>/landing."
    )
    timestamp_column: str = Field(
        default="timestamp",
        description="Column that dates rows in landing files not named <YYYY-MM-DD>.csv|.parquet.",
    )
    shift: Literal["none", "gradual", "sudden"] = Field(
        default="none", description="Simulated shift: none, gradual (ramps up), sudden (full)."
    )
    shift_start: str = Field(
        default="", description="First day (YYYY-MM-DD) of the shift; empty: the first partition."
    )
    shift_magnitude: float = Field(
        default=2.0, ge=0, description="Offset added to shifted features, in units of max(std, 1)."
    )
    shift_fraction: float = Field(
        default=0.5, gt=0, le=1, description="Share of feature columns that shift."
    )
    ramp_days: int = Field(default=7, ge=1, description="Days a gradual shift takes to reach full.")
    rows: int = Field(default=500, ge=1, description="Rows per simulated batch.")
    with_labels: bool = Field(default=True, description="Simulated batches carry their labels.")
    seed: int = Field(default=0, description="Seed of the simulator (mixed with the day).")


# ---- reference: the champion's training split ----------------------------------------------------


def champion_version(mlflow: MlflowResource) -> "ModelVersion":
    name = mlflow.model_name(MODEL_NAME)
    version = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    if version is None:
        raise MonitoringError(
            f"{name} has no '{CHAMPION_ALIAS}' version, so there is no reference to compare "
            "against: materialize the training group first"
        )
    if not version.tags.get(TAG_DATA_MD5):
        raise MonitoringError(f"{name} v{version.version} has no {TAG_DATA_MD5} tag")
    return version


def split_file_at(dvc: DvcResource, evidently: EvidentlyResource, md5: str, filename: str) -> Path:
    """A file of the splits version ``md5``, copied once into ``<reports>/reference/<md5>/``:
    from an exact snapshot when it is the current version, else from the registry's history."""
    splits = dvc.project_path(SPLITS_DIR)
    cached = evidently.reports_root() / "reference" / _safe(md5) / filename
    if cached.is_file():
        return cached
    current = dvc.current_version(splits)
    if current is not None and current.md5 == md5:
        with tempfile.TemporaryDirectory(dir=evidently.reports_root()) as scratch:
            snapshot = dvc.snapshot(current, Path(scratch) / "splits")
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(cached.name + ".tmp")
            shutil.copy2(snapshot / filename, tmp)
            tmp.replace(cached)
        return cached
    commit = _registry_commit_for(dvc, f"{splits}.dvc", md5)
    from dvc.api import read as dvc_read

    data = dvc_read(f"{splits}/{filename}", repo=str(dvc.root()), rev=commit, mode="rb")
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(cached.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(cached)
    return cached


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def _registry_commit_for(dvc: DvcResource, pointer: str, md5: str) -> str:
    """The registry commit whose ``pointer`` records ``md5``."""
    import yaml

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(dvc.root()), *args],
            capture_output=True, text=True, timeout=_GIT_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise MonitoringError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    for commit in git("log", "--format=%H", "--", pointer).split():
        outs = yaml.safe_load(git("show", f"{commit}:{pointer}")).get("outs") or [{}]
        if str(outs[0].get("md5")) == md5:
            return commit
    raise MonitoringError(f"no version of {pointer} with md5 {md5} in {dvc.root()}")


def reference_profile(
    mlflow: MlflowResource, dvc: DvcResource, evidently: EvidentlyResource
) -> tuple["ModelVersion", ReferenceProfile, str]:
    """The champion, the profile of its training split (computed once per data version), and
    where the profile came from (memory, disk, computed)."""
    import pandas as pd
    import pyarrow.parquet as pq

    version = champion_version(mlflow)
    md5 = version.tags[TAG_DATA_MD5]
    path = split_file_at(dvc, evidently, md5, TRAIN_SPLIT_FILE)
    schema = DriftSchema.for_features(pq.read_schema(path).names, LABEL_COLUMN)
    profile, origin = evidently.reference_profile(md5, lambda: pd.read_parquet(path), schema)
    return version, profile, origin


# ---- sources ---------------------------------------------------------------------------------


def _day_seed(seed: int, day: str) -> int:
    return int(hashlib.sha256(f"{seed}:{day}".encode()).hexdigest()[:8], 16)


def shift_strength(config: InferenceBatchConfig, day: str) -> float:
    """0 before the shift starts; 1 from then on (sudden) or ramping over ``ramp_days``."""
    if config.shift == "none":
        return 0.0
    start = date.fromisoformat(config.shift_start or MONITORING_START_DATE)
    elapsed = (date.fromisoformat(day) - start).days
    if elapsed < 0:
        return 0.0
    if config.shift == "sudden":
        return 1.0
    return min(1.0, (elapsed + 1) / config.ramp_days)


def simulate_batch(config: InferenceBatchConfig, day: str) -> "pd.DataFrame":
    """A day's batch drawn (with replacement) from the built-in sample, with the configured shift:
    a fixed subset of feature columns moves by ``magnitude * max(std, 1)``."""
    import numpy as np

    from efficientai_assets.defs.data.datasets import sample_digits

    sample = sample_digits()
    rng = np.random.default_rng(_day_seed(config.seed, day))
    batch = sample.iloc[rng.integers(0, len(sample), size=config.rows)].reset_index(drop=True)
    strength = shift_strength(config, day)
    if strength > 0:
        features = [c for c in sample.columns if c != LABEL_COLUMN]
        chosen = np.random.default_rng(config.seed).permutation(len(features))
        count = max(1, round(config.shift_fraction * len(features)))
        for index in chosen[:count]:
            column = features[index]
            scale = max(float(sample[column].std()), 1.0)
            offset = strength * config.shift_magnitude * scale
            batch[column] = (batch[column] + offset).astype(batch[column].dtype)
    if not config.with_labels:
        batch = batch.drop(columns=[LABEL_COLUMN])
    return batch


def landing_batch(config: InferenceBatchConfig, day: str) -> tuple["pd.DataFrame", str]:
    """``<landing>/<day>.parquet|.csv``, else the rows of any landed file whose timestamp column
    falls on ``day``."""
    import pandas as pd

    from efficientai_assets.defs.data.datasets import read_table

    folder = (
        Path(config.landing_dir).expanduser()
        if config.landing_dir
        else (default_home().root / "landing")
    )
    if not folder.is_dir():
        raise MonitoringError(f"landing folder {folder} does not exist")
    for suffix in (".parquet", ".csv"):
        path = folder / f"{day}{suffix}"
        if path.is_file():
            return read_table(path), str(path)
    parts: list[pd.DataFrame] = []
    sources: list[str] = []
    for path in sorted([*folder.glob("*.parquet"), *folder.glob("*.csv")]):
        frame = read_table(path)
        if config.timestamp_column not in frame.columns:
            continue
        stamps = pd.to_datetime(frame[config.timestamp_column], errors="coerce", utc=True)
        rows = frame[stamps.dt.strftime("%Y-%m-%d") == day]
        if len(rows):
            parts.append(rows.drop(columns=[config.timestamp_column]))
            sources.append(path.name)
    if not parts:
        raise MonitoringError(
            f"no data landed for {day} in {folder} (expected {day}.parquet / {day}.csv, or rows "
            f"with {config.timestamp_column!r} on that day)"
        )
    return pd.concat(parts, ignore_index=True), f"{folder} ({', '.join(sources)})"


def batch_path(evidently: EvidentlyResource, partition_key: str) -> Path:
    return evidently.partition_dir(partition_key) / BATCH_FILE


# ---- assets ----------------------------------------------------------------------------------


@dg.asset(
    group_name="monitoring",
    kinds={"pandas"},
    code_version=MONITORING_CODE_VERSION,
    partitions_def=daily_partitions,
    description="A day's inference batch (landing folder or simulator), validated against the "
    "champion's training schema before anything is written.",
)
def inference_batch(
    context: dg.AssetExecutionContext,
    config: InferenceBatchConfig,
    evidently: EvidentlyResource,
    mlflow: MlflowResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    from efficientai_assets.defs.data.datasets import DatasetError

    day = context.partition_key
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
    path = batch_path(evidently, day)
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
    mlflow: MlflowResource, version: "ModelVersion", frame: "pd.DataFrame"
) -> float:
    """Accuracy of the champion on the labelled rows of ``frame``."""
    import mlflow as mlflow_lib
    import numpy as np

    mlflow.client()
    labelled = frame[frame[LABEL_COLUMN].notna()]
    model = mlflow_lib.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    # The model's signature takes float32 features; landed files often carry float64 or int.
    predicted = model.predict(labelled.drop(columns=[LABEL_COLUMN]).astype(np.float32))
    truth = labelled[LABEL_COLUMN].to_numpy(dtype=np.int64)
    return float((np.asarray(predicted["label"]).astype(np.int64) == truth).mean())


@dg.asset(
    group_name="monitoring",
    kinds={"evidently"},
    code_version=MONITORING_CODE_VERSION,
    partitions_def=daily_partitions,
    deps=[inference_batch],
    check_specs=[
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset="drift_report",
            description="The share of drifted columns stays under the configured threshold.",
        )
    ],
    description="Evidently DataDriftPreset of the day's batch against the champion's training "
    "split; HTML + JSON under reports/<day>/; champion accuracy when labels exist.",
)
def drift_report(
    context: dg.AssetExecutionContext,
    evidently: EvidentlyResource,
    mlflow: MlflowResource,
    dvc: DvcResource,
) -> dg.MaterializeResult:
    day = context.partition_key
    path = batch_path(evidently, day)
    import pandas as pd

    if not path.is_file():
        raise MonitoringError(f"no batch for {day} at {path}: materialize inference_batch first")
    batch = pd.read_parquet(path)
    version, profile, origin = reference_profile(mlflow, dvc, evidently)
    try:
        result = evidently.compute(profile, batch, profile.schema)
    except DriftInputError as error:
        raise MonitoringError(f"bad inference batch {path}: {error}") from error
    html_path, json_path = result.save(evidently.partition_dir(day), REPORT_STEM)
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


def append_audit_record(evidently: EvidentlyResource, record: dict[str, Any]) -> Path:
    """Append one JSON line to ``<reports>/retraining_audit.jsonl``, unless a line with the
    same ``run_id`` is already there: a retried or restarted sensor tick re-audits a run, and
    the trail must still hold it once."""
    path = evidently.reports_root() / AUDIT_FILE
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
