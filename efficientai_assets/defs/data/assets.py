"""Data assets: the raw dataset and its train/validation splits, versioned in the DVC registry."""

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from efficientai_assets.defs.data.config import RawDatasetConfig, SplitConfig
from efficientai_assets.defs.data.memo import (
    INPUT_FINGERPRINT,
    memoized_result,
    raw_source_fingerprint,
    splits_fingerprint,
    unchanged_version,
)
from efficientai_assets.names import (
    LABEL_COLUMN,
    RAW_DATASET_DIR,
    RAW_DATASET_FILE,
    SPLITS_DIR,
    TAG_TRIGGER,
    TRAIN_SPLIT_FILE,
    VALIDATION_SPLIT_FILE,
)
from resources.dvc.resource import DvcResource, DvcVersion
from resources.store_retry import retry_transient_store_errors

if TYPE_CHECKING:
    import pandas as pd

    from efficientai_assets.defs.monitoring.retraining import RetrainingRequest

DATA_CODE_VERSION = "1"


def _version_metadata(version: DvcVersion) -> dict[str, dg.MetadataValue]:
    return {
        "dvc_md5": dg.MetadataValue.text(version.md5),
        "dvc_path": dg.MetadataValue.path(version.path),
        "dvc_remote": dg.MetadataValue.text(f"{version.remote} ({version.remote_url})"),
        "registry_commit": dg.MetadataValue.text(version.commit),
        "new_version": dg.MetadataValue.bool(version.changed),
        "size_bytes": dg.MetadataValue.int(version.size_bytes),
    }


def _preview(frame: "pd.DataFrame", rows: int = 5, columns: int = 8) -> dg.MetadataValue:
    shown = [*frame.columns[: columns - 1], frame.columns[-1]]
    return dg.MetadataValue.md(frame[shown].head(rows).to_markdown(index=False))


@dg.asset(
    group_name="data",
    kinds={"dvc", "pandas"},
    code_version=DATA_CODE_VERSION,
    description="The raw labelled dataset, validated and versioned as Parquet in the DVC registry.",
)
@retry_transient_store_errors
def raw_dataset(
    context: dg.AssetExecutionContext, config: RawDatasetConfig, dvc: DvcResource
) -> dg.MaterializeResult:
    from efficientai_assets.defs.data.datasets import read_table, sample_digits, validate_dataset
    from efficientai_assets.defs.monitoring.retraining import RetrainingRequest

    retraining = RetrainingRequest.from_tags(context.run.tags)
    # Unchanged source bytes, config and code: answer from the last record, before any parsing.
    fingerprint = (
        None
        if retraining is not None
        else raw_source_fingerprint(config.model_dump(), DATA_CODE_VERSION, config.source_path)
    )
    relative = dvc.project_path(RAW_DATASET_DIR)
    known = unchanged_version(context, dvc, relative, fingerprint) if fingerprint else None
    if fingerprint and known:
        carried = ("source", "dagster/row_count", "columns", "classes", "preview")
        return memoized_result(*known, fingerprint, carried, _version_metadata(known[0]))
    extra: dict[str, dg.MetadataValue] = {}
    if retraining is not None:
        frame, source, extra = _retraining_data(context, config, dvc, retraining)
    elif config.source_path:
        source = config.source_path
        frame = read_table(config.source_path, config.limits())
        frame = validate_dataset(frame, config.label_column, source)
    else:
        source = "built-in sample (scikit-learn digits)"
        frame = validate_dataset(sample_digits(), config.label_column, source)
    if config.label_column != LABEL_COLUMN and retraining is None:
        frame = frame.rename(columns={config.label_column: LABEL_COLUMN})

    dvc.ensure_repo()
    staged = dvc.stage()
    frame.to_parquet(staged / RAW_DATASET_FILE, index=False)
    version = dvc.version(relative, f"raw dataset from {source}", staged=staged)
    context.log.info("raw dataset %s: %d rows, md5 %s", source, len(frame), version.md5)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version.md5),
        metadata={
            "source": dg.MetadataValue.text(source),
            "dagster/row_count": dg.MetadataValue.int(len(frame)),
            "columns": dg.MetadataValue.int(len(frame.columns)),
            "classes": dg.MetadataValue.int(int(frame[LABEL_COLUMN].nunique())),
            "preview": _preview(frame),
            **_version_metadata(version),
            **extra,
            INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint or ""),
        },
    )


def _retraining_data(
    context: dg.AssetExecutionContext,
    config: RawDatasetConfig,
    dvc: DvcResource,
    request: "RetrainingRequest",
) -> tuple["pd.DataFrame", str, dict[str, dg.MetadataValue]]:
    """A drift-triggered run's data: the reference window plus the drifted batches its tags name,
    assembled here (in the step, not in the sensor's tick), validated like any source."""
    from efficientai_assets.defs.data.datasets import validate_dataset
    from efficientai_assets.defs.monitoring.retraining import assemble_retraining_data

    if config.source_path:
        raise dg.Failure(
            f"this run was requested by the drift sensor (tag {TAG_TRIGGER}) and assembles its "
            f"own data, but source_path={config.source_path!r} is also set: remove source_path "
            "from the run config, or launch the run without the drift tags"
        )
    source = f"retraining: {request.describe()}"
    with tempfile.TemporaryDirectory(prefix="efficientai-retraining-") as scratch:
        frame, new_rows = assemble_retraining_data(dvc, request, Path(scratch))
    context.log.info("retraining data: %d reference + %d new rows", len(frame) - new_rows, new_rows)
    metadata: dict[str, dg.MetadataValue] = {
        "new_rows": dg.MetadataValue.int(new_rows),
        "drift_partitions": dg.MetadataValue.text(",".join(request.partitions)),
        "replaced_champion": dg.MetadataValue.text(request.champion_version),
        "reference_data_md5": dg.MetadataValue.text(request.data_md5),
    }
    return validate_dataset(frame, LABEL_COLUMN, source), source, metadata


@dg.asset(
    group_name="data",
    kinds={"dvc", "pandas"},
    code_version=DATA_CODE_VERSION,
    deps=[raw_dataset],
    description="Seeded, stratified train/validation splits of the raw dataset, versioned together.",
)
@retry_transient_store_errors
def dataset_splits(
    context: dg.AssetExecutionContext, config: SplitConfig, dvc: DvcResource
) -> dg.MaterializeResult:
    raw = dvc.current_version(dvc.project_path(RAW_DATASET_DIR))
    if raw is None:
        raise dg.Failure(f"no versioned raw dataset in {dvc.root()}: materialize raw_dataset first")
    fingerprint = splits_fingerprint(raw.md5, config.model_dump(), DATA_CODE_VERSION)
    known = unchanged_version(context, dvc, dvc.project_path(SPLITS_DIR), fingerprint)
    if known:
        carried = ("train_rows", "validation_rows", "class_balance")
        return memoized_result(*known, fingerprint, carried, _version_metadata(known[0]))
    import pandas as pd
    from sklearn.model_selection import train_test_split

    with tempfile.TemporaryDirectory(prefix="efficientai-raw-") as scratch:
        raw_folder = dvc.snapshot(raw, Path(scratch) / "raw")
        frame = pd.read_parquet(raw_folder / RAW_DATASET_FILE)
    train, validation = train_test_split(
        frame,
        test_size=config.validation_fraction,
        random_state=config.seed,
        stratify=frame[LABEL_COLUMN],
    )
    relative = dvc.project_path(SPLITS_DIR)
    staged = dvc.stage()
    train.reset_index(drop=True).to_parquet(staged / TRAIN_SPLIT_FILE, index=False)
    validation.reset_index(drop=True).to_parquet(staged / VALIDATION_SPLIT_FILE, index=False)
    version = dvc.version(
        relative,
        f"splits (validation {config.validation_fraction}, seed {config.seed})",
        staged=staged,
    )
    context.log.info(
        "splits: %d train / %d validation, md5 %s", len(train), len(validation), version.md5
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(version.md5),
        metadata={
            "train_rows": dg.MetadataValue.int(len(train)),
            "validation_rows": dg.MetadataValue.int(len(validation)),
            "class_balance": dg.MetadataValue.md(
                train[LABEL_COLUMN].value_counts().sort_index().to_frame("train_rows").to_markdown()
            ),
            **_version_metadata(version),
            INPUT_FINGERPRINT: dg.MetadataValue.text(fingerprint),
        },
    )
