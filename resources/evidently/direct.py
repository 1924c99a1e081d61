"""Drift verdicts computed directly, with Evidently's own statistics, for the methods it implements
in a few lines: the normed Wasserstein distance (the default) and the two-sample
Kolmogorov–Smirnov test.

Evidently costs seconds per process to import and about a second per report in fixed work
(per-column widgets, histograms, correlations) whatever the data size; for a daily batch of a
few hundred rows that is nearly all of the drift step. The verdict itself needs only, per column,
the finite values of both sides (Evidently drops NaN and ±inf the same way) and

- ``wasserstein``: ``W1(reference, current) / max(std(reference), 0.001)``, drifted when
  ``>= threshold`` (Evidently's ``wasserstein_distance_norm``; W1 as SciPy computes it);
- ``ks``: SciPy's ``ks_2samp`` p-value, drifted when ``<= threshold``;

and the drift share is drifted columns / columns, as Evidently's ``DriftedColumnsCount``. The
rows are sampled exactly as :func:`resources.evidently.engine.compute_drift` samples them, so the
Evidently report rendered afterwards (:mod:`resources.evidently.render`) sees the same data and
must reach the same verdict; tests compare the two column by column. Needs numpy and pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from resources.evidently.engine import error_bound
from resources.evidently.profile import sample_current
from resources.evidently.types import (
    ColumnDrift,
    DriftInputError,
    DriftResult,
    DriftSchema,
    DriftSettings,
    ReferenceProfile,
)

DIRECT_METHODS = frozenset({"wasserstein", "ks"})
_MIN_NORM = 0.001  # Evidently's floor on the reference std


def supports(schema: DriftSchema, settings: DriftSettings) -> bool:
    """Whether every column's test is one this module computes (numerical columns only)."""
    return not schema.categorical and settings.numerical_method in DIRECT_METHODS


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """The first Wasserstein distance of two 1-D samples (SciPy's algorithm: the area between
    the two empirical CDFs)."""
    u_sorted, v_sorted = np.sort(u), np.sort(v)
    values = np.sort(np.concatenate([u_sorted, v_sorted]))
    deltas = np.diff(values)
    u_cdf = np.searchsorted(u_sorted, values[:-1], side="right") / u_sorted.size
    v_cdf = np.searchsorted(v_sorted, values[:-1], side="right") / v_sorted.size
    return float(np.sum(np.abs(u_cdf - v_cdf) * deltas))


def _finite(values: pd.Series) -> np.ndarray:
    array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return array[np.isfinite(array)]


def column_score(
    method: str, reference: pd.Series, current: pd.Series, threshold: float
) -> tuple[float, bool]:
    """One column's score and whether it drifted, as Evidently's test decides it."""
    ref, cur = _finite(reference), _finite(current)
    if ref.size == 0 or cur.size == 0:
        side = "reference" if ref.size == 0 else "current"
        raise DriftInputError(f"column {reference.name!r} has no finite value in the {side} data")
    if method == "wasserstein":
        score = wasserstein_1d(ref, cur) / max(float(np.std(ref)), _MIN_NORM)
        return score, score >= threshold
    if method == "ks":
        from scipy.stats import ks_2samp

        p_value = float(ks_2samp(ref, cur)[1])
        return p_value, p_value <= threshold
    raise ValueError(f"no direct computation for drift method {method!r}")


def compute_direct(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    schema: DriftSchema,
    settings: DriftSettings,
) -> DriftResult:
    """The drift verdict of ``current`` against ``profile`` without Evidently: validated and
    sampled as :func:`~resources.evidently.engine.compute_drift` does, no report attached."""
    if not supports(schema, settings):
        raise ValueError(
            f"direct drift covers numerical columns with {sorted(DIRECT_METHODS)}, not "
            f"{settings.numerical_method!r} or categorical columns: use compute_drift"
        )
    current_sample, eps_cur = sample_current(current, schema, settings, profile)
    method, threshold = settings.numerical_method, settings.numerical_threshold
    columns = []
    for column in schema.features:
        score, drifted = column_score(
            method, profile.sample[column], current_sample[column], threshold
        )
        columns.append(
            ColumnDrift(
                column=column,
                column_type="numerical",
                method=method,
                score=score,
                score_kind="p_value" if method == "ks" else "distance",
                threshold=threshold,
                drifted=drifted,
                error_bound=error_bound(column, method, profile, current, eps_cur),
            )
        )
    count = sum(c.drifted for c in columns)
    return DriftResult(
        columns=tuple(columns),
        drift_share=count / len(columns),
        drifted_count=count,
        drift_share_threshold=settings.drift_share_threshold,
        reference_rows=profile.rows,
        current_rows=len(current),
        reference_rows_used=len(profile.sample),
        current_rows_used=len(current_sample),
        cdf_error_bound=max(profile.cdf_error, eps_cur),
        settings=settings,
    )
