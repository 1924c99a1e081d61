"""Bad data fails the raw-dataset asset with a message naming the problem, before anything is
written or versioned; a failed push leaves the registry without the new pointer."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PipelineHome

from efficientai_assets.defs.data.assets import raw_dataset
from resources.dvc.resource import DvcResource, DvcVersioningError


def _good_frame(rows: int = 20) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    frame["label"] = np.arange(rows) % 2
    return frame


def _write_missing(tmp: Path) -> Path:
    return tmp / "does-not-exist.csv"


def _write_empty(tmp: Path) -> Path:
    path = tmp / "empty.csv"
    path.write_text("")
    return path


def _write_header_only(tmp: Path) -> Path:
    path = tmp / "header.csv"
    path.write_text("a,b,label\n")
    return path


def _write_no_label(tmp: Path) -> Path:
    path = tmp / "nolabel.csv"
    _good_frame().drop(columns=["label"]).to_csv(path, index=False)
    return path


def _write_text_feature(tmp: Path) -> Path:
    path = tmp / "text.csv"
    frame = _good_frame()
    frame["b"] = "seven"
    frame.to_csv(path, index=False)
    return path


def _write_nan(tmp: Path) -> Path:
    path = tmp / "nan.parquet"
    frame = _good_frame()
    frame.loc[3, "c"] = np.nan
    frame.to_parquet(path)
    return path


def _write_inf(tmp: Path) -> Path:
    path = tmp / "inf.parquet"
    frame = _good_frame()
    frame.loc[5, "a"] = np.inf
    frame.to_parquet(path)
    return path


def _write_corrupt_parquet(tmp: Path) -> Path:
    path = tmp / "corrupt.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    return path


def _write_directory(tmp: Path) -> Path:
    path = tmp / "a-folder.csv"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make_file", "expected"),
    [
        (_write_missing, "data file not found"),
        (_write_empty, "data file is empty"),
        (_write_header_only, "has no rows"),
        (_write_no_label, "has no label column 'label'"),
        (_write_text_feature, "non-numeric feature columns: ['b']"),
        (_write_nan, "NaN or infinite feature values in columns ['c']"),
        (_write_inf, "NaN or infinite feature values in columns ['a']"),
        (_write_corrupt_parquet, "could not be parsed"),
        (_write_directory, "not a file"),
    ],
)
def test_bad_data_fails_before_anything_is_versioned(
    home_factory: Callable[[str], PipelineHome],
    tmp_path: Path,
    make_file: Callable[[Path], Path],
    expected: str,
) -> None:
    pipeline = home_factory("bad")
    path = make_file(tmp_path)
    result = pipeline.materialize(
        [raw_dataset],
        run_config={"ops": {"raw_dataset": {"config": {"source_path": str(path)}}}},
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("raw_dataset")
    assert failure is not None
    assert expected in str(failure.error)
    dvc: DvcResource = pipeline.resources["dvc"]
    assert dvc.current_version(dvc.project_path("raw")) is None
    assert not (dvc.root() / dvc.project_path("raw")).exists()


def test_a_user_csv_with_its_own_label_column_is_versioned(
    home_factory: Callable[[str], PipelineHome], tmp_path: Path
) -> None:
    pipeline = home_factory("csv")
    path = tmp_path / "mine.csv"
    _good_frame().rename(columns={"label": "target"}).to_csv(path, index=False)
    result = pipeline.materialize(
        [raw_dataset],
        run_config={
            "ops": {"raw_dataset": {"config": {"source_path": str(path), "label_column": "target"}}}
        },
    )
    metadata = result.asset_materializations_for_node("raw_dataset")[0].metadata
    assert metadata["dagster/row_count"].value == 20
    dvc: DvcResource = pipeline.resources["dvc"]
    version = dvc.current_version(dvc.project_path("raw"))
    assert version is not None and metadata["dvc_md5"].value == version.md5
    stored = pd.read_parquet(dvc.root() / dvc.project_path("raw") / "dataset.parquet")
    assert list(stored.columns) == ["a", "b", "c", "label"]


def test_push_failure_leaves_no_committed_pointer(tmp_path: Path) -> None:
    blocked_remote = tmp_path / "remote-is-a-file"
    blocked_remote.write_text("not a directory")
    dvc = DvcResource(repo_path=str(tmp_path / "registry"), remote_url=str(blocked_remote))
    dvc.ensure_repo()
    staged = dvc.stage()
    _good_frame().to_parquet(staged / "dataset.parquet")
    with pytest.raises(DvcVersioningError, match="registry was left unchanged"):
        dvc.version("p/raw", "should not be committed", staged=staged)
    assert dvc.current_version("p/raw") is None
    assert not (dvc.root() / "p/raw").exists(), "no data without its pointer"
    log = subprocess.run(
        ["git", "-C", str(dvc.root()), "log", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "should not be committed" not in log
    in_index = subprocess.run(
        ["git", "-C", str(dvc.root()), "diff", "--cached", "--name-only"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert in_index == ""


def test_a_failed_push_of_a_new_version_puts_the_previous_data_back(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    dvc = DvcResource(repo_path=str(tmp_path / "registry"), remote_url=str(remote))
    staged = dvc.stage()
    _good_frame(10).to_parquet(staged / "dataset.parquet")
    first = dvc.version("p/raw", "first", staged=staged)
    # The remote becomes unwritable: the next version cannot be pushed.
    shutil.rmtree(remote)
    remote.write_text("not a directory")
    staged = dvc.stage()
    _good_frame(30).to_parquet(staged / "dataset.parquet")
    with pytest.raises(DvcVersioningError):
        dvc.version("p/raw", "second", staged=staged)
    current = dvc.current_version("p/raw")
    assert current is not None and current.md5 == first.md5
    restored = pd.read_parquet(dvc.root() / "p/raw" / "dataset.parquet")
    assert len(restored) == 10


def test_a_snapshot_is_exactly_the_version_read_or_an_error(tmp_path: Path) -> None:
    dvc = DvcResource(repo_path=str(tmp_path / "registry"), remote_url=str(tmp_path / "remote"))
    staged = dvc.stage()
    _good_frame(10).to_parquet(staged / "dataset.parquet")
    first = dvc.version("p/raw", "first", staged=staged)
    copy = dvc.snapshot(first, tmp_path / "copy")
    staged = dvc.stage()
    _good_frame(30).to_parquet(staged / "dataset.parquet")
    dvc.version("p/raw", "second", staged=staged)
    # The earlier copy is private: the new version did not touch it.
    assert len(pd.read_parquet(copy / "dataset.parquet")) == 10
    with pytest.raises(DvcVersioningError, match="changed while in use"):
        dvc.snapshot(first, tmp_path / "stale")
