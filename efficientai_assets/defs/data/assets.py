"""Data assets: the raw dataset and its train/validation splits, versioned in the DVC registry."""

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from efficientai_assets.defs.data.config import RawDatasetConfig, SplitConfig
from efficientai_assets.names import (
    RAW_DATASET_DIR,
    RAW_DATASET_FILE,
    SPLITS_DIR,
    TRAIN_SPLIT_FILE,
    VALIDATION_SPLIT_FILE,
)
from resources.dvc.resource import DvcResource, DvcVersion

if TYPE_CHECKING:
    import pandas as pd

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
def raw_dataset(
    context: dg.AssetExecutionContext, config: RawDatasetConfig, dvc: DvcResource
) -> dg.MaterializeResult:
    from efficientai_assets.defs.data.datasets import read_table, sample_digits, validate_dataset

    if config.source_path:
        source = config.source_path
        frame = validate_dataset(read_table(config.source_path), config.label_column, source)
    else:
        source = "built-in sample (scikit-learn digits)"
        frame = validate_dataset(sample_digits(), config.label_column, source)
    if config.label_column != "label":
        frame = frame.rename(columns={config.label_column: "label"})

    relative = dvc.project_path(RAW_DATASET_DIR)
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
            "classes": dg.MetadataValue.int(int(frame["label"].nunique())),
            "preview": _preview(frame),
            **_version_metadata(version),
        },
    )


@dg.asset(
    group_name="data",
    kinds={"dvc", "pandas"},
    code_version=DATA_CODE_VERSION,
    deps=[raw_dataset],
    description="Seeded, stratified train/validation splits of the raw dataset, versioned together.",
)
def dataset_splits(
    context: dg.AssetExecutionContext, config: SplitConfig, dvc: DvcResource
) -> dg.MaterializeResult:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    raw = dvc.current_version(dvc.project_path(RAW_DATASET_DIR))
    if raw is None:
        raise dg.Failure(f"no versioned raw dataset in {dvc.root()}: materialize raw_dataset first")
    with tempfile.TemporaryDirectory(prefix="efficientai-raw-") as scratch:
        raw_folder = dvc.snapshot(raw, Path(scratch) / "raw")
        frame = pd.read_parquet(raw_folder / RAW_DATASET_FILE)
    train, validation = train_test_split(
        frame,
        test_size=config.validation_fraction,
        random_state=config.seed,
        stratify=frame["label"],
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
                train["label"].value_counts().sort_index().to_frame("train_rows").to_markdown()
            ),
            **_version_metadata(version),
        },
    )
