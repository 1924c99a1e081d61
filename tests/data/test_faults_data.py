"""Numbers that are not numbers, and files too large to parse: the raw dataset refuses them with a
message naming the cell or the bound, before anything is parsed in full or versioned (issue 16).

Everything runs on the real raw_dataset asset, a real DVC registry and real files; the wide file is
the issue's case (a million columns in under 30 MB), refused from its header alone.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import PipelineHome

from efficientai_assets.defs.data.assets import raw_dataset
from efficientai_assets.defs.data.datasets import (
    DatasetError,
    TableLimits,
    read_table,
    validate_dataset,
)
from resources.dvc.resource import DvcResource

HomeFactory = Callable[[str], PipelineHome]


def _frame(rows: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    frame["label"] = np.arange(rows) % 2
    return frame


def _materialize_raw(pipeline: PipelineHome, path: Path, **config: Any) -> tuple[bool, str]:
    result = pipeline.materialize(
        [raw_dataset],
        run_config={"ops": {"raw_dataset": {"config": {"source_path": str(path), **config}}}},
        raise_on_error=False,
    )
    failure = result.failure_data_for_node("raw_dataset")
    return result.success, str(failure.error) if failure is not None else ""


def _nothing_versioned(pipeline: PipelineHome) -> bool:
    dvc: DvcResource = pipeline.resources["dvc"]
    return (
        dvc.current_version(dvc.project_path("raw")) is None
        and not (dvc.root() / dvc.project_path("raw")).exists()
    )


@pytest.mark.parametrize("value", ["1e39", "-1e39", "3.5e38"])
def test_a_value_finite_in_float64_but_infinite_in_float32_is_refused_naming_its_cell(
    home_factory: HomeFactory, tmp_path: Path, value: str
) -> None:
    path = tmp_path / "huge.csv"
    _frame().to_csv(path, index=False)
    lines = path.read_text().splitlines()
    cells = lines[6].split(",")  # data row 5 (counted from 0 after the header)
    cells[1] = value  # column "b"
    lines[6] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with np.errstate(over="ignore"):
        assert np.isfinite(float(value)) and not np.isfinite(np.float32(float(value)))

    pipeline = home_factory("huge")
    success, message = _materialize_raw(pipeline, path)
    assert not success
    assert "row 5" in message and "column 'b'" in message and "float32" in message
    assert str(float(value)) in message
    assert _nothing_versioned(pipeline)


def test_the_largest_float32_value_is_still_accepted() -> None:
    frame = _frame()
    frame.loc[2, "a"] = float(np.finfo(np.float32).max)
    clean = validate_dataset(frame, "label", "edge.csv")
    assert np.isfinite(clean["a"].to_numpy()).all()


def test_nan_is_refused_naming_its_cell() -> None:
    frame = _frame()
    frame.loc[7, "c"] = np.nan
    with pytest.raises(DatasetError, match=r"row 7 .*column 'c' holds nan, NaN or infinite"):
        validate_dataset(frame, "label", "nan.csv")


def _wide_csv(path: Path, columns: int, rows: int) -> Path:
    header = ",".join(f"c{i}" for i in range(columns))
    row = ",".join(["0.5"] * columns)
    path.write_text("\n".join([header, *([row] * rows)]) + "\n")
    return path


def test_a_million_column_csv_is_refused_from_its_header_without_parsing_it(
    home_factory: HomeFactory, tmp_path: Path
) -> None:
    path = _wide_csv(tmp_path / "wide.csv", columns=1_000_000, rows=5)
    assert 20e6 < path.stat().st_size < 30e6  # the case: ~28 MB, a million columns

    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match="more than 10000 columns") as refused:
            read_table(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "max_columns" in str(refused.value) and str(path) in str(refused.value)
    # Parsed in full it took gigabytes; refused from its header it reads one chunk past the bound.
    assert peak < 16 * 1024 * 1024

    pipeline = home_factory("wide")
    success, message = _materialize_raw(pipeline, path)
    assert not success and "more than 10000 columns" in message
    assert _nothing_versioned(pipeline)


def test_quoted_header_fields_may_hold_commas_and_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "quoted.csv"
    path.write_text('"a,1","b\n2",label\n1,2,0\n3,4,1\n')
    assert list(read_table(path, TableLimits(max_columns=3)).columns) == ["a,1", "b\n2", "label"]
    with pytest.raises(DatasetError, match="more than 2 columns"):
        read_table(path, TableLimits(max_columns=2))


def test_rows_and_bytes_are_bounded_for_csv_and_parquet(tmp_path: Path) -> None:
    frame = _frame(rows=50)
    csv, parquet = tmp_path / "rows.csv", tmp_path / "rows.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet, index=False)
    for path in (csv, parquet):
        assert len(read_table(path, TableLimits(max_rows=50))) == 50
        with pytest.raises(DatasetError, match=r"rows, the bound is 49.*max_rows"):
            read_table(path, TableLimits(max_rows=49))
        with pytest.raises(DatasetError, match=r"bytes, the bound is 100.*max_bytes"):
            read_table(path, TableLimits(max_bytes=100))
    with pytest.raises(DatasetError, match=r"4 columns, the bound is 3.*max_columns"):
        read_table(parquet, TableLimits(max_columns=3))


def test_the_bounds_are_raw_dataset_run_config(home_factory: HomeFactory, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    _frame(rows=50).to_csv(path, index=False)
    pipeline = home_factory("bounds")
    success, message = _materialize_raw(pipeline, path, max_rows=20)
    assert not success and "more than 20 rows" in message and "max_rows" in message
    assert _nothing_versioned(pipeline)

    success, message = _materialize_raw(pipeline, path, max_rows=50, max_columns=4)
    assert success, message
