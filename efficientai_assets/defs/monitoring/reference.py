"""The reference window: the champion's training data, found through its data-version tag and read
from the DVC registry — as it is now, or from the registry's history when the splits moved on.

Drift reports compare against it, and a drift-triggered retraining starts from it. No assets here
(Dagster loads every module of the defs folder); heavy libraries are imported inside functions.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from efficientai_assets.defs.training.registry_peek import PeekedVersion, peek_aliases
from efficientai_assets.names import (
    CHAMPION_ALIAS,
    LABEL_COLUMN,
    MODEL_NAME,
    SPLITS_DIR,
    TAG_DATA_MD5,
    TRAIN_SPLIT_FILE,
)
from resources.dvc.resource import DvcResource
from resources.evidently.resource import DriftSchema, EvidentlyResource, ReferenceProfile
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

_GIT_TIMEOUT_SECONDS = 60


class MonitoringError(dg.Failure):
    """A monitoring step cannot go on; the description says why and what to do."""


def champion_version(mlflow: MlflowResource) -> ModelVersion | PeekedVersion:
    """The champion model version, which must carry the data md5 of the splits it was trained on.
    Read from the embedded store without loading MLflow when it can be (``registry_peek``)."""
    name = mlflow.model_name(MODEL_NAME)
    peeked = peek_aliases(mlflow, name, (CHAMPION_ALIAS,))
    version = (
        peeked[CHAMPION_ALIAS]
        if peeked is not None
        else mlflow.version_for_alias(name, CHAMPION_ALIAS)
    )
    if version is None:
        raise MonitoringError(
            f"{name} has no '{CHAMPION_ALIAS}' version, so there is no reference to compare "
            "against: materialize the training group first"
        )
    if not version.tags.get(TAG_DATA_MD5):
        raise MonitoringError(f"{name} v{version.version} has no {TAG_DATA_MD5} tag")
    return version


def splits_pointer(dvc: DvcResource) -> str:
    """The registry-relative path of the splits' ``.dvc`` pointer, whose history holds every
    splits version."""
    return f"{dvc.project_path(SPLITS_DIR)}.dvc"


def registry_commit_for(dvc: DvcResource, pointer: str, md5: str) -> str:
    """The registry commit whose ``pointer`` records ``md5`` (newest first: the champion's data is
    usually the latest version, found in one or two git calls)."""
    import yaml

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(dvc.root()), *args],
            capture_output=True, text=True, timeout=_GIT_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise MonitoringError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    for commit in git("log", "--format=%H", "--", pointer).split():
        outs = yaml.safe_load(git("show", f"{commit}:{pointer}")).get("outs") or [{}]
        if str(outs[0].get("md5")) == md5:
            return commit
    raise MonitoringError(
        f"no version of {pointer} with md5 {md5} in {dvc.root()}: the champion's training data "
        "is gone from the registry; retrain the champion on the current data first"
    )


def fetch_split_files(
    dvc: DvcResource,
    md5: str,
    filenames: Sequence[str],
    destination: Path,
    commit: str | None = None,
) -> list[Path]:
    """Copy ``filenames`` of the splits version ``md5`` into ``destination``: from an exact
    snapshot when it is the registry's current version, else from the registry's history (at
    ``commit`` when known, else found by md5). Each file appears whole or not at all."""
    destination.mkdir(parents=True, exist_ok=True)
    targets = [destination / name for name in filenames]
    current = dvc.current_version(dvc.project_path(SPLITS_DIR))
    if current is not None and current.md5 == md5:
        with tempfile.TemporaryDirectory(dir=destination, prefix=".splits-") as scratch:
            snapshot = dvc.snapshot(current, Path(scratch) / "splits")
            for target in targets:
                tmp = target.with_name(target.name + ".tmp")
                shutil.copy2(snapshot / target.name, tmp)
                tmp.replace(target)
        return targets
    commit = commit or registry_commit_for(dvc, splits_pointer(dvc), md5)
    for target in targets:
        # Checked against the pointer at that commit, like every read of a versioned dataset.
        data = dvc.read_at(dvc.project_path(SPLITS_DIR), target.name, commit)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return targets


def split_file_at(dvc: DvcResource, evidently: EvidentlyResource, md5: str, filename: str) -> Path:
    """A file of the splits version ``md5``, copied once into ``<reports>/reference/<md5>/``."""
    cached = evidently.reports_root() / "reference" / _safe(md5) / filename
    if cached.is_file():
        return cached
    [path] = fetch_split_files(dvc, md5, [filename], cached.parent)
    return path


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def reference_profile(
    mlflow: MlflowResource, dvc: DvcResource, evidently: EvidentlyResource
) -> tuple[ModelVersion | PeekedVersion, ReferenceProfile, str]:
    """The champion, the profile of its training split (computed once per data version), and
    where the profile came from (memory, disk, computed)."""
    import pandas as pd
    import pyarrow.parquet as pq

    version = champion_version(mlflow)
    md5 = version.tags[TAG_DATA_MD5]
    path = split_file_at(dvc, evidently, md5, TRAIN_SPLIT_FILE)
    schema = DriftSchema.for_features(pq.read_schema(path).names, LABEL_COLUMN)
    profile, origin = evidently.reference_profile(md5, lambda: pd.read_parquet(path), schema)
    return version, profile, origin
