"""The monitoring steps answered from their last record of the same day when nothing they read
changed: ``make run`` launches the monitoring job for the same day again on a re-run.

- ``inference_batch``: the fingerprint covers the config, the day, the built-in sample (or the
  landing folder's files: names, sizes, modification times), the champion and its data version;
  the answer also needs the batch file on disk to hash as recorded.
- ``drift_report``: the fingerprint covers the batch file's hash, the champion and its data
  version and the drift settings; the answer also needs the report whole on disk (the HTML
  rendered), or its child still rendering it. The WARN check is reported again from the record.

The champion is read with ``registry_peek`` (no MLflow). Any miss returns None and the step does
its work; the full step records the fingerprint for the next run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from efficientai_assets.defs.data.memo import (
    INPUT_FINGERPRINT,
    MEMOIZED,
    Record,
    builtin_sample_identity,
    file_sha256,
    recorded_metadata,
)
from efficientai_assets.defs.monitoring.reference import MonitoringError, champion_version
from efficientai_assets.defs.monitoring.sources import InferenceBatchConfig, landing_folder
from efficientai_assets.names import DRIFT_CHECK, TAG_DATA_MD5
from efficientai_assets.provenance import stable_hash
from resources.evidently.render import RENDERED, rendering_alive, report_paths, report_status
from resources.evidently.resource import EvidentlyResource
from resources.mlflow.resource import MlflowResource

BATCH_SHA256 = "batch_sha256"
_REASON = "the same inputs as the last materialization of this day, whose files are in place"


def _champion(mlflow: MlflowResource) -> dict[str, str] | None:
    try:
        version = champion_version(mlflow)
    except MonitoringError:
        return None  # the step itself reports it, in its own order
    return {"version": str(version.version), "data_md5": version.tags[TAG_DATA_MD5]}


def batch_fingerprint(
    config: InferenceBatchConfig, day: str, mlflow: MlflowResource, code_version: str
) -> str | None:
    """What the day's batch is made from; None when it cannot be known cheaply."""
    champion = _champion(mlflow)
    if champion is None:
        return None
    source: Any
    if config.source == "simulator":
        source = builtin_sample_identity()
    else:
        folder = landing_folder(config)
        files = (
            sorted([*folder.glob("*.parquet"), *folder.glob("*.csv")]) if folder.is_dir() else []
        )
        source = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    if source is None:
        return None
    payload = {"config": config.model_dump(), "day": day, "source": source, "code": code_version}
    return stable_hash({**payload, "champion": champion})


def drift_fingerprint(
    batch: Path, mlflow: MlflowResource, evidently: EvidentlyResource, code_version: str
) -> str | None:
    """What the day's drift verdict is computed from; None when it cannot be known cheaply."""
    champion = _champion(mlflow)
    if champion is None or not batch.is_file():
        return None
    return stable_hash(
        {
            "batch": file_sha256(batch),
            "champion": champion,
            "settings": evidently.settings().to_json(),
            "code": code_version,
        }
    )


def _record(context: dg.AssetExecutionContext, day: str, fingerprint: str) -> Record | None:
    record = recorded_metadata(context, context.asset_key.to_user_string(), partition=day)
    if record is None or record.get(INPUT_FINGERPRINT) != fingerprint:
        return None
    return record


def _answer(record: Record) -> dict[str, Any]:
    return {
        **record.carry(record.metadata),
        MEMOIZED: dg.MetadataValue.bool(True),
        "reason": dg.MetadataValue.text(_REASON),
    }


def recall_batch(
    context: dg.AssetExecutionContext, fingerprint: str, path: Path
) -> dg.MaterializeResult | None:
    """The day's batch, as last written, when made from the same inputs and still on disk."""
    record = _record(context, context.partition_key, fingerprint)
    if record is None or not path.is_file() or file_sha256(path) != record.get(BATCH_SHA256):
        return None
    return dg.MaterializeResult(metadata=_answer(record))


def recall_drift(
    context: dg.AssetExecutionContext, fingerprint: str, folder: Path, stem: str
) -> dg.MaterializeResult | None:
    """The day's drift verdict and check, as last decided, when computed from the same batch,
    champion and settings and its report is whole on disk."""
    record = _record(context, context.partition_key, fingerprint)
    html, document = report_paths(folder, stem)
    if record is None:
        return None
    whole = html.is_file() and report_status(document).get("status") == RENDERED
    if not whole and not rendering_alive(folder, stem):
        return None  # the report is gone or failed: decide and render again
    share, threshold = record.get("drift_share"), record.get("drift_share_threshold")
    if not isinstance(share, float) or not isinstance(threshold, float):
        return None
    passed = not record.get("dataset_drift", share >= threshold)
    return dg.MaterializeResult(
        metadata={**_answer(record), "evidently_report": "rendered" if whole else "rendering"},
        check_results=[
            dg.AssetCheckResult(
                check_name=DRIFT_CHECK,
                passed=passed,
                severity=dg.AssetCheckSeverity.WARN,
                description=(
                    f"drift share {share:.3f} {'<' if passed else '>='} threshold "
                    f"{threshold:.3f} (unchanged since the last materialization of this day)"
                ),
                metadata={
                    "drift_share": share,
                    "threshold": threshold,
                    "drifted_count": record.get("drifted_count", 0),
                    "report_path": dg.MetadataValue.path(str(html)),
                },
            )
        ],
    )
