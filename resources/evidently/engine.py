"""The drift computation: both sides validated and sampled within the stated bound, then
Evidently's ``DataDriftPreset`` run with the declared column types and methods.

Evidently takes 13 s to import and numpy/pandas are needed throughout, so this module is imported
by :mod:`resources.evidently.resource` (which the Dagster code location loads in every process)
only inside the functions that compute. Large frames are sampled (see
:mod:`resources.evidently.types`): a Kolmogorov–Smirnov distance then moves by at most ``2 * eps``
and a normed Wasserstein distance by at most ``eps * (range_ref + range_cur) / std_ref``, reported
per column as ``error_bound``. P-value tests on a random sample stay valid tests of the same null
hypothesis; they only lose power.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from resources.evidently.profile import build_profile, sample_current
from resources.evidently.types import (
    P_VALUE_METHODS,
    ColumnDrift,
    DriftResult,
    DriftSchema,
    DriftSettings,
    ReferenceProfile,
)


def error_bound(
    column: str, method: str, profile: ReferenceProfile, current: pd.DataFrame, eps_cur: float
) -> float | None:
    """The bound on a column's score from sampling (0 unsampled; None when not derivable)."""
    eps_ref = profile.cdf_error
    if eps_ref == 0 and eps_cur == 0:
        return 0.0
    if method == "wasserstein" and column in profile.ranges:
        low, high, std = profile.ranges[column]
        values = current[column].to_numpy(dtype=np.float64, copy=False)
        cur_range = float(np.nanmax(values) - np.nanmin(values))
        return (eps_ref * (high - low) + eps_cur * cur_range) / max(std, 0.001)
    return None


def compute_drift(
    reference: pd.DataFrame | ReferenceProfile,
    current: pd.DataFrame,
    schema: DriftSchema,
    settings: DriftSettings | None = None,
) -> DriftResult:
    """Validate both sides, sample them within the error bound, and run Evidently's
    ``DataDriftPreset`` with the declared column types and methods."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    settings = settings or DriftSettings()
    profile = (
        reference
        if isinstance(reference, ReferenceProfile)
        else build_profile(reference, schema, settings)
    )
    current_sample, eps_cur = sample_current(current, schema, settings, profile)

    definition = DataDefinition(
        numerical_columns=list(schema.numerical), categorical_columns=list(schema.categorical)
    )
    preset = DataDriftPreset(
        drift_share=settings.drift_share_threshold,
        num_method=settings.numerical_method,
        num_threshold=settings.numerical_threshold,
        cat_method=settings.categorical_method,
        cat_threshold=settings.categorical_threshold,
    )
    reference_frame = profile.sample.loc[:, list(schema.features)]
    with warnings.catch_warnings():
        # Constant columns make Evidently's plots divide by a zero std; the verdict is unaffected.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = Report([preset], include_tests=True).run(
            Dataset.from_pandas(current_sample, data_definition=definition),
            Dataset.from_pandas(reference_frame, data_definition=definition),
        )
    return _result_from_snapshot(
        snapshot, schema, settings, profile, current, current_sample, eps_cur
    )


def _result_from_snapshot(
    snapshot: Any,
    schema: DriftSchema,
    settings: DriftSettings,
    profile: ReferenceProfile,
    current: pd.DataFrame,
    current_sample: pd.DataFrame,
    eps_cur: float,
) -> DriftResult:
    document = snapshot.dict()
    scores: dict[str, tuple[str, float, float]] = {}
    share: float | None = None
    count = 0
    for metric in document["metrics"]:
        config = metric.get("config", {})
        kind = str(config.get("type", ""))
        if kind.endswith(":DriftedColumnsCount"):
            share, count = float(metric["value"]["share"]), int(metric["value"]["count"])
        elif kind.endswith(":ValueDrift"):
            scores[config["column"]] = (
                str(config["method"]),
                float(metric["value"]),
                float(config["threshold"]),
            )
    drifted: dict[str, bool] = {}
    for test in document["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if str(params.get("type", "")).endswith(":ValueDrift"):
            drifted[params["column"]] = test["status"] == "FAIL"
    missing = [c for c in schema.features if c not in scores or c not in drifted]
    if share is None or missing:
        raise RuntimeError(f"Evidently returned no drift verdict for columns {missing[:10]}")
    columns = tuple(
        ColumnDrift(
            column=column,
            column_type="numerical" if column in schema.numerical else "categorical",
            method=scores[column][0],
            score=scores[column][1],
            score_kind="p_value" if scores[column][0] in P_VALUE_METHODS else "distance",
            threshold=scores[column][2],
            drifted=drifted[column],
            error_bound=error_bound(column, scores[column][0], profile, current, eps_cur),
        )
        for column in schema.features
    )
    return DriftResult(
        columns=columns,
        drift_share=share,
        drifted_count=count,
        drift_share_threshold=settings.drift_share_threshold,
        reference_rows=profile.rows,
        current_rows=len(current),
        reference_rows_used=len(profile.sample),
        current_rows_used=len(current_sample),
        cdf_error_bound=max(profile.cdf_error, eps_cur),
        settings=settings,
        snapshot=snapshot,
    )
