"""Frame validation before any drift test: what would make a drift verdict meaningless is an
error naming the column, never a quiet "no drift".

Evidently 0.7 infers column types when it is not told, and then silently drops a column missing
from the current data, reports "no drift" on one row, raises a false alarm when categories are
int-coded on one side and strings on the other, and crashes on a column that changed type. Every
frame is therefore checked here against a declared :class:`~resources.evidently.types.DriftSchema`
(and, for a current batch, against the reference profile) first. Needs numpy and pandas: the
resource imports this module inside the functions that use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from resources.evidently.types import DriftInputError, DriftSchema, ReferenceProfile


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


def category_kind(series: pd.Series) -> str:
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


def category_values(series: pd.Series) -> list[Any]:
    """The distinct non-null values as plain Python values, in a stable order (by their text),
    so a profile stored as JSON compares equal to one built in memory."""
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
        coded = category_kind(series)
        ref_coded = reference.category_kinds[column]
        if coded != ref_coded:
            sample = category_values(series)[:3]
            ref_sample = list(reference.categories[column][:3])
            raise DriftInputError(
                f"{role} column {column!r} codes its categories as {coded} {sample} but the "
                f"reference codes them as {ref_coded} {ref_sample}: categories coded differently"
            )
        seen = set(category_values(series))
        if seen and not seen & set(reference.categories[column]):
            raise DriftInputError(
                f"{role} column {column!r} shares no category with the reference "
                f"({sorted(seen, key=str)[:5]} vs {list(reference.categories[column][:5])}): "
                "categories coded differently"
            )
