"""Where a day's inference batch comes from: files in a landing folder, or the simulator (the
built-in sample drawn per day, optionally shifted to exercise drift detection).

No assets here (Dagster loads every module of the defs folder); heavy libraries are imported
inside functions.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from efficientai_assets.defs.monitoring.reference import MonitoringError
from efficientai_assets.names import LABEL_COLUMN
from resources.home import default_home

if TYPE_CHECKING:
    import pandas as pd

MONITORING_START_DATE = "2026-01-01"


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


def simulate_batch(config: InferenceBatchConfig, day: str) -> pd.DataFrame:
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


def landing_folder(config: InferenceBatchConfig) -> Path:
    """Where the day's files land: ``landing_dir``, or ``<EFFICIENTAI_HOME>/landing``."""
    if config.landing_dir:
        return Path(config.landing_dir).expanduser()
    return default_home().root / "landing"


def landing_batch(config: InferenceBatchConfig, day: str) -> tuple[pd.DataFrame, str]:
    """``<landing>/<day>.parquet|.csv``, else the rows of any landed file whose timestamp column
    falls on ``day``."""
    import pandas as pd

    from efficientai_assets.defs.data.datasets import read_table

    folder = landing_folder(config)
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
