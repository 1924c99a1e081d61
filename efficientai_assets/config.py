"""Names shared by assets, checks, sensors and the client, and the run config of each asset."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

# Registered model (prefixed by the MLflow resource's project namespace) and its aliases.
MODEL_NAME = "digits-classifier"
CHALLENGER_ALIAS = "challenger"
CHAMPION_ALIAS = "champion"

# Experiments (prefixed by the namespace).
TRAINING_EXPERIMENT = "training"

# Paths inside the DVC data registry, relative to its root (prefixed by the namespace).
RAW_DATASET_DIR = "raw"
RAW_DATASET_FILE = "dataset.parquet"
SPLITS_DIR = "splits"
TRAIN_SPLIT_FILE = "train.parquet"
VALIDATION_SPLIT_FILE = "validation.parquet"
LABEL_COLUMN = "label"

# Dagster pool shared by heavy MLX work (limit set in the home's dagster.yaml).
HEAVY_POOL = "heavy"

# Tags on MLflow runs and model versions.
TAG_FINGERPRINT = "efficientai.fingerprint"
TAG_DATA_MD5 = "efficientai.data_md5"
TAG_CODE_VERSION = "efficientai.code_version"
TAG_CONFIG_HASH = "efficientai.config_hash"
TAG_GIT_SHA = "efficientai.git_sha"
TAG_QUALITY = "efficientai.quality_check"
TAG_VAL_ACCURACY = "efficientai.val_accuracy"
TAG_VAL_LOSS = "efficientai.val_loss"
# Set on a version a rollback moved away from: never promoted again by the pipeline.
TAG_ROLLED_BACK = "efficientai.rolled_back"
TAG_DAGSTER_RUN_ID = "dagster.run_id"
TAG_DAGSTER_ASSET_KEY = "dagster.asset_key"


class RawDatasetConfig(dg.Config):
    """Where the raw data comes from."""

    source_path: str | None = Field(
        default=None,
        description="CSV or Parquet file; empty uses the built-in sample (scikit-learn digits).",
    )
    label_column: str = Field(default=LABEL_COLUMN, description="Name of the class column.")


class SplitConfig(dg.Config):
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    seed: int = Field(default=42, description="Seed of the stratified shuffle split.")


class TrainingConfig(dg.Config):
    """Hyperparameters of the MLX MLP, plus the quality floor of its blocking check."""

    epochs: int = Field(default=20, ge=1, le=10_000)
    batch_size: int = Field(
        default=0, ge=0, description="0 takes the hardware resource's recommendation."
    )
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    hidden_units: list[int] = Field(default=[256, 128], min_length=1)
    seed: int = 0
    min_validation_accuracy: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Floor of the blocking quality check."
    )
    priority: str = Field(
        default="normal",
        pattern="^(normal|high)$",
        description="Gate priority: 'normal', or 'high' (may run at 'fair').",
    )
    timeout_seconds: float = Field(
        default=3600.0, gt=0, description="Wall-clock limit of the training process."
    )
    force_retrain: bool = Field(
        default=False, description="Train even when an identical registered version exists."
    )

    def training_fingerprint_fields(self) -> dict[str, object]:
        """What decides the trained weights (and so the memoization key)."""
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "hidden_units": list(self.hidden_units),
            "seed": self.seed,
        }
