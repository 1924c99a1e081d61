"""PostgreSQL as the Dagster storage and the MLflow backend: configuration, not code changes.

Runs against the PostgreSQL server on 127.0.0.1:5432 in throw-away databases; skipped (with the
reason) only where no server answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from conftest import make_home, resources_for_tests, training_run_config

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.names import CHAMPION_ALIAS, MODEL_NAME, TRAINING_EXPERIMENT

SERVER = "postgresql://postgres@127.0.0.1:5432"


def _admin(statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"{SERVER}/postgres", connect_timeout=3)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    import psycopg2

    try:
        _admin("SELECT 1")
    except psycopg2.OperationalError as error:
        pytest.skip(f"no PostgreSQL server at {SERVER}: {error}")
    suffix = uuid.uuid4().hex[:8]
    names = (f"efficientai_dagster_{suffix}", f"efficientai_mlflow_{suffix}")
    for name in names:
        _admin(f"CREATE DATABASE {name}")
    yield names
    for name in names:
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_pipeline_runs_with_postgres_dagster_storage_and_mlflow_backend(
    databases: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_db, mlflow_db = databases
    monkeypatch.setenv("EFFICIENTAI_MLFLOW_TRACKING_URI", f"{SERVER}/{mlflow_db}")
    home = make_home(tmp_path / "home")
    resources = resources_for_tests("pg", home)
    storage = {"storage": {"postgres": {"postgres_url": f"{SERVER}/{dagster_db}"}}}
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
