"""Reading and validating tabular datasets before anything is written or versioned.

A dataset is a frame of numeric feature columns plus one integer label column. Every rule a bad file
could break has its own message naming the file, the column and the problem. A file's size, columns
and rows are bounded (``TableLimits``) and checked before it is parsed in full: a small file with a
million columns must not take minutes and gigabytes to refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SAMPLE_LABEL_COLUMN = "label"


class DatasetError(ValueError):
    """The dataset cannot be used; the message names the problem."""


@dataclass(frozen=True)
class TableLimits:
    """The largest file ``read_table`` parses (raw dataset config sets them per run)."""

    max_bytes: int = 1 << 30
    max_columns: int = 10_000
    max_rows: int = 10_000_000


def sample_digits() -> pd.DataFrame:
    """scikit-learn's 8×8 digits (1,797 rows, shipped inside the package: no download)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype(np.float32), columns=[f"pixel_{i}" for i in range(64)])
    frame[SAMPLE_LABEL_COLUMN] = digits.target.astype(np.int64)
    return frame


def read_table(path: str | Path, limits: TableLimits | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file, with errors that say which file and why; a file over
    ``limits`` is refused from its size, header or metadata before it is parsed in full."""
    import pandas as pd

    from efficientai_assets.defs.data.bounds import csv_columns_problem, parquet_problem, too_large

    limits = limits or TableLimits()
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(f"data file not found: {path}")
    if not path.is_file():
        raise DatasetError(f"data path is not a file: {path}")
    size = path.stat().st_size
    if size == 0:
        raise DatasetError(f"data file is empty: {path}")
    if size > limits.max_bytes:
        raise DatasetError(too_large(path, f"{size} bytes", limits.max_bytes, "max_bytes"))
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            problem = csv_columns_problem(path, limits.max_columns)
            if problem is not None:
                raise DatasetError(problem)
            frame = pd.read_csv(path, nrows=limits.max_rows + 1)
            if len(frame) > limits.max_rows:
                found = f"more than {limits.max_rows} rows"
                raise DatasetError(too_large(path, found, limits.max_rows, "max_rows"))
            return frame
        if suffix in {".parquet", ".pq"}:
            problem = parquet_problem(path, limits.max_columns, limits.max_rows)
            if problem is not None:
                raise DatasetError(problem)
            return pd.read_parquet(path)
    except DatasetError:
        raise
    except PermissionError as error:
        raise DatasetError(f"data file is not readable: {path} ({error})") from error
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, ValueError) as error:
        raise DatasetError(f"data file could not be parsed: {path} ({error})") from error
    raise DatasetError(f"unsupported data file type {suffix!r} (use .csv or .parquet): {path}")


def validate_dataset(frame: pd.DataFrame, label_column: str, source: str) -> pd.DataFrame:
    """Check shape, label and features; return the frame with float32 features and int64 labels."""
    import numpy as np
    import pandas as pd

    if frame.empty or len(frame.columns) == 0:
        raise DatasetError(f"{source} has no rows")
    if label_column not in frame.columns:
        raise DatasetError(
            f"{source} has no label column {label_column!r} (columns: {list(frame.columns)[:10]})"
        )
    feature_columns = [c for c in frame.columns if c != label_column]
    if not feature_columns:
        raise DatasetError(f"{source} has a label column but no feature columns")
    non_numeric = [c for c in feature_columns if not pd.api.types.is_numeric_dtype(frame[c])]
    non_numeric += [c for c in feature_columns if pd.api.types.is_bool_dtype(frame[c])]
    if non_numeric:
        raise DatasetError(f"{source} has non-numeric feature columns: {sorted(set(non_numeric))}")
    features = frame[feature_columns].to_numpy(dtype=np.float64)
    # Features are stored and trained as float32: 1e39 is finite here and infinite there.
    float32_max = float(np.finfo(np.float32).max)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(features) | (np.abs(features) > float32_max)
    if bad.any():
        rows, cols = np.nonzero(bad)
        columns = sorted({feature_columns[j] for j in cols})
        value = float(features[rows[0], cols[0]])
        why = "NaN or infinite" if not np.isfinite(value) else "beyond the float32 range"
        raise DatasetError(
            f"{source} has {int(bad.sum())} NaN or infinite feature values in columns "
            f"{columns[:10]} as float32, the type features are stored in (beyond "
            f"±{float32_max:.4g} is infinite); first: the cell at row {int(rows[0])} (counted "
            f"from 0 after the header), column {feature_columns[cols[0]]!r} holds {value!r}, "
            f"{why}. Fix or drop those rows"
        )
    labels = frame[label_column]
    if labels.isna().any():
        raise DatasetError(f"{source} has {int(labels.isna().sum())} missing labels")
    if not pd.api.types.is_integer_dtype(labels):
        as_float = pd.to_numeric(labels, errors="coerce")
        if as_float.isna().any() or not np.all(np.mod(as_float, 1) == 0):
            raise DatasetError(f"{source} label column {label_column!r} must hold integer classes")
        labels = as_float
    if labels.nunique() < 2:
        raise DatasetError(f"{source} has fewer than two classes in {label_column!r}")
    clean = frame[feature_columns].astype(np.float32)
    clean[label_column] = labels.astype(np.int64).to_numpy()
    return clean.reset_index(drop=True)


def split_features(
    frame: pd.DataFrame, label_column: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import numpy as np

    feature_columns = [c for c in frame.columns if c != label_column]
    return (
        frame[feature_columns].to_numpy(dtype=np.float32),
        frame[label_column].to_numpy(dtype=np.int64),
        feature_columns,
    )
