"""The numeric side of drift detection: frame validation, reference profiling, sampling and the
Evidently run.

Everything here needs numpy and pandas (and Evidently, imported inside :func:`compute_drift`), so
it lives apart from :mod:`resources.evidently.resource`, which the Dagster code location imports in
every process; that module imports this one inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from resources.evidently.resource import (
    P_VALUE_METHODS,
    ColumnDrift,
    DriftInputError,
    DriftResult,
    DriftSchema,
    DriftSettings,
    ReferenceProfile,
    _write_text_atomic,
    cdf_error,
)

# ---- validation ------------------------------------------------------------------------------


def _kind(series: pd.Series) -> str:
    """A coarse type: 'number', 'bool', 'string', 'category' or the dtype's name."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_string_dtype(dtype) or dtype is np.dtype(object):
        return "string"
    return str(dtype)


def _category_kind(series: pd.Series) -> str:
    """How categories are coded: 'int', 'float', 'str', 'bool' or 'mixed'."""
    values = series.cat.categories if isinstance(series.dtype, pd.CategoricalDtype) else series
    if pd.api.types.is_bool_dtype(values.dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(values.dtype):
        return "int"
    if pd.api.types.is_float_dtype(values.dtype):
        non_null = pd.Series(values).dropna()
        return "int" if bool(np.all(np.mod(non_null, 1) == 0)) else "float"
    kinds = {type(v).__name__ for v in pd.Series(values).dropna().unique()[:1000]}
    if kinds <= {"str"}:
        return "str"
    if kinds <= {"int", "int64", "int32"}:
        return "int"
    return "mixed"


def _category_values(series: pd.Series) -> list[Any]:
    values = pd.Series(series).dropna().unique()
    return sorted((v.item() if hasattr(v, "item") else v for v in values), key=str)


def _require_values(role: str, column: str, present: int, min_values: int) -> None:
    """Refuse a column with fewer than ``min_values`` non-null values, naming its count."""
    if present == 0:
        raise DriftInputError(f"{role} column {column!r} is entirely NaN")
    if present < min_values:
        raise DriftInputError(
            f"{role} column {column!r} has {present} non-null values; at least {min_values} "
            "are needed for a drift test (a mostly empty column reads as 'no drift')"
        )


def validate_frame(
    frame: pd.DataFrame,
    schema: DriftSchema,
    role: str,
    min_rows: int = 1,
    reference: ReferenceProfile | None = None,
) -> None:
    """Raise :class:`DriftInputError` for anything that would make a drift verdict meaningless.

    Checks: declared columns present (with a hint when one looks renamed), numeric columns
    numeric, no infinite values, at least ``min_rows`` rows and at least ``min_rows`` non-null
    values in every feature column (a mostly empty column would otherwise be tested on a
    handful of values and read as 'no drift'), and — against a reference profile — no type
    change and categories coded the same way. The target may be sparsely labelled; it is only
    refused when entirely NaN. Works column by column, never copying the frame.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DriftInputError(f"{role} must be a pandas DataFrame, got {type(frame).__name__}")
    if frame.columns.has_duplicates:
        dupes = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise DriftInputError(f"{role} has duplicate column names: {dupes}")
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        expected = {*schema.features, *([schema.target] if schema.target else [])}
        unexpected = [str(c) for c in frame.columns if c not in expected]
        hint = f"; it has unexpected columns {unexpected[:10]} (renamed?)" if unexpected else ""
        raise DriftInputError(f"{role} is missing column(s) {missing[:10]}{hint}")
    rows = len(frame)
    if rows == 0:
        raise DriftInputError(f"{role} is empty (0 rows)")
    if rows < min_rows:
        raise DriftInputError(
            f"{role} has {rows} rows; at least {min_rows} are needed for a drift test "
            "(a handful of rows reads as 'no drift' whatever the data)"
        )
    for column in schema.numerical:
        series = frame[column]
        kind = _kind(series)
        if kind != "number":
            was = f" (reference: {reference.dtypes[column]})" if reference is not None else ""
            raise DriftInputError(
                f"{role} column {column!r} has type {series.dtype} ({kind}); "
                f"a numerical column is expected{was}"
            )
        values = series.to_numpy(dtype=np.float64, copy=False)
        _require_values(role, column, rows - int(np.isnan(values).sum()), min_rows)
        if np.isinf(values).any():
            raise DriftInputError(
                f"{role} column {column!r} has {int(np.isinf(values).sum())} infinite values"
            )
    categorical = [*schema.categorical]
    if schema.target is not None and schema.target in frame.columns:
        categorical.append(schema.target)
    for column in categorical:
        series = frame[column]
        present = int(series.count())
        _require_values(role, column, present, 1 if column == schema.target else min_rows)
        if reference is None or column not in reference.categories:
            continue
        coded = _category_kind(series)
        ref_coded = reference.category_kinds[column]
        if coded != ref_coded:
            sample = _category_values(series)[:3]
            ref_sample = list(reference.categories[column][:3])
            raise DriftInputError(
                f"{role} column {column!r} codes its categories as {coded} {sample} but the "
                f"reference codes them as {ref_coded} {ref_sample}: categories coded differently"
            )
        seen = set(_category_values(series))
        if seen and not seen & set(reference.categories[column]):
            raise DriftInputError(
                f"{role} column {column!r} shares no category with the reference "
                f"({sorted(seen, key=str)[:5]} vs {list(reference.categories[column][:5])}): "
                "categories coded differently"
            )


# ---- the reference profile ---------------------------------------------------------------------


def _sample(frame: pd.DataFrame, columns: Sequence[str], max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``columns``; only the sampled rows are copied."""
    if len(frame) <= max_rows:
        return frame.loc[:, list(columns)].reset_index(drop=True)
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame.take(rows).loc[:, list(columns)].reset_index(drop=True)


def build_profile(
    frame: pd.DataFrame, schema: DriftSchema, settings: DriftSettings, key: str = ""
) -> ReferenceProfile:
    """Validate the reference frame, sample it and record what later batches are checked against."""
    validate_frame(frame, schema, "reference", settings.min_rows)
    columns = [*schema.features]
    if schema.target is not None and schema.target in frame.columns:
        columns.append(schema.target)
    sample = _sample(frame, columns, settings.max_rows, settings.seed)
    categorical = [*schema.categorical]
    if schema.target is not None and schema.target in frame.columns:
        categorical.append(schema.target)
    ranges = {}
    for column in schema.numerical:
        values = frame[column].to_numpy(dtype=np.float64, copy=False)
        ranges[column] = (
            float(np.nanmin(values)),
            float(np.nanmax(values)),
            float(np.nanstd(values)),
        )
    return ReferenceProfile(
        key=key or settings.fingerprint(schema),
        schema=schema,
        rows=len(frame),
        sample=sample,
        dtypes={c: str(frame[c].dtype) for c in columns},
        categories={c: tuple(_category_values(frame[c])) for c in categorical},
        category_kinds={c: _category_kind(frame[c]) for c in categorical},
        ranges=ranges,
        cdf_error=cdf_error(len(sample), len(frame), settings.sample_confidence),
    )


def save_profile(profile: ReferenceProfile, folder: Path) -> None:
    """Persist as ``sample.parquet`` + ``profile.json`` (written last, so it marks completion)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"sample.parquet.{os.getpid()}.tmp"
    profile.sample.to_parquet(tmp, index=False)
    os.replace(tmp, folder / "sample.parquet")
    meta = {
        "key": profile.key, "schema": profile.schema.to_json(), "rows": profile.rows,
        "dtypes": profile.dtypes, "categories": {k: list(v) for k, v in profile.categories.items()},
        "category_kinds": profile.category_kinds,
        "ranges": {k: list(v) for k, v in profile.ranges.items()}, "cdf_error": profile.cdf_error,
    }  # fmt: skip
    _write_text_atomic(folder / "profile.json", json.dumps(meta, indent=1, default=str))


def load_profile(folder: Path) -> ReferenceProfile | None:
    """The profile saved in ``folder``, or None when absent or unreadable."""
    try:
        meta = json.loads((folder / "profile.json").read_text())
        sample = pd.read_parquet(folder / "sample.parquet")
        return ReferenceProfile(
            key=meta["key"],
            schema=DriftSchema.from_json(meta["schema"]),
            rows=int(meta["rows"]),
            sample=sample,
            dtypes=dict(meta["dtypes"]),
            categories={k: tuple(v) for k, v in meta["categories"].items()},
            category_kinds=dict(meta["category_kinds"]),
            ranges={k: (v[0], v[1], v[2]) for k, v in meta["ranges"].items()},
            cdf_error=float(meta["cdf_error"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ---- the drift computation ---------------------------------------------------------------------


def _error_bound(
    column: str, method: str, profile: ReferenceProfile, current: pd.DataFrame, eps_cur: float
) -> float | None:
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
    if profile.schema.features != schema.features:
        raise DriftInputError(
            f"the reference profile was built for columns {list(profile.schema.features)[:5]}…, "
            f"not the requested schema"
        )
    validate_frame(current, schema, "current batch", settings.min_rows, profile)
    current_sample = _sample(current, schema.features, settings.max_rows, settings.seed + 1)
    eps_cur = cdf_error(len(current_sample), len(current), settings.sample_confidence)

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
            error_bound=_error_bound(column, scores[column][0], profile, current, eps_cur),
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
