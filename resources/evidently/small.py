"""Drift on samples too small for the default test: exact and permutation tests, said so.

The default numerical test is a normed Wasserstein distance with a fixed threshold. A distance
has no notion of sample size: a few rows per side give distances that say nothing (two samples of
five from one distribution routinely land far apart), which is why ``DriftSettings.min_rows``
refuses them. A p-value test accounts for the size itself. So when a caller asks for it
(``small_samples=True``) and a frame, or a feature column's non-null values, falls below
``min_rows``, drift is decided instead by

- numerical columns: the two-sample Kolmogorov–Smirnov test, which SciPy computes *exactly*
  (the exact null distribution of the statistic, not the asymptotic one) for samples of this size;
- categorical columns: a permutation test on the total variation distance (Evidently's ``TVD``),
  valid at any size;

each at ``SMALL_SAMPLE_ALPHA`` = 0.05, still through Evidently, and the result carries a
``warnings`` entry saying so: a small sample detects only large shifts. Only what cannot be tested
at all is refused: an empty frame, a column with no finite value, columns missing. Needs numpy and
pandas: the resource imports this module inside the functions that use it.
"""

from __future__ import annotations

import pandas as pd

from resources.evidently.engine import compute_drift
from resources.evidently.types import DriftResult, DriftSchema, DriftSettings
from resources.evidently.validation import validate_frame

SMALL_SAMPLE_ALPHA = 0.05


def sparse_columns(frame: pd.DataFrame, schema: DriftSchema, min_rows: int) -> dict[str, int]:
    """Feature columns of ``frame`` with fewer than ``min_rows`` non-null values, and their
    counts (every feature column when the frame itself is that small)."""
    counts = {}
    for column in schema.features:
        if column in frame.columns:
            present = int(frame[column].count())
            if present < min_rows:
                counts[column] = present
    return counts


def is_small(reference: pd.DataFrame, current: pd.DataFrame, schema: DriftSchema,
             settings: DriftSettings) -> bool:  # fmt: skip
    """Whether either side is below ``settings.min_rows`` (rows, or a feature's values)."""
    return any(
        len(frame) < settings.min_rows or sparse_columns(frame, schema, settings.min_rows)
        for frame in (reference, current)
        if isinstance(frame, pd.DataFrame)
    )


def small_sample_settings(settings: DriftSettings) -> DriftSettings:
    """``settings`` with the tests that are valid at small sizes, and one row as the floor."""
    return settings.model_copy(
        update={
            "numerical_method": "ks",
            "numerical_threshold": SMALL_SAMPLE_ALPHA,
            "categorical_method": "TVD",
            "categorical_threshold": SMALL_SAMPLE_ALPHA,
            "min_rows": 1,
        }
    )


def validate_small_frame(frame: pd.DataFrame, schema: DriftSchema, role: str) -> None:
    """Refuse only what no test can take: not a frame, columns missing or retyped, an empty
    frame, a feature column without a finite value (entirely NaN, or infinite values)."""
    validate_frame(frame, schema, role, min_rows=1)


def warning_for(reference: pd.DataFrame, current: pd.DataFrame, schema: DriftSchema,
                settings: DriftSettings) -> str:  # fmt: skip
    """The ``warnings`` entry of a small-sample result: the sizes, the tests, what they imply."""
    sizes = f"reference {len(reference)} rows, current {len(current)} rows"
    sparse = {
        **sparse_columns(reference, schema, settings.min_rows),
        **sparse_columns(current, schema, settings.min_rows),
    }
    few = "" if len(reference) < settings.min_rows or len(current) < settings.min_rows else (
        f"; columns with fewer than {settings.min_rows} values: {sorted(sparse)[:10]}"
    )  # fmt: skip
    return (
        f"small sample ({sizes}{few}; {settings.min_rows} are needed for the "
        f"{settings.numerical_method} test): drift was decided by exact tests instead — "
        f"two-sample Kolmogorov–Smirnov for numerical columns, a permutation test on the total "
        f"variation distance for categorical ones, each at p < {SMALL_SAMPLE_ALPHA}. A sample "
        "this small detects only large shifts; collect more rows for a finer verdict."
    )


def compute_small_sample_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: DriftSchema,
    settings: DriftSettings | None = None,
) -> DriftResult:
    """Drift of ``current`` against ``reference`` by exact tests, with the ``warnings`` entry."""
    settings = settings or DriftSettings()
    validate_small_frame(reference, schema, "reference")
    validate_small_frame(current, schema, "current batch")
    result = compute_drift(reference, current, schema, small_sample_settings(settings))
    result.warnings = (*result.warnings, warning_for(reference, current, schema, settings))
    return result
