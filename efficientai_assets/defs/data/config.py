"""Run config of the data assets."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from efficientai_assets.names import LABEL_COLUMN


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
