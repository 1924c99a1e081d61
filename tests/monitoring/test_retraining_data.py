"""A drift-triggered run's data: the request travels as run tags, and the step assembles the
champion's reference window plus the drifted batches from a real DVC registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from efficientai_assets.defs.monitoring.reference import registry_commit_for, splits_pointer
from efficientai_assets.defs.monitoring.retraining import (
    RetrainingDataError,
    RetrainingRequest,
    assemble_retraining_data,
)
from efficientai_assets.names import (
    SPLITS_DIR,
    TAG_DRIFT_BATCHES,
    TAG_REFERENCE_ROWS,
    TAG_TRIGGER,
    TRAIN_SPLIT_FILE,
    VALIDATION_SPLIT_FILE,
)
from resources.dvc.resource import DvcResource, DvcVersion


def _frame(rows: int, seed: int, labelled: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)).astype(np.float32), columns=["a", "b", "c"])
    if labelled:
        frame["label"] = np.arange(rows, dtype=np.int64) % 3
    return frame


def _version_splits(dvc: DvcResource, train_rows: int, validation_rows: int) -> DvcVersion:
    staged = dvc.stage()
    _frame(train_rows, 1).to_parquet(staged / TRAIN_SPLIT_FILE, index=False)
    _frame(validation_rows, 2).to_parquet(staged / VALIDATION_SPLIT_FILE, index=False)
    return dvc.version(dvc.project_path(SPLITS_DIR), f"splits {train_rows}", staged=staged)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[DvcResource, DvcVersion, Path]:
    """A registry whose splits moved on: the first version (80 + 20 rows) is only in history."""
    root = tmp_path_factory.mktemp("retraining")
    dvc = DvcResource(repo_path=str(root / "registry"), remote_url=str(root / "remote"))
    first = _version_splits(dvc, 80, 20)
    _version_splits(dvc, 40, 10)
    return dvc, first, root


def _request(
    dvc: DvcResource, version: DvcVersion, batches: dict[str, Path], **extra: int
) -> RetrainingRequest:
    return RetrainingRequest(
        batches=tuple(sorted((p, str(path)) for p, path in batches.items())),
        champion_version="3",
        data_md5=version.md5,
        registry_commit=registry_commit_for(dvc, splits_pointer(dvc), version.md5),
        **extra,
    )


def test_the_request_survives_the_trip_through_run_tags(tmp_path: Path) -> None:
    request = RetrainingRequest(
        batches=(("2026-04-02", "/r/2026-04-02/batch.parquet"), ("2026-04-03", "/r/b.parquet")),
        champion_version="3",
        data_md5="abc.dir",
        registry_commit="0" * 40,
        max_reference_rows=1000,
        seed=7,
    )
    tags = request.to_tags()
    assert all(isinstance(v, str) for v in tags.values())
    assert RetrainingRequest.from_tags(tags) == request
    unlimited = RetrainingRequest(request.batches, "3", "abc.dir", "0" * 40)
    assert RetrainingRequest.from_tags(unlimited.to_tags()) == unlimited
    assert RetrainingRequest.from_tags({"dagster/run_key": "x"}) is None, "not a drift run"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({TAG_DRIFT_BATCHES: ""}, "has no 'efficientai/drift_batches' tag"),
        ({TAG_DRIFT_BATCHES: "[1, 2]"}, "malformed retraining tag"),
        ({TAG_REFERENCE_ROWS: "many"}, "malformed retraining tag"),
    ],
    ids=["batches-missing", "batches-not-an-object", "rows-not-a-number"],
)
def test_a_drift_run_with_broken_tags_fails_naming_the_tag(
    change: dict[str, str], message: str
) -> None:
    tags = {**RetrainingRequest((("d", "/b"),), "3", "abc", "0" * 40).to_tags(), **change}
    assert tags[TAG_TRIGGER] == "drift"
    with pytest.raises(RetrainingDataError, match=message):
        RetrainingRequest.from_tags(tags)


def test_the_reference_window_at_its_version_plus_the_labelled_drifted_rows(
    registry: tuple[DvcResource, DvcVersion, Path], tmp_path: Path
) -> None:
    dvc, first, _ = registry
    labelled, unlabelled = tmp_path / "a.parquet", tmp_path / "b.parquet"
    batch = _frame(30, 3)
    batch.loc[:4, "label"] = np.nan  # five rows still wait for their labels
    batch.to_parquet(labelled, index=False)
    _frame(25, 4, labelled=False).to_parquet(unlabelled, index=False)
    request = _request(dvc, first, {"2026-04-02": labelled, "2026-04-03": unlabelled})
    frame, new_rows = assemble_retraining_data(dvc, request, tmp_path / "scratch")
    assert (len(frame), new_rows) == (80 + 20 + 25, 25)
    assert list(frame.columns) == ["a", "b", "c", "label"] and frame["label"].dtype == np.int64

    current = dvc.current_version(dvc.project_path(SPLITS_DIR))
    assert current is not None and current.md5 != first.md5
    latest = _request(dvc, current, {"2026-04-02": labelled})
    frame, _ = assemble_retraining_data(dvc, latest, tmp_path / "latest")
    assert len(frame) == 40 + 10 + 25, "the current version is read from an exact snapshot"

    capped = _request(dvc, first, {"2026-04-02": labelled}, max_reference_rows=50, seed=1)
    frame, new_rows = assemble_retraining_data(dvc, capped, tmp_path / "capped")
    again, _ = assemble_retraining_data(dvc, capped, tmp_path / "again")
    assert (len(frame), new_rows) == (50 + 25, 25)
    pd.testing.assert_frame_equal(frame, again)  # the seeded sample is reproducible


def test_a_missing_or_foreign_batch_fails_naming_it(
    registry: tuple[DvcResource, DvcVersion, Path], tmp_path: Path
) -> None:
    dvc, first, _ = registry
    missing = tmp_path / "gone.parquet"
    request = _request(dvc, first, {"2026-04-20": missing})
    with pytest.raises(RetrainingDataError, match=rf"2026-04-20 \({missing}\) is missing"):
        assemble_retraining_data(dvc, request, tmp_path / "scratch")
    foreign = tmp_path / "foreign.parquet"
    _frame(10, 5).drop(columns=["c"]).to_parquet(foreign, index=False)
    request = _request(dvc, first, {"2026-04-21": foreign})
    with pytest.raises(RetrainingDataError, match=r"lacks the reference window's column\(s\)"):
        assemble_retraining_data(dvc, request, tmp_path / "scratch2")


def test_a_data_version_gone_from_the_registry_is_named(
    registry: tuple[DvcResource, DvcVersion, Path],
) -> None:
    dvc, _, _ = registry
    with pytest.raises(Exception, match=r"with md5 0000\.dir .*gone from the registry"):
        registry_commit_for(dvc, splits_pointer(dvc), "0000.dir")
