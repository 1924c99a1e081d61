"""The monitoring assets materialized for real against a trained champion."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from conftest import PipelineHome

from efficientai_assets.defs.monitoring.assets import (
    InferenceBatchConfig,
    drift_report,
    inference_batch,
    shift_strength,
)
from efficientai_assets.names import DRIFT_CHECK
from resources.evidently.render import RENDERED, wait_for_report


def monitoring_config(**batch: Any) -> dict[str, Any]:
    return {"ops": {"inference_batch": {"config": batch}}}


def run_day(
    pipeline: PipelineHome, day: str, raise_on_error: bool = True, **batch: Any
) -> dg.ExecuteInJobResult:
    return dg.materialize(
        [inference_batch, drift_report],
        partition_key=day,
        resources=pipeline.resources,
        instance=pipeline.instance,
        run_config=monitoring_config(**batch),
        raise_on_error=raise_on_error,
    )


def day_folder(pipeline: PipelineHome, day: str) -> Path:
    """The day's folder in the namespace's reports folder, as the resources wire it."""
    folder: Path = pipeline.resources["evidently"].partition_dir(day)
    assert folder == pipeline.home.reports_for("test") / day, "the home's layout for 'test'"
    return folder


def _metadata(result: dg.ExecuteInJobResult, asset: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in events[-1].metadata.items()}


def test_a_calm_day_passes_the_drift_check_and_writes_both_reports(
    trained_pipeline: PipelineHome,
) -> None:
    result = run_day(trained_pipeline, "2026-02-01", shift="none")
    meta = _metadata(result, "drift_report")
    day = day_folder(trained_pipeline, "2026-02-01")
    # The verdict is out with the step; Evidently's HTML report follows from its child process.
    assert Path(meta["report_path"]) == day / "drift.html"
    assert wait_for_report(day, timeout_seconds=600) == RENDERED and (day / "drift.html").is_file()
    document = json.loads((day / "drift.json").read_text())
    assert document["summary"]["drift_share"] == meta["drift_share"]
    assert meta["drift_share"] < meta["drift_share_threshold"]
    assert meta["current_rows"] == 500 and meta["columns_tested"] == 64
    assert 0.8 <= meta["champion_accuracy"] <= 1.0
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == DRIFT_CHECK and check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN


def test_a_sudden_shift_warns_names_the_columns_and_hurts_the_champion(
    trained_pipeline: PipelineHome,
) -> None:
    calm = _metadata(run_day(trained_pipeline, "2026-02-02", shift="none"), "drift_report")
    result = run_day(
        trained_pipeline, "2026-02-03", shift="sudden", shift_start="2026-02-03", rows=400
    )
    meta = _metadata(result, "drift_report")
    assert meta["dataset_drift"] is True and meta["drift_share"] >= 0.4
    assert len(meta["drifted_column_names"]) == meta["drifted_count"] >= 25
    assert "| pixel_" in meta["drifted_columns"] and "wasserstein" in meta["drifted_columns"]
    assert meta["reference_profile"] == "memory"  # the reference was profiled once, earlier
    assert meta["champion_accuracy"] < calm["champion_accuracy"]
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert result.success, "a WARN check does not fail the run"


def test_shift_strength_ramps_for_gradual_and_jumps_for_sudden() -> None:
    gradual = InferenceBatchConfig(shift="gradual", shift_start="2026-03-01", ramp_days=4)
    assert [shift_strength(gradual, f"2026-03-0{d}") for d in (1, 2, 4, 6)] == [
        0.25, 0.5, 1.0, 1.0,
    ]  # fmt: skip
    assert shift_strength(gradual, "2026-02-28") == 0.0
    sudden = InferenceBatchConfig(shift="sudden", shift_start="2026-03-01")
    assert shift_strength(sudden, "2026-03-09") == 1.0


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda f: f.drop(columns=["pixel_3"]), r"missing column\(s\) \['pixel_3'\]"),
        (lambda f: f.rename(columns={"pixel_3": "px3"}), r"unexpected columns \['px3'\]"),
        (lambda f: f.assign(pixel_5="bright"), r"'pixel_5' has type object"),
        (lambda f: f.iloc[:0], r"empty \(0 rows\)"),
        (lambda f: f.assign(pixel_7=float("nan")), r"'pixel_7' is entirely NaN"),
        (lambda f: f.assign(label=f["label"].map(str)), r"'label' codes its categories as str"),
    ],
    ids=["missing", "renamed", "type-change", "empty", "all-nan", "label-coded-as-text"],
)
def test_a_bad_landed_batch_fails_naming_the_column_and_is_never_reported(
    trained_pipeline: PipelineHome, tmp_path: Path, write, message: str
) -> None:
    from efficientai_assets.defs.data.datasets import sample_digits

    landing = tmp_path / "landing"
    landing.mkdir()
    write(sample_digits().head(200)).to_parquet(landing / "2026-02-10.parquet", index=False)
    result = run_day(
        trained_pipeline, "2026-02-10", raise_on_error=False,
        source="landing", landing_dir=str(landing),
    )  # fmt: skip
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "inference_batch"
    assert re.search(message, str(failure.step_failure_data.error))
    assert not (day_folder(trained_pipeline, "2026-02-10") / "drift.json").exists()


def test_landed_rows_are_picked_by_their_timestamp(
    trained_pipeline: PipelineHome, tmp_path: Path
) -> None:
    from efficientai_assets.defs.data.datasets import sample_digits

    landing = tmp_path / "landing"
    landing.mkdir()
    frame = sample_digits().head(300).copy()
    frame["timestamp"] = ["2026-02-11T08:00:00Z"] * 120 + ["2026-02-12T09:00:00Z"] * 180
    frame.to_parquet(landing / "stream.parquet", index=False)
    result = run_day(trained_pipeline, "2026-02-12", source="landing", landing_dir=str(landing))
    assert _metadata(result, "inference_batch")["dagster/row_count"] == 180
