"""Run config of the data assets."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from efficientai_assets.defs.data.datasets import TableLimits
from efficientai_assets.names import LABEL_COLUMN


class RawDatasetConfig(dg.Config):
    """Where the raw data comes from."""

    source_path: str | None = Field(
        default=None,
        description="CSV or Parquet file; empty uses the built-in sample (scikit-learn digits).",
    )
    label_column: str = Field(default=LABEL_COLUMN, description="Name of the class column.")
    # Bounds on source_path, checked from its size, header or footer before it is parsed.
    max_bytes: int = Field(default=TableLimits.max_bytes, gt=0, description="Largest file size.")
    max_columns: int = Field(default=TableLimits.max_columns, gt=1, description="Most columns.")
    max_rows: int = Field(default=TableLimits.max_rows, gt=0, description="Most data rows.")

    def limits(self) -> TableLimits:
        return TableLimits(self.max_bytes, self.max_columns, self.max_rows)


class SplitConfig(dg.Config):
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=0.9)
    seed: int = Field(default=42, description="Seed of the stratified shuffle split.")
