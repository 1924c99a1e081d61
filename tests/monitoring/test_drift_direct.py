"""The drift verdict computed directly is Evidently's, column by column; the Evidently report is
rendered afterwards by a child process, or its failure is written beside the verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

from resources.evidently.direct import compute_direct, wasserstein_1d
from resources.evidently.engine import compute_drift
from resources.evidently.profile import build_profile, save_profile
from resources.evidently.render import FAILED, RENDERED, start_render, wait_for_report
from resources.evidently.resource import EvidentlyResource
from resources.evidently.types import DriftSchema, DriftSettings

COLUMNS = [f"f{i}" for i in range(12)]
SCHEMA = DriftSchema.for_features([*COLUMNS, "label"])


def frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a current batch: four columns shifted by 0.05-0.6 std, one constant, one
    integer-coded, a few NaN values in the current batch (validation refuses infinite ones)."""
    rng = np.random.default_rng(seed)

    def frame(n: int, shift: bool) -> pd.DataFrame:
        data = {c: rng.normal(0, 1 + i / 4, n).astype(np.float32) for i, c in enumerate(COLUMNS)}
        if shift:
            for i, offset in enumerate((0.05, 0.15, 0.3, 0.6)):
                data[COLUMNS[i]] = data[COLUMNS[i]] + np.float32(offset * (1 + i / 4))
        data["f10"] = np.full(n, 3.0, dtype=np.float32)
        data["f11"] = rng.integers(0, 5, n).astype(np.float32)
        out = pd.DataFrame(data)
        out["label"] = rng.integers(0, 10, n)
        return out

    reference, current = frame(5000, shift=False), frame(rows, shift=True)
    current.loc[current.index[:3], "f5"] = np.nan
    return reference, current


@pytest.mark.parametrize(("method", "threshold"), [("wasserstein", 0.1), ("ks", 0.05)])
@pytest.mark.parametrize("rows", [40, 500, 12_000])  # 12,000 > max_rows: the batch is sampled
def test_the_direct_verdict_is_evidentlys_column_by_column(
    method: str, threshold: float, rows: int
) -> None:
    reference, current = frames(rows)
    settings = DriftSettings(numerical_method=method, numerical_threshold=threshold)  # type: ignore[arg-type]
    profile = build_profile(reference, SCHEMA, settings)
    ours = compute_direct(profile, current, SCHEMA, settings)
    theirs = compute_drift(profile, current, SCHEMA, settings)
    assert [c.column for c in ours.columns] == [c.column for c in theirs.columns]
    assert [c.drifted for c in ours.columns] == [c.drifted for c in theirs.columns]
    np.testing.assert_allclose(
        [c.score for c in ours.columns], [c.score for c in theirs.columns], rtol=1e-5, atol=1e-9
    )
    assert (ours.drift_share, ours.drifted_count) == (theirs.drift_share, theirs.drifted_count)
    assert ours.current_rows_used == theirs.current_rows_used == min(rows, settings.max_rows)
    assert [c.error_bound for c in ours.columns] == [c.error_bound for c in theirs.columns]
    assert ours.drifted_count > 0 and ours.snapshot is None


def test_wasserstein_distance_is_scipys() -> None:
    rng = np.random.default_rng(3)
    for size in (1, 7, 500):
        u, v = rng.normal(size=size), np.round(rng.normal(1, 2, size=size * 3), 1)  # ties
        assert wasserstein_1d(u, v) == pytest.approx(wasserstein_distance(u, v), rel=1e-12)


def stored(tmp_path: Path, rows: int = 500) -> tuple[Path, Path, DriftSettings]:
    """A profile saved as the resource saves it, and a batch file."""
    reference, current = frames(rows)
    settings = DriftSettings()
    profile = build_profile(reference, SCHEMA, settings, key="md5-x")
    save_profile(profile, tmp_path / "reference" / profile.key)
    batch = tmp_path / "batch.parquet"
    current.to_parquet(batch)
    return tmp_path / "reference" / profile.key, batch, settings


def test_the_report_is_rendered_by_a_child_and_agrees_with_the_verdict(tmp_path: Path) -> None:
    profile_folder, batch, settings = stored(tmp_path)
    resource = EvidentlyResource(reports_dir=str(tmp_path), drift=settings)
    profile, _ = resource.reference_profile("md5-x", lambda: frames(500)[0], SCHEMA)
    result = resource.decide(profile, pd.read_parquet(batch), SCHEMA)
    html, document = resource.publish(result, profile, batch, tmp_path / "day")
    first = json.loads(document.read_text())
    assert first["summary"] == json.loads(json.dumps(result.summary()))
    assert first["report"]["status"] == "rendering" and first["evidently"] is None
    assert wait_for_report(tmp_path / "day", timeout_seconds=600) == RENDERED
    done = json.loads(document.read_text())
    assert done["summary"] == first["summary"]
    assert done["report"]["evidently_agrees"] is True
    assert any("DriftedColumnsCount" in m["config"]["type"] for m in done["evidently"]["metrics"])
    assert html.stat().st_size > 10_000
    assert not list((tmp_path / "day").glob("*.tmp")) and profile_folder.is_dir()


def test_a_report_that_cannot_be_rendered_leaves_the_verdict_and_says_why(tmp_path: Path) -> None:
    _, batch, settings = stored(tmp_path)
    reference, current = frames(500)
    profile = build_profile(reference, SCHEMA, settings, key="md5-x")
    result = compute_direct(profile, current, SCHEMA, settings)
    html, document = start_render(
        result,
        SCHEMA,
        profile_folder=tmp_path / "reference" / "gone",
        current_path=batch,
        folder=tmp_path / "day",
    )
    assert wait_for_report(tmp_path / "day", timeout_seconds=300) == FAILED
    done = json.loads(document.read_text())
    assert "no stored reference profile" in done["report"]["error"]
    assert done["summary"]["drift_share"] == result.drift_share and not html.exists()


def test_other_methods_and_categorical_columns_are_left_to_evidently() -> None:
    reference, current = frames(500)
    psi = EvidentlyResource(drift=DriftSettings(numerical_method="psi"))
    profile = build_profile(reference, SCHEMA, psi.settings())
    assert psi.decide(profile, current, SCHEMA).snapshot is not None
    with pytest.raises(ValueError, match="compute_drift"):
        compute_direct(profile, current, SCHEMA, psi.settings())


def test_a_profile_this_process_had_in_memory_is_stored_beside_the_report(tmp_path: Path) -> None:
    """Another home's resource profiled the same data version first: the profile comes from
    memory, so the renderer finds it only because publishing stores it under this home too."""
    reference, current = frames(500)
    first = EvidentlyResource(reports_dir=str(tmp_path / "one"))
    first.reference_profile("md5-shared", lambda: reference, SCHEMA)
    second = EvidentlyResource(reports_dir=str(tmp_path / "two"))
    profile, origin = second.reference_profile("md5-shared", lambda: reference, SCHEMA)
    assert origin == "memory"
    batch = tmp_path / "batch.parquet"
    current.to_parquet(batch)
    result = second.decide(profile, current, SCHEMA)
    second.publish(result, profile, batch, tmp_path / "two" / "day")
    assert wait_for_report(tmp_path / "two" / "day", timeout_seconds=600) == RENDERED
