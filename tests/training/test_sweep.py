"""The ``training_sweep`` job on the built-in sample in fresh homes: a parent MLflow run with one
child run per configuration, the best registered as challenger and promoted through the blocking
check, a second sweep that reuses everything, failing configurations, and refused config."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest
from conftest import PipelineHome

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.jobs import sweep_job
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.defs.training.sweep_assets import sweep_challenger, sweep_trials
from efficientai_assets.defs.training.sweep_config import sweep_run_config
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    MODEL_NAME,
    SWEEP_JOB,
    TAG_DAGSTER_ASSET_KEY,
    TAG_DATA_MD5,
    TAG_FINGERPRINT,
    TAG_GIT_SHA,
    TAG_PARENT_RUN,
    TRAINING_EXPERIMENT,
)

SMALL = {"epochs": 4, "batch_size": 64}


def run_sweep(home: PipelineHome, sweep: dict[str, Any]) -> dg.ExecuteInProcessResult:
    definitions = dg.Definitions(
        assets=[raw_dataset, dataset_splits, candidate_model, champion_model, sweep_trials,
                sweep_challenger],
        jobs=[sweep_job],
        resources=home.resources,
    )  # fmt: skip
    return definitions.resolve_job_def(SWEEP_JOB).execute_in_process(
        run_config=sweep_run_config(sweep), instance=home.instance, raise_on_error=False
    )


def with_data(home_factory: Any) -> PipelineHome:
    home: PipelineHome = home_factory("home")
    home.materialize([raw_dataset, dataset_splits])
    return home


def training_runs(home: PipelineHome) -> list[Any]:
    client = home.resources["mlflow"].client()
    experiment = client.get_experiment_by_name(
        home.resources["mlflow"].experiment_name(TRAINING_EXPERIMENT)
    )
    return [] if experiment is None else list(client.search_runs([experiment.experiment_id]))


def versions(home: PipelineHome) -> list[Any]:
    mlflow = home.resources["mlflow"]
    return list(mlflow.client().search_model_versions(f"name = '{mlflow.model_name(MODEL_NAME)}'"))


def alias(home: PipelineHome, name: str) -> str | None:
    mlflow = home.resources["mlflow"]
    version = mlflow.version_for_alias(mlflow.model_name(MODEL_NAME), name)
    return None if version is None else str(version.version)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    (event,) = [
        e for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(asset)
    ]  # fmt: skip
    materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}


def test_sweep_trains_child_runs_promotes_the_best_and_a_second_sweep_reuses_all(
    home_factory: Any,
) -> None:
    home = with_data(home_factory)
    sweep = {"base": SMALL, "grid": {"hidden_units": [[32], [64]], "learning_rate": [0.01, 0.003]}}
    result = run_sweep(home, sweep)
    assert result.success

    runs = training_runs(home)
    (parent,) = [r for r in runs if TAG_PARENT_RUN not in r.data.tags]
    children = [r for r in runs if r.data.tags.get(TAG_PARENT_RUN) == parent.info.run_id]
    assert len(children) == 4 and len(runs) == 5
    assert {r.info.status for r in runs} == {"FINISHED"}
    client = home.resources["mlflow"].client()
    for child in children:
        tags = child.data.tags
        assert tags[TAG_DAGSTER_ASSET_KEY].startswith("sweep_trials[config_")
        assert tags[TAG_FINGERPRINT] and tags[TAG_DATA_MD5] and tags[TAG_GIT_SHA]
        assert "gate.decision" in tags and any(k.startswith("hardware.end.") for k in tags)
        assert child.data.params["epochs"] == "4" and "learning_rate" in child.data.params
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert [m.step for m in history] == [1, 2, 3, 4]
    best_child = max(
        children, key=lambda r: (r.data.metrics["val_accuracy"], -r.data.metrics["val_loss"])
    )
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(
        best_child.data.metrics["val_accuracy"]
    )
    assert parent.data.metrics["configurations"] == 4
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep_results.json", "sweep_results.md"} <= artifacts

    table = metadata(result, "sweep_trials")
    assert table["results"].count("| trained |") == 4 and table["results"].count("**best**") == 1
    best_version = table["best_model_version"]
    (registered,) = [v for v in versions(home) if str(v.version) == best_version]
    assert registered.run_id == best_child.info.run_id
    assert alias(home, CHALLENGER_ALIAS) == best_version == alias(home, CHAMPION_ALIAS)
    assert metadata(result, "champion_model")["promoted"] is True
    (check,) = result.get_asset_check_evaluations()
    assert check.passed and check.asset_key == dg.AssetKey("sweep_challenger")

    again = run_sweep(home, sweep)
    assert again.success
    assert len(training_runs(home)) == 5 and len(versions(home)) == 4  # nothing new
    assert metadata(again, "sweep_trials")["results"].count("| reused |") == 4
    assert metadata(again, "sweep_trials")["parent_run_reused"] is True
    assert alias(home, CHAMPION_ALIAS) == best_version


def test_failing_configurations_leave_the_others_and_the_best_of_the_rest_wins(
    home_factory: Any,
) -> None:
    home = with_data(home_factory)
    # A 10 ms limit stops a training process before it has even started: those two fail.
    sweep = {"base": SMALL, "grid": {"hidden_units": [[32], [48]], "timeout_seconds": [0.01, 600]}}
    result = run_sweep(home, sweep)
    assert result.success
    table = metadata(result, "sweep_trials")
    assert table["configurations_failed"] == 2 and table["configurations_trained"] == 2
    assert table["results"].count("failed: TrainingWorkerError") == 2
    assert "2 failed: config_000, config_002" in table["reason"]
    assert table["best"].startswith(("config_001", "config_003"))
    assert alias(home, CHAMPION_ALIAS) == table["best_model_version"]
    statuses = sorted(r.info.status for r in training_runs(home) if TAG_PARENT_RUN in r.data.tags)
    assert statuses == ["FAILED", "FAILED", "FINISHED", "FINISHED"]


def test_nothing_is_promoted_when_no_configuration_passes(home_factory: Any) -> None:
    home = with_data(home_factory)
    all_fail = run_sweep(
        home, {"base": {**SMALL, "timeout_seconds": 0.01}, "grid": {"seed": [0, 1]}}
    )
    assert not all_fail.success
    assert alias(home, CHALLENGER_ALIAS) is None and versions(home) == []
    (parent,) = [r for r in training_runs(home) if TAG_PARENT_RUN not in r.data.tags]
    assert parent.info.status == "FAILED"

    below_floor = run_sweep(
        home,
        {"base": {"epochs": 1, "batch_size": 64, "min_validation_accuracy": 0.999},
         "grid": {"learning_rate": [0.001, 0.002]}},
    )  # fmt: skip
    assert not below_floor.success
    (check,) = below_floor.get_asset_check_evaluations()
    assert not check.passed
    assert alias(home, CHALLENGER_ALIAS) is not None and alias(home, CHAMPION_ALIAS) is None
    assert dg.AssetKey("champion_model") not in {
        e.asset_key for e in below_floor.get_asset_materialization_events()
    }


@pytest.mark.parametrize(
    ("sweep", "named"),
    [
        ({"grid": {}}, "the sweep is empty"),
        ({"grid": {"dropout": [0.1, 0.2]}}, "'dropout', which is not a field"),
        ({"grid": {"learning_rate": [0.01, 3.0]}}, "learning_rate=3.0"),
    ],
)
def test_bad_sweep_config_fails_before_any_training(
    home_factory: Any, sweep: dict[str, Any], named: str
) -> None:
    home = home_factory("home")  # no data even: the config is refused first
    result = run_sweep(home, sweep)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "sweep_trials.plan_sweep"
    message = failure.event_specific_data.error.message  # type: ignore[union-attr]
    assert "sweep config error" in message and named in message
    assert training_runs(home) == [] and versions(home) == []
