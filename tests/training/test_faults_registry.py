"""The registry and the data must not lie (issue 16): models planted in the MLflow registry are
neither run nor promoted; data swapped under its hash, a DVC lock held by another process, link
cache types and a namespace that is a path all fail loudly and leave the registry as it was.

Everything is real: an MLflow SQLite registry with models logged and registered by MLflow itself,
DVC repositories with a local remote, DVC's own lock held by a second process, Dagster
materializations of the project's assets.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
from conftest import (
    HomeFactory,
    PipelineHome,
    make_home,
    resources_for_tests,
    training_run_config,
)

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.monitoring.assets import champion_accuracy
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.defs.training.origin import fetch_registered
from efficientai_assets.defs.training.promotion import (
    CODE_MODEL_LOADER,
    MODEL_FILES,
    Origin,
    origin_refusal,
)
from efficientai_assets.names import (
    CANDIDATE_ASSET,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    MODEL_NAME,
    TAG_CODE_VERSION,
    TAG_CONFIG_HASH,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
)
from resources.defaults import build_resources
from resources.dvc.guard import file_md5
from resources.dvc.resource import DataIntegrityError, DvcResource, DvcVersioningError
from resources.mlflow.resource import MlflowResource

MARKER_ENV = "EFFICIENTAI_TEST_PLANTED_MARKER"

# A models-from-code model as an adversary would plant it: its code runs wherever it is loaded
# (here it leaves a marker file) and it predicts class 0 for every row.
PLANTED_CODE = textwrap.dedent(
    f"""
    import os
    from pathlib import Path

    import pandas as pd
    from mlflow.models import set_model
    from mlflow.pyfunc import PythonModel

    if os.environ.get("{MARKER_ENV}"):
        Path(os.environ["{MARKER_ENV}"]).write_text("planted code ran")


    class Planted(PythonModel):
        def predict(self, context, model_input, params=None):
            return pd.DataFrame({{"label": [0] * len(model_input)}})


    set_model(Planted())
    """
)


# -- the MLflow registry -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def contest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineHome]:
    """A home where candidate_model registered version 1 and champion_model promoted it."""
    home = make_home(tmp_path_factory.mktemp("contest") / "home")
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        pipeline = PipelineHome(home, resources_for_tests("test", home), instance)
        pipeline.materialize(
            [raw_dataset, dataset_splits, candidate_model, champion_model],
            run_config=training_run_config(),
        )
        yield pipeline


@pytest.fixture
def registry(
    contest: PipelineHome, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Any]:
    """The contest's MLflow client; afterwards both aliases point at version 1 again and every
    planted version is gone. The marker a planted model would write is armed for the test."""
    mlflow: MlflowResource = contest.resources["mlflow"]
    client = mlflow.client()
    monkeypatch.setenv(MARKER_ENV, str(tmp_path / "planted-code-ran"))
    yield client
    name = mlflow.model_name(MODEL_NAME)
    client.set_registered_model_alias(name, CHALLENGER_ALIAS, "1")
    client.set_registered_model_alias(name, CHAMPION_ALIAS, "1")
    for version in client.search_model_versions(f"name = '{name}'"):
        if str(version.version) != "1":
            client.delete_model_version(name, version.version)


def _name(pipeline: PipelineHome) -> str:
    return str(pipeline.resources["mlflow"].model_name(MODEL_NAME))


def _experiment(client: Any, pipeline: PipelineHome, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = f"file://{pipeline.home.mlflow_artifacts / name}"
    return str(client.create_experiment(name, artifact_location=location))


def _log_planted(client: Any, pipeline: PipelineHome, code_dir: Path) -> str:
    """Log the planted model from a run of its own; returns the logged model's URI."""
    import mlflow

    code = code_dir / "planted.py"
    code.write_text(PLANTED_CODE)
    armed = os.environ.pop(MARKER_ENV, None)  # logging a model from code runs the code too
    try:
        with mlflow.start_run(experiment_id=_experiment(client, pipeline, "planted")):
            info = mlflow.pyfunc.log_model(name="model", python_model=str(code))
    finally:
        if armed is not None:
            os.environ[MARKER_ENV] = armed
    return str(info.model_uri)


def _champion_failure(pipeline: PipelineHome) -> str:
    result = pipeline.materialize([champion_model], raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("champion_model")
    assert failure is not None
    return str(failure.error)


def _alias(client: Any, pipeline: PipelineHome, alias: str) -> str:
    return str(client.get_model_version_by_alias(_name(pipeline), alias).version)


def test_a_planted_models_from_code_challenger_tagged_passed_is_neither_run_nor_promoted(
    contest: PipelineHome, registry: Any, tmp_path: Path
) -> None:
    import mlflow

    name = _name(contest)
    genuine = registry.get_model_version(name, "1")
    uri = _log_planted(registry, contest, tmp_path)
    planted = mlflow.register_model(uri, name, tags=dict(genuine.tags))  # "passed", and the rest
    registry.set_registered_model_alias(name, CHALLENGER_ALIAS, planted.version)
    marker = Path(os.environ[MARKER_ENV])

    message = _champion_failure(contest)
    assert (
        f"version {planted.version} (challenger) is not a model this pipeline produced" in message
    )
    assert "neither loads nor promotes it" in message
    assert not marker.exists(), "the planted model's code ran inside the champion step"
    assert _alias(registry, contest, CHAMPION_ALIAS) == "1"

    # The marker is a real witness: loading the planted version the usual way runs its code.
    mlflow.pyfunc.load_model(f"models:/{name}/{planted.version}")
    assert marker.read_text() == "planted code ran"


def test_a_planted_champion_is_not_loaded_by_the_contest_nor_by_monitoring(
    contest: PipelineHome, registry: Any, tmp_path: Path
) -> None:
    import mlflow

    name = _name(contest)
    planted = mlflow.register_model(_log_planted(registry, contest, tmp_path), name)
    registry.set_registered_model_alias(name, CHAMPION_ALIAS, planted.version)

    message = _champion_failure(contest)
    assert f"version {planted.version} (champion) is not a model this pipeline produced" in message
    with pytest.raises(dg.Failure, match="not a model this pipeline produced"):
        champion_accuracy(
            contest.resources["mlflow"],
            registry.get_model_version(name, planted.version),
            pd.DataFrame({"pixel_0": [0.0], "label": [0]}),
        )
    assert not Path(os.environ[MARKER_ENV]).exists()


def test_a_version_that_borrows_a_real_candidate_run_but_other_files_is_refused(
    contest: PipelineHome, registry: Any, tmp_path: Path
) -> None:
    name = _name(contest)
    genuine = registry.get_model_version(name, "1")
    uri = _log_planted(registry, contest, tmp_path)
    borrowed = registry.create_model_version(
        name, source=uri, run_id=genuine.run_id, tags=dict(genuine.tags)
    )
    registry.set_registered_model_alias(name, CHALLENGER_ALIAS, borrowed.version)

    message = _champion_failure(contest)
    assert "its model files were logged by run" in message
    assert not Path(os.environ[MARKER_ENV]).exists()
    assert _alias(registry, contest, CHAMPION_ALIAS) == "1"


def test_a_challenger_without_a_signature_is_refused_never_taken_as_not_comparable(
    contest: PipelineHome, registry: Any, tmp_path: Path
) -> None:
    """Every provenance tag forged consistently onto a FINISHED run of the candidate's experiment,
    the project's own files and code, only the signature missing: refused, and said why."""
    import mlflow
    from mlflow.models import get_model_info

    from efficientai_assets.models import mlp, pyfunc_model

    name = _name(contest)
    genuine = registry.get_model_version(name, "1")
    genuine_run = registry.get_run(genuine.run_id)
    files = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/1", dst_path=str(tmp_path / "genuine")
        )
    )
    provenance = {
        key: genuine_run.data.tags[key]
        for key in (
            TAG_DAGSTER_RUN_ID,
            TAG_DAGSTER_ASSET_KEY,
            TAG_DATA_MD5,
            TAG_CODE_VERSION,
            TAG_CONFIG_HASH,
            TAG_FINGERPRINT,
        )
    }
    forged = registry.create_run(genuine_run.info.experiment_id, tags=provenance)
    with mlflow.start_run(run_id=forged.info.run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc_model.__file__,
            artifacts={key: str(files / path) for key, path in MODEL_FILES.items()},
            code_paths=[mlp.__file__],
            pip_requirements=["mlx", "numpy", "pandas", "mlflow"],
        )
    assert get_model_info(info.model_uri).signature is None
    unsigned = mlflow.register_model(info.model_uri, name, tags=dict(genuine.tags))
    registry.set_registered_model_alias(name, CHALLENGER_ALIAS, unsigned.version)

    message = _champion_failure(contest)
    assert "it has no signature" in message and "not comparable" not in message
    assert _alias(registry, contest, CHAMPION_ALIAS) == "1"


def test_a_version_candidate_model_registered_passes_the_origin_check(
    contest: PipelineHome, registry: Any, tmp_path: Path
) -> None:
    mlflow: MlflowResource = contest.resources["mlflow"]
    genuine = registry.get_model_version(_name(contest), "1")
    fetched = fetch_registered(mlflow, genuine, tmp_path / "v1")
    assert origin_refusal(_name(contest), CHALLENGER_ALIAS, fetched.origin) is None
    assert fetched.origin.input_columns is not None and len(fetched.origin.input_columns) == 64


def _valid_origin() -> Origin:
    from efficientai_assets.defs.training.memo import MemoKey

    key = MemoKey("abc.dir", "1", "cfg")
    tags = {
        TAG_DAGSTER_RUN_ID: "run-1",
        TAG_DAGSTER_ASSET_KEY: CANDIDATE_ASSET,
        TAG_DATA_MD5: key.data_md5,
        TAG_CODE_VERSION: key.code_version,
        TAG_CONFIG_HASH: key.config_hash,
        TAG_FINGERPRINT: key.fingerprint,
    }
    flavour = {
        "loader_module": CODE_MODEL_LOADER,
        "model_code_path": "/anywhere/efficientai_assets/models/pyfunc_model.py",
        "artifacts": {key: {"path": path} for key, path in MODEL_FILES.items()},
    }
    return Origin("3", tags, "r1", dict(tags), "FINISHED", "r1", flavour, ("x", "y"))


def _with_tags(**changes: str) -> dict[str, str]:
    tags = dict(_valid_origin().version_tags)
    tags.update({key.replace("__", "."): value for key, value in changes.items()})
    return tags


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"run_id": ""}, "it names no MLflow run"),
        ({"run_tags": None}, "does not exist in this MLflow store"),
        ({"version_tags": _with_tags(efficientai__data_md5="other.dir")}, "does not match its run"),
        ({"run_tags": {}}, "does not match its run"),
        (
            {
                "version_tags": _with_tags(dagster__asset_key="elsewhere"),
                "run_tags": _with_tags(dagster__asset_key="elsewhere"),
            },
            "not by candidate_model",
        ),
        (
            {
                "version_tags": _with_tags(efficientai__fingerprint="f"),
                "run_tags": _with_tags(efficientai__fingerprint="f"),
            },
            "is not the fingerprint of its data, code and config tags",
        ),
        ({"run_status": "FAILED"}, "is FAILED, not FINISHED"),
        ({"model_run_id": "r2"}, "its model files were logged by run 'r2'"),
        ({"flavour": None}, "no python_function flavour"),
        ({"flavour": {"loader_module": "mlflow.pyfunc.model"}}, "project's own model flavour"),
        ({"input_columns": None}, "it has no signature"),
    ],
)
def test_each_origin_rule_refuses_with_its_reason(changes: dict[str, Any], expected: str) -> None:
    refusal = origin_refusal("m", "challenger", replace(_valid_origin(), **changes))
    assert refusal is not None and expected in refusal
    assert refusal.startswith("m version 3 (challenger) is not a model this pipeline produced")


def test_other_model_files_are_refused() -> None:
    valid = _valid_origin()
    assert origin_refusal("m", "challenger", valid) is None
    flavour = {**dict(valid.flavour or {}), "artifacts": {"weights": {"path": "../w"}}}
    refusal = origin_refusal("m", "challenger", replace(valid, flavour=flavour))
    assert refusal is not None and "not the project's" in refusal


# -- the DVC data registry ---------------------------------------------------------------------

HOLD_DVC_LOCK = textwrap.dedent(
    """
    import sys, time
    from dvc.repo import Repo, lock_repo

    with Repo(sys.argv[1]) as repo, lock_repo(repo):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _hold_dvc_lock(registry_root: Path, seconds: float) -> subprocess.Popen[str]:
    """A second process holding DVC's own repository lock of ``registry_root``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DVC_LOCK, str(registry_root), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _registry_state(dvc: DvcResource, relative: str) -> dict[str, Any]:
    """The registry as a reader sees it: commit, work-tree status, pointer, data files' hashes."""
    root = dvc.root()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60, check=True
        ).stdout

    folder = root / relative
    return {
        "head": git("rev-parse", "HEAD").strip(),
        "status": git("status", "--porcelain", "--untracked-files=all"),
        "pointer": (root / f"{relative}.dvc").read_text(),
        "files": {p.name: file_md5(p) for p in sorted(folder.iterdir())} if folder.exists() else {},
    }


def _with_dvc(pipeline: PipelineHome, **changes: Any) -> PipelineHome:
    dvc: DvcResource = pipeline.resources["dvc"]
    fields = {name: getattr(dvc, name) for name in type(dvc).model_fields}
    resources = {**pipeline.resources, "dvc": DvcResource(**{**fields, **changes})}
    return PipelineHome(pipeline.home, resources, pipeline.instance)


def _small_csv(path: Path, rows: int = 30) -> Path:
    frame = pd.DataFrame({"a": [float(i) for i in range(rows)], "b": [1.0] * rows})
    frame["label"] = [i % 2 for i in range(rows)]
    frame.to_csv(path, index=False)
    return path


def _raw_config(path: Path) -> dict[str, Any]:
    return {"ops": {"raw_dataset": {"config": {"source_path": str(path)}}}}


def test_a_dvc_lock_held_past_the_bound_fails_the_write_and_leaves_the_registry_as_it_was(
    home_factory: HomeFactory, tmp_path: Path
) -> None:
    pipeline = _with_dvc(home_factory("locked"), lock_wait_seconds=2.0)
    pipeline.materialize([raw_dataset])
    dvc: DvcResource = pipeline.resources["dvc"]
    relative = dvc.project_path("raw")
    before = _registry_state(dvc, relative)
    assert before["status"] == ""

    holder = _hold_dvc_lock(dvc.root(), 120)
    try:
        result = pipeline.materialize(
            [raw_dataset], _raw_config(_small_csv(tmp_path / "new.csv")), raise_on_error=False
        )
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert not result.success
    failure = result.failure_data_for_node("raw_dataset")
    assert failure is not None
    message = str(failure.error)
    assert "locked by another DVC process" in message and "nothing was changed" in message
    assert _registry_state(dvc, relative) == before
    staging = dvc.root().parent / f".{dvc.root().name}-staging"
    assert not staging.exists() or not any(staging.iterdir())

    # Later runs are unaffected: the next write versions the new data.
    after = pipeline.materialize([raw_dataset], _raw_config(_small_csv(tmp_path / "new.csv")))
    assert after.success
    assert _registry_state(dvc, relative)["status"] == ""
    current = dvc.current_version(relative)
    assert current is not None and current.md5 != yaml_md5(before["pointer"])


def yaml_md5(pointer_text: str) -> str:
    import yaml

    return str(yaml.safe_load(pointer_text)["outs"][0]["md5"])


def test_a_dvc_lock_released_within_the_bound_is_waited_for(
    home_factory: HomeFactory, tmp_path: Path
) -> None:
    pipeline = _with_dvc(home_factory("waits"), lock_wait_seconds=120.0)
    dvc: DvcResource = pipeline.resources["dvc"]
    dvc.ensure_repo()
    # Held longer than DVC's own ~3 s try: without the wait this write would fail.
    holder = _hold_dvc_lock(dvc.root(), 8)
    try:
        result = pipeline.materialize([raw_dataset], _raw_config(_small_csv(tmp_path / "d.csv")))
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert result.success
    # On its first attempt: the write waited for the lock instead of failing into a retry.
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == []
    assert _registry_state(dvc, dvc.project_path("raw"))["status"] == ""


def test_data_swapped_under_its_hash_fails_loudly_naming_the_file_and_both_hashes(
    home_factory: HomeFactory,
) -> None:
    pipeline = home_factory("swapped")
    pipeline.materialize([raw_dataset, dataset_splits])
    dvc: DvcResource = pipeline.resources["dvc"]
    raw = dvc.current_version(dvc.project_path("raw"))
    splits_before = dvc.current_version(dvc.project_path("splits"))
    assert raw is not None and splits_before is not None
    folder = dvc.root() / raw.path
    genuine = file_md5(folder / "dataset.parquet")

    # Another valid Parquet (fewer rows) in the cache and on the remote under the genuine hash.
    other = folder.parent / "other.parquet"
    pd.read_parquet(folder / "dataset.parquet").head(718).to_parquet(other, index=False)
    swapped = file_md5(other)
    for objects in (dvc.root() / ".dvc" / "cache", Path(dvc.resolved_remote_url())):
        obj = objects / "files" / "md5" / genuine[:2] / genuine[2:]
        obj.chmod(0o644)
        shutil.copyfile(other, obj)
    other.unlink()
    shutil.rmtree(folder)  # a fresh checkout, as in a new home or on another worker

    # Another seed: the splits must be made again, so the raw data is read.
    reseeded = {"ops": {"dataset_splits": {"config": {"seed": 7}}}}
    result = pipeline.materialize([dataset_splits], reseeded, raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("dataset_splits")
    assert failure is not None
    message = str(failure.error)
    assert f"{raw.path}/dataset.parquet has content hash {swapped}" in message
    assert f"records {genuine}" in message
    assert dvc.current_version(dvc.project_path("splits")) == splits_before
    with pytest.raises(DataIntegrityError, match=genuine):
        dvc.snapshot(raw, folder.parent / "copy")
    assert not (folder.parent / "copy").exists()


def test_an_older_version_read_from_history_is_checked_against_its_pointer_there(
    tmp_path: Path,
) -> None:
    home = make_home(tmp_path / "home")
    dvc = DvcResource(repo_path=str(home.data_registry), remote_url=str(home.dvc_remote))
    dvc.ensure_repo()
    relative = dvc.project_path("splits")
    commits = []
    for rows in (40, 20):
        staged = dvc.stage()
        for name in ("train.parquet", "validation.parquet"):
            pd.DataFrame({"a": range(rows)}).to_parquet(staged / name, index=False)
        commits.append(dvc.version(relative, f"{rows} rows", staged=staged).commit)
    data = dvc.read_at(relative, "train.parquet", commits[0])
    assert len(pd.read_parquet(io.BytesIO(data))) == 40

    genuine = hashlib.md5(data, usedforsecurity=False).hexdigest()
    for objects in (dvc.root() / ".dvc" / "cache", home.dvc_remote):
        obj = objects / "files" / "md5" / genuine[:2] / genuine[2:]
        obj.chmod(0o644)
        pd.DataFrame({"a": range(7)}).to_parquet(obj, index=False)
    with pytest.raises(DataIntegrityError, match=f"{relative}/train.parquet has content hash"):
        dvc.read_at(relative, "train.parquet", commits[0])


@pytest.mark.parametrize(
    ("cache_type", "level"), [("symlink", "--project"), ("hardlink", "--local")]
)
def test_link_cache_types_are_refused_before_anything_is_written_or_read(
    home_factory: HomeFactory, tmp_path: Path, cache_type: str, level: str
) -> None:
    pipeline = home_factory("links")
    pipeline.materialize([raw_dataset])
    dvc: DvcResource = pipeline.resources["dvc"]
    relative = dvc.project_path("raw")
    version = dvc.current_version(relative)
    assert version is not None
    subprocess.run(
        [sys.executable, "-m", "dvc", "config", level, "cache.type", cache_type],
        cwd=dvc.root(),
        check=True,
        timeout=120,
    )
    before = _registry_state(dvc, relative)

    result = pipeline.materialize(
        [raw_dataset], _raw_config(_small_csv(tmp_path / "n.csv")), raise_on_error=False
    )
    assert not result.success
    failure = result.failure_data_for_node("raw_dataset")
    assert failure is not None and f"has cache.type {cache_type}" in str(failure.error)
    after = _registry_state(dvc, relative)
    assert (after["pointer"], after["files"]) == (before["pointer"], before["files"])
    with pytest.raises(DvcVersioningError, match="only works with copies"):
        dvc.snapshot(version, tmp_path / "copy")


@pytest.mark.parametrize("namespace", ["../outside", "..", "a/b", "/abs", "", "Upper", "x\n"])
def test_a_namespace_that_is_not_a_plain_name_is_refused_everywhere(
    tmp_path: Path, namespace: str
) -> None:
    from efficientai_assets.client.errors import InvalidArgumentError
    from efficientai_assets.client.wiring import check_namespace

    home = make_home(tmp_path / "home")
    with pytest.raises(ValueError, match=r"EFFICIENTAI_PROJECT.*plain name"):
        build_resources(namespace, home)
    with pytest.raises(ValueError, match="plain name"):
        DvcResource(repo_path=str(home.data_registry), project_namespace=namespace)
    with pytest.raises(ValueError, match="plain name"):
        MlflowResource(project_namespace=namespace)
    with pytest.raises(InvalidArgumentError, match="plain name"):
        check_namespace(namespace)


def test_the_code_location_refuses_a_project_namespace_with_dots(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("not the project's")
    env = {
        **os.environ,
        "EFFICIENTAI_HOME": str(tmp_path / "home"),
        "EFFICIENTAI_PROJECT": "../victim",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", "import efficientai_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert loaded.returncode != 0
    assert "the project namespace (EFFICIENTAI_PROJECT) '../victim'" in loaded.stderr
    assert (victim / "keep.txt").read_text() == "not the project's"


def test_the_registry_writes_and_deletes_nothing_outside_its_root(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    dvc = DvcResource(repo_path=str(home.data_registry), remote_url=str(home.dvc_remote))
    dvc.ensure_repo()
    victim = home.root / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("outside the registry")
    staged = dvc.stage()
    (staged / "x.txt").write_text("data")
    for relative in ("../victim", str(victim), "efficientai/../../victim", "."):
        with pytest.raises(DvcVersioningError, match="not a path inside the data registry"):
            dvc.version(relative, "escape", staged=staged)
    assert (victim / "keep.txt").read_text() == "outside the registry"
    assert not staged.exists()  # the refused stage was discarded, not left behind
