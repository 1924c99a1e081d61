"""PostgreSQL as the Dagster storage and the MLflow backend: configuration, not code changes.

Runs against the PostgreSQL server on 127.0.0.1:5432 in throw-away databases; skipped (with the
reason) only where no server answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from conftest import (
    make_home,
    resources_for_tests,
    throwaway_postgres_databases,
    training_run_config,
)

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.names import CHAMPION_ALIAS, MODEL_NAME, TRAINING_EXPERIMENT


@pytest.fixture
def databases() -> Iterator[dict[str, str]]:
    with throwaway_postgres_databases("efficientai", "dagster", "mlflow") as urls:
        yield urls


def test_pipeline_runs_with_postgres_dagster_storage_and_mlflow_backend(
    databases: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EFFICIENTAI_MLFLOW_TRACKING_URI", databases["mlflow"])
    home = make_home(tmp_path / "home")
    resources = resources_for_tests("pg", home)
    storage = {"storage": {"postgres": {"postgres_url": databases["dagster"]}}}
    with dg.instance_for_test(overrides=storage, temp_dir=str(home.dagster_home)) as instance:
        dg.materialize(
            [raw_dataset, dataset_splits, candidate_model, champion_model],
            resources=resources,
            instance=instance,
            run_config=training_run_config(),
        )
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        event = instance.get_latest_materialization_event(dg.AssetKey("champion_model"))
        assert event is not None

    mlflow = resources["mlflow"]
    assert mlflow.resolved_tracking_uri().startswith("postgresql://")
    client = mlflow.client()
    experiment = client.get_experiment_by_name(mlflow.experiment_name(TRAINING_EXPERIMENT))
    assert experiment is not None
    assert experiment.artifact_location.startswith(f"file://{home.mlflow_artifacts}")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    champion = client.get_model_version_by_alias(mlflow.model_name(MODEL_NAME), CHAMPION_ALIAS)
    assert str(champion.version) == "1"
