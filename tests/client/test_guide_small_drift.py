"""Drift on small samples: frames below ``min_rows`` are decided by tests valid at that size (the
exact two-sample Kolmogorov–Smirnov test; a permutation test for categories), through Evidently,
with a ``warnings`` entry saying the sample is small; only what cannot be tested is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from resources.evidently.resource import DriftInputError, DriftSchema, generate_drift_report


def small(current: pd.DataFrame, reference: pd.DataFrame, **kwargs: object) -> dict[str, Any]:
    return generate_drift_report(current, reference, small_samples=True, **kwargs)  # type: ignore[arg-type]


def test_five_rows_apart_drift_by_the_exact_test_and_say_the_sample_is_small(
    tmp_path: Path,
) -> None:
    reference = pd.DataFrame({"feature": [1, 2, 3, 4, 5]})
    report = small(pd.DataFrame({"feature": [6, 7, 8, 9, 10]}), reference, output_dir=tmp_path)
    assert report["drift_detected"] is True and report["drift_score"] == 1.0
    (column,) = report["columns"]
    assert (column["method"], column["score_kind"], column["threshold"]) == ("ks", "p_value", 0.05)
    # Exact: the two orderings that separate the samples completely, out of C(10, 5).
    assert column["score"] == pytest.approx(2 / 252)
    (warning,) = report["warnings"]
    assert warning.startswith("small sample (reference 5 rows, current 5 rows;")
    assert "Kolmogorov–Smirnov" in warning and "only large shifts" in warning
    written = json.loads(Path(report["json_path"]).read_text())["summary"]
    assert written["warnings"] == report["warnings"] and Path(report["html_path"]).is_file()


def test_small_samples_of_one_distribution_and_single_rows_read_no_drift_honestly() -> None:
    rng = np.random.default_rng(3)
    same = small(pd.DataFrame({"x": rng.normal(size=12)}), pd.DataFrame({"x": rng.normal(size=12)}))
    assert same["drift_detected"] is False and same["warnings"]
    single = small(pd.DataFrame({"x": [100.0]}), pd.DataFrame({"x": [0.0]}))
    # One value against one cannot show drift at p < 0.05: the test says so (p = 1).
    assert single["columns"][0]["score"] == 1.0 and single["drift_detected"] is False
    assert "reference 1 rows, current 1 rows" in single["warnings"][0]


def test_small_categorical_columns_use_the_permutation_test() -> None:
    schema = DriftSchema(numerical=("size",), categorical=("colour",))
    reference = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] * 2,
                              "colour": ["red"] * 12})  # fmt: skip
    current = pd.DataFrame({"size": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5] * 2,
                            "colour": ["red"] + ["blue"] * 11})  # fmt: skip
    report = small(current, reference, schema=schema)
    by_column = {c["column"]: c for c in report["columns"]}
    assert by_column["colour"]["method"] == "TVD" and by_column["colour"]["drifted"] is True
    assert by_column["size"]["method"] == "ks" and by_column["size"]["drifted"] is False


def test_a_sparse_column_in_a_large_frame_takes_the_small_sample_path() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    current = pd.DataFrame(rng.normal(size=(300, 2)), columns=["a", "b"])
    current.loc[10:, "b"] = np.nan  # 10 values left in b
    report = small(current, reference)
    assert {c["method"] for c in report["columns"]} == {"ks"}
    assert "columns with fewer than 30 values: ['b']" in report["warnings"][0]
    with pytest.raises(DriftInputError, match="'b' has 10 non-null values; at least 30"):
        generate_drift_report(current, reference)  # without the opt-in: refused, as before


def test_large_frames_keep_the_default_test_and_no_warning() -> None:
    rng = np.random.default_rng(9)
    reference = pd.DataFrame(rng.normal(size=(500, 1)), columns=["x"])
    report = small(pd.DataFrame(rng.normal(size=(500, 1)), columns=["x"]), reference)
    assert report["columns"][0]["method"] == "wasserstein" and report["warnings"] == []


@pytest.mark.parametrize(
    ("current", "message"),
    [
        (pd.DataFrame({"x": pd.Series([], dtype=float)}), r"empty \(0 rows\)"),
        (pd.DataFrame({"x": [np.nan, np.nan]}), r"'x' is entirely NaN"),
        (pd.DataFrame({"x": [np.inf, 1.0]}), r"'x' has 1 infinite values"),
        (pd.DataFrame({"y": [1.0, 2.0]}), r"missing column\(s\) \['x'\]"),
        (pd.DataFrame({"x": ["a", "b"]}), r"'x' has type object"),
    ],
    ids=["empty", "no-finite-value", "infinite", "no-common-column", "type-change"],
)
def test_only_what_cannot_be_tested_is_refused(current: pd.DataFrame, message: str) -> None:
    with pytest.raises(DriftInputError, match=message):
        small(current, pd.DataFrame({"x": [1.0, 2.0, 3.0]}))


def test_without_the_opt_in_small_frames_are_refused_as_before() -> None:
    with pytest.raises(DriftInputError, match="has 5 rows; at least 30"):
        generate_drift_report(pd.DataFrame({"x": range(5)}), pd.DataFrame({"x": range(40)}))
