"""The backbone end to end on real stores: what MLflow, DVC and Dagster themselves report."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import dagster as dg
import pytest
from conftest import FAST_TRAINING, HomeFactory, PipelineHome, training_run_config
from mlflow import MlflowClient

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    MODEL_NAME,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TAG_GIT_SHA,
    TAG_QUALITY,
    TRAINING_EXPERIMENT,
)


def _client(pipeline: PipelineHome) -> MlflowClient:
    return pipeline.resources["mlflow"].client()


def _metadata(pipeline: PipelineHome, asset: str) -> dict[str, object]:
    event = pipeline.instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None and event.asset_materialization is not None
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def _training_runs(pipeline: PipelineHome) -> list:
    mlflow = pipeline.resources["mlflow"]
    experiment = _client(pipeline).get_experiment_by_name(
        mlflow.experiment_name(TRAINING_EXPERIMENT)
    )
    assert experiment is not None
    return _client(pipeline).search_runs([experiment.experiment_id])


def test_data_assets_version_parquet_in_dvc_and_push_it(trained_pipeline: PipelineHome) -> None:
    dvc = trained_pipeline.resources["dvc"]
    raw = dvc.current_version(dvc.project_path("raw"))
    splits = dvc.current_version(dvc.project_path("splits"))
    assert raw is not None and splits is not None
    assert _metadata(trained_pipeline, "raw_dataset")["dvc_md5"] == raw.md5
    assert _metadata(trained_pipeline, "raw_dataset")["dagster/row_count"] == 1797
    # Every tracked output is on the remote, and the remote really holds the content.
    assert dvc.status() == {}
    assert any((trained_pipeline.home.dvc_remote / "files" / "md5").rglob("*"))
    # The DVC md5 is the asset's data version.
    record = trained_pipeline.instance.get_latest_materialization_event(
        dg.AssetKey("dataset_splits")
    )
    assert record is not None and record.asset_materialization is not None
    assert (record.asset_materialization.tags or {})["dagster/data_version"] == splits.md5
    log = subprocess.run(
        ["git", "-C", str(dvc.root()), "log", "--format=%s"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "raw dataset from built-in sample" in log and "splits" in log


def test_candidate_is_one_finished_run_with_batched_epoch_metrics(
    trained_pipeline: PipelineHome,
) -> None:
    runs = _training_runs(trained_pipeline)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    history = _client(trained_pipeline).get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == list(range(1, int(FAST_TRAINING["epochs"]) + 1))
    assert run.data.params["epochs"] == str(FAST_TRAINING["epochs"])
    for tag in (
        TAG_DAGSTER_RUN_ID,
        TAG_DAGSTER_ASSET_KEY,
        TAG_DATA_MD5,
        TAG_GIT_SHA,
        TAG_FINGERPRINT,
    ):
        assert run.data.tags.get(tag), f"run lacks tag {tag}"
    assert run.data.tags[TAG_DAGSTER_ASSET_KEY] == "candidate_model"
    assert run.data.tags["hardware.start.thermal_state"] in {
        "nominal",
        "fair",
        "serious",
        "critical",
        "unknown",
    }
    # The BLAS is reported by the training process itself, from what it really loaded.
    assert run.data.tags["blas.source"] in {
        "debian-openblas",
        "system-openblas",
        "pypi-openblas",
        "pypi-mkl",
        "configured",
        "reference",
        "accelerate",
    }
    if run.data.tags["blas.source"] not in {"reference", "accelerate"}:
        assert run.data.tags["blas.reason"].endswith("loaded in this process")
    metadata = _metadata(trained_pipeline, "candidate_model")
    assert str(metadata["mlflow_run_url"]).endswith(run.info.run_id)
    assert metadata["memoized"] is False
    assert math.isfinite(float(metadata["val_accuracy"]))  # type: ignore[arg-type]


def test_registered_model_loads_without_pickle_and_predicts_like_training(
    trained_pipeline: PipelineHome,
) -> None:
    import mlflow
    import pandas as pd

    name = trained_pipeline.resources["mlflow"].model_name(MODEL_NAME)
    client = _client(trained_pipeline)
    challenger = client.get_model_version_by_alias(name, CHALLENGER_ALIAS)
    champion = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    assert str(challenger.version) == str(champion.version) == "1"
    assert challenger.tags[TAG_QUALITY] == "passed"
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@{CHAMPION_ALIAS}"))
    files = {p.name for p in local.rglob("*") if p.is_file()}
    assert {"weights.safetensors", "config.json", "MLmodel"} <= files
    assert not {f for f in files if f.endswith((".pkl", ".pickle"))}, files
    assert "uv.lock" not in files, "the model carries its own requirements, not the project's"
    requirements = (local / "requirements.txt").read_text()
    assert "dagster" not in requirements and "mlx" in requirements
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION_ALIAS}")
    dvc = trained_pipeline.resources["dvc"]
    validation = pd.read_parquet(dvc.root() / dvc.project_path("splits") / "validation.parquet")
    predicted = model.predict(validation.drop(columns=["label"]))
    accuracy = float((predicted["label"] == validation["label"]).mean())
    recorded = float(challenger.tags["efficientai.val_accuracy"])
    assert accuracy == pytest.approx(recorded, abs=1e-6)
    assert accuracy >= 0.9


def test_unchanged_data_code_and_config_train_nothing(trained_pipeline: PipelineHome) -> None:
    runs_before = len(_training_runs(trained_pipeline))
    result = trained_pipeline.materialize([candidate_model], run_config=training_run_config())
    metadata = result.asset_materializations_for_node("candidate_model")[0].metadata
    assert metadata["memoized"].value is True
    assert metadata["model_version"].value == "1"
    assert len(_training_runs(trained_pipeline)) == runs_before


def test_a_changed_config_trains_and_registers_a_new_version(home_factory: HomeFactory) -> None:
    pipeline = home_factory("retrain")
    pipeline.materialize([raw_dataset, dataset_splits, candidate_model], training_run_config())
    result = pipeline.materialize([candidate_model], training_run_config(seed=7))
    metadata = result.asset_materializations_for_node("candidate_model")[0].metadata
    assert metadata["memoized"].value is False
    assert metadata["model_version"].value == "2"
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)
    assert str(_client(pipeline).get_model_version_by_alias(name, CHALLENGER_ALIAS).version) == "2"


def test_failing_quality_check_blocks_the_champion(home_factory: HomeFactory) -> None:
    pipeline = home_factory("blocked")
    result = pipeline.materialize(
        [raw_dataset, dataset_splits, candidate_model, champion_model],
        training_run_config(epochs=1, min_validation_accuracy=0.999),
        raise_on_error=False,
    )
    checks = result.get_asset_check_evaluations()
    assert [c.passed for c in checks] == [False]
    materialized = {
        m.asset_key.to_user_string()
        for m in result.get_asset_materialization_events()
        if m.asset_key is not None
    }
    assert "champion_model" not in materialized
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)
    assert pipeline.resources["mlflow"].version_for_alias(name, CHAMPION_ALIAS) is None
    assert (
        _client(pipeline).get_model_version_by_alias(name, CHALLENGER_ALIAS).tags[TAG_QUALITY]
        == "failed"
    )


def test_training_failure_leaves_a_failed_run_and_no_model_version(
    home_factory: HomeFactory,
) -> None:
    pipeline = home_factory("killed")
    pipeline.materialize([raw_dataset, dataset_splits])
    result = pipeline.materialize(
        [candidate_model],
        training_run_config(epochs=500, timeout_seconds=0.5),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("candidate_model")
    assert failure is not None and "exceeded its 0.5 s limit" in str(failure.error)
    runs = _training_runs(pipeline)
    assert [r.info.status for r in runs] == ["FAILED"]
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)
    assert _client(pipeline).search_model_versions(f"name = '{name}'") == []


def test_champion_stays_when_challenger_is_worse(home_factory: HomeFactory) -> None:
    pipeline = home_factory("worse")
    pipeline.materialize(
        [raw_dataset, dataset_splits, candidate_model, champion_model], training_run_config()
    )
    result = pipeline.materialize(
        [candidate_model, champion_model],
        training_run_config(epochs=1, hidden_units=[4], min_validation_accuracy=0.0),
    )
    metadata = result.asset_materializations_for_node("champion_model")[0].metadata
    assert metadata["promoted"].value is False
    assert "worse" in metadata["reason"].value
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)
    assert str(_client(pipeline).get_model_version_by_alias(name, CHAMPION_ALIAS).version) == "1"
    assert str(_client(pipeline).get_model_version_by_alias(name, CHALLENGER_ALIAS).version) == "2"


def test_a_reused_version_is_judged_against_todays_floor(home_factory: HomeFactory) -> None:
    pipeline = home_factory("floor")
    pipeline.materialize([raw_dataset, dataset_splits, candidate_model], training_run_config())
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)

    strict = pipeline.materialize(
        [candidate_model], training_run_config(min_validation_accuracy=0.999), raise_on_error=False
    )
    [check] = strict.get_asset_check_evaluations()
    assert check.passed is False and "reused version" in (check.description or "")
    assert _client(pipeline).get_model_version(name, "1").tags[TAG_QUALITY] == "failed"

    relaxed = pipeline.materialize([candidate_model], training_run_config())
    [check] = relaxed.get_asset_check_evaluations()
    assert check.passed is True
    assert _client(pipeline).get_model_version(name, "1").tags[TAG_QUALITY] == "passed"
    assert len(_training_runs(pipeline)) == 1


def test_a_challenger_with_other_input_columns_leaves_the_champion_until_an_operator_promotes(
    home_factory: HomeFactory, tmp_path: Path
) -> None:
    import numpy as np
    import pandas as pd

    pipeline = home_factory("new-data")
    assets = [raw_dataset, dataset_splits, candidate_model, champion_model]
    pipeline.materialize(assets, training_run_config())
    rng = np.random.default_rng(0)
    own = pd.DataFrame(rng.normal(size=(400, 3)), columns=["x", "y", "z"])
    own["label"] = (own["x"] > 0).astype(int)
    path = tmp_path / "own.csv"
    own.to_csv(path, index=False)
    config = training_run_config(epochs=20, min_validation_accuracy=0.8)
    config["ops"]["raw_dataset"] = {"config": {"source_path": str(path)}}
    result = pipeline.materialize(assets, config)
    metadata = result.asset_materializations_for_node("champion_model")[0].metadata
    # The accuracy comparison cannot be made, and the pipeline never promotes without it.
    assert metadata["promoted"].value is False
    assert "not comparable" in metadata["reason"].value
    assert "action: promote" in metadata["reason"].value
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)
    assert str(_client(pipeline).get_model_version_by_alias(name, CHAMPION_ALIAS).version) == "1"
