"""The drift resource on real Evidently: verdicts, bad frames, sampling bound, reference reuse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from efficientai_assets.defs.data.datasets import sample_digits
from resources.evidently import profile as profiles
from resources.evidently.engine import compute_drift
from resources.evidently.profile import build_profile, cached_reference_profile
from resources.evidently.resource import (
    DriftInputError,
    DriftSchema,
    DriftSettings,
    EvidentlyResource,
    ReferenceProfile,
    cdf_error,
    generate_drift_report,
    rows_for_error,
)
from resources.evidently.validation import validate_frame

SCHEMA = DriftSchema(numerical=("x", "y"), categorical=("color",), target="label")


def _frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, rows),
            "y": rng.normal(0.0, 1.0, rows),
            "color": rng.choice(["red", "green", "blue"], rows),
            "label": rng.integers(0, 3, rows),
        }
    )


@pytest.fixture(scope="module")
def reference() -> ReferenceProfile:
    return build_profile(_frame(2000, 0), SCHEMA, DriftSettings())


def test_same_distribution_reports_no_drift_and_a_shift_reports_the_shifted_column(
    reference: ReferenceProfile, tmp_path: Path
) -> None:
    calm = compute_drift(reference, _frame(800, 1), SCHEMA)
    assert not calm.dataset_drift and calm.drifted_count == 0

    shifted = compute_drift(reference, _frame(800, 2, shift=1.5), SCHEMA)
    assert [c.column for c in shifted.drifted_columns] == ["x"]
    column = shifted.drifted_columns[0]
    assert column.method == "wasserstein" and column.score_kind == "distance"
    assert column.score > column.threshold
    assert shifted.drift_share == pytest.approx(1 / 3)
    assert shifted.dataset_drift  # 1/3 >= default threshold 0.3

    html, report = shifted.save(tmp_path / "day")
    assert html.stat().st_size > 10_000 and "<html" in html.read_text()[:2000].lower()
    document = json.loads(report.read_text())
    assert document["summary"]["drifted_columns"] == ["x"]
    assert document["evidently"]["metrics"], "Evidently's own metrics are kept in the JSON"


def test_plain_function_api_returns_drift_detected_and_score(tmp_path: Path) -> None:
    digits = sample_digits()
    reference, current = digits.iloc[::2], digits.iloc[1::2].copy()
    current[[f"pixel_{i}" for i in range(0, 64, 2)]] += 6.0
    summary = generate_drift_report(current, reference, output_dir=tmp_path)
    assert summary["drift_detected"] is True
    assert summary["drift_score"] >= 0.5
    assert Path(summary["html_path"]).is_file() and Path(summary["json_path"]).is_file()
    assert "label" not in [c["column"] for c in summary["columns"]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["y"]), r"missing column\(s\) \['y'\]$"),
        (
            lambda f: f.rename(columns={"y": "y_value"}),
            r"unexpected columns \['y_value'\] \(renamed",
        ),
        (lambda f: f.assign(x=f["x"].astype(str)), r"'x' has type object .*numerical"),
        (lambda f: f.iloc[:0], r"empty \(0 rows\)"),
        (lambda f: f.iloc[:5], r"has 5 rows; at least 30"),
        (lambda f: f.assign(y=np.nan), r"'y' is entirely NaN"),
        (lambda f: f.assign(x=np.inf), r"'x' has \d+ infinite values"),
        (
            lambda f: f.assign(color=f["color"].map({"red": 0, "green": 1, "blue": 2})),
            r"'color' codes its categories as int .* as str .*coded differently",
        ),
        (lambda f: f.assign(color=f["color"].str.upper()), r"'color' shares no category"),
        (lambda f: f.assign(label=f["label"].astype(str)), r"'label' codes its categories as str"),
    ],
    ids=[
        "missing",
        "renamed",
        "type-change",
        "empty",
        "too-few-rows",
        "all-nan",
        "infinite",
        "categories-int-vs-str",
        "categories-recoded",
        "label-as-string",
    ],
)
def test_bad_batches_fail_with_the_column_and_the_problem(
    reference: ReferenceProfile, mutate, message: str
) -> None:
    with pytest.raises(DriftInputError, match=message):
        compute_drift(reference, mutate(_frame(400, 3)), SCHEMA)


def test_schema_is_declared_not_inferred() -> None:
    with pytest.raises(DriftInputError, match="more than once"):
        DriftSchema(numerical=("a",), categorical=("a",))
    with pytest.raises(DriftInputError, match="at least one"):
        DriftSchema(numerical=())
    # A numeric-looking categorical column stays categorical: the declared type wins.
    frame = _frame(500, 4).assign(color=lambda f: f["label"])
    schema = DriftSchema(numerical=("x",), categorical=("color",))
    result = compute_drift(frame, frame, schema)
    assert {c.column: c.column_type for c in result.columns} == {
        "x": "numerical",
        "color": "categorical",
    }


def test_large_frames_are_sampled_within_the_stated_bound() -> None:
    settings = DriftSettings(sample_error=0.05, sample_confidence=0.99)
    assert settings.max_rows == rows_for_error(0.05, 0.99) == 1060
    assert cdf_error(1060, 1060, 0.99) == 0.0
    big_reference, big_current = _frame(20_000, 5), _frame(20_000, 6, shift=1.0)
    result = compute_drift(big_reference, big_current, SCHEMA, settings)
    assert result.reference_rows == 20_000 and result.reference_rows_used == 1060
    assert result.current_rows_used == 1060
    assert result.cdf_error_bound == pytest.approx(cdf_error(1060, 20_000, 0.99))
    assert result.cdf_error_bound <= 0.05
    x = next(c for c in result.columns if c.column == "x")
    assert x.drifted and x.error_bound is not None and x.error_bound > 0
    # The sampled distance agrees with the full-data one within its bound.
    from scipy.stats import wasserstein_distance

    full = wasserstein_distance(big_reference["x"], big_current["x"]) / big_reference["x"].std(
        ddof=0
    )
    assert abs(x.score - full) <= x.error_bound


def test_reference_profile_is_computed_once_then_reused(tmp_path: Path) -> None:
    loads: list[int] = []

    def load() -> pd.DataFrame:
        loads.append(1)
        return _frame(1000, 7)

    settings = DriftSettings(seed=123)
    _, first = cached_reference_profile("md5-a", load, SCHEMA, settings, tmp_path)
    _, second = cached_reference_profile("md5-a", load, SCHEMA, settings, tmp_path)
    assert (first, second, len(loads)) == ("computed", "memory", 1)

    resource = EvidentlyResource(
        reports_dir=str(tmp_path / "reports"), drift=DriftSettings(seed=99)
    )
    profile, origin = resource.reference_profile("md5-b", load, SCHEMA)
    assert origin == "computed"
    profiles.PROFILE_CACHE.clear()  # a new process: only the disk copy remains
    again, origin = resource.reference_profile("md5-b", load, SCHEMA)
    assert origin == "disk" and len(loads) == 2
    pd.testing.assert_frame_equal(again.sample, profile.sample)
    assert again.category_kinds == {"color": "str", "label": "int"}


def test_validation_never_copies_the_frame_to_check_it() -> None:
    frame = _frame(50_000, 8)
    validate_frame(frame, SCHEMA, "batch", 30)
    assert frame.shape == (50_000, 4)


def test_partition_folders_are_plain_names(tmp_path: Path) -> None:
    resource = EvidentlyResource(reports_dir=str(tmp_path))
    assert resource.partition_dir("2026-01-05") == tmp_path.resolve() / "2026-01-05"
    with pytest.raises(DriftInputError, match="plain folder name"):
        resource.partition_dir("../etc")


def test_mostly_empty_columns_are_refused_naming_the_column_and_its_count(
    reference: ReferenceProfile,
) -> None:
    # 3 of 4 columns 99.4% NaN: tested on 5 values each, KS would read "no drift".
    current = _frame(800, 9, shift=3.0)
    current.loc[5:, ["x", "y", "color"]] = np.nan
    settings = DriftSettings(numerical_method="ks", numerical_threshold=0.05)
    with pytest.raises(DriftInputError, match=r"current batch column 'x' has 5 non-null values"):
        compute_drift(reference, current, SCHEMA, settings)
    sparse_color = _frame(800, 9).assign(color=lambda f: f["color"].where(f.index < 10))
    with pytest.raises(DriftInputError, match=r"'color' has 10 non-null values; at least 30"):
        compute_drift(reference, sparse_color, SCHEMA)
    with pytest.raises(DriftInputError, match=r"reference column 'x' has 5 non-null values"):
        compute_drift(current, _frame(800, 10), SCHEMA)
    # A sparsely labelled batch is fine: the target is not drift-tested.
    labelled = _frame(800, 11).assign(label=lambda f: f["label"].where(f.index < 3))
    assert not compute_drift(reference, labelled, SCHEMA).dataset_drift


def test_the_resource_hands_its_one_settings_model_to_every_computation(tmp_path: Path) -> None:
    import dagster as dg

    settings = DriftSettings(
        drift_share_threshold=0.5, numerical_method="ks", numerical_threshold=0.05
    )
    resource = EvidentlyResource(reports_dir=str(tmp_path), drift=settings)
    result = resource.compute(_frame(400, 12), _frame(400, 13), SCHEMA)
    assert result.settings == settings and result.drift_share_threshold == 0.5
    assert {c.method for c in result.columns if c.column_type == "numerical"} == {"ks"}
    assert result.summary()["settings"] == settings.to_json()

    @dg.asset
    def configured(evidently: EvidentlyResource) -> float:
        return evidently.drift.drift_share_threshold

    run = dg.materialize(
        [configured],
        resources={"evidently": EvidentlyResource(reports_dir=str(tmp_path))},
        run_config={
            "resources": {"evidently": {"config": {"drift": {"drift_share_threshold": 0.4}}}}
        },
    )
    assert run.output_for_node("configured") == 0.4


def test_drift_settings_are_validated_once_where_they_are_declared() -> None:
    for bad in ({"drift_share_threshold": 0.0}, {"sample_error": 1.0}, {"min_rows": 0}):
        with pytest.raises(ValueError):
            DriftSettings(**bad)


def test_stored_reference_profiles_keep_their_names_under_the_settings_model() -> None:
    """The profile key hashes the settings' values, as before they became one model, so the
    profiles already stored under ``reports/reference/`` are found again."""
    import hashlib

    values = {
        "drift_share_threshold": 0.3, "numerical_method": "wasserstein",
        "numerical_threshold": 0.1, "categorical_method": "jensenshannon",
        "categorical_threshold": 0.1, "sample_error": 0.02, "sample_confidence": 0.999,
        "min_rows": 30, "seed": 0,
    }  # fmt: skip
    text = json.dumps({"settings": values, "schema": SCHEMA.to_json()}, sort_keys=True)
    assert DriftSettings().fingerprint(SCHEMA) == hashlib.sha256(text.encode()).hexdigest()[:16]
