"""A second model family — the small CNN — through the whole pipeline in its own home: data, one
MLflow run, registry and aliases, pyfunc without pickle, quality check, champion, a bento built
by ``bentoml build`` and served by ``bentoml serve`` with the strict schema, and drift; and an
unknown family refused before anything trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import HomeFactory, PipelineHome, training_run_config

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.monitoring.assets import drift_report, inference_batch
from efficientai_assets.defs.serving.assets import model_bento
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.models.families import load_classifier_dir
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    LABEL_COLUMN,
    MODEL_NAME,
    QUALITY_CHECK,
    SPLITS_DIR,
    TAG_QUALITY,
    TRAINING_EXPERIMENT,
)
from resources.bentoml.store import BentoMLResource
from resources.evidently.render import RENDERED, wait_for_report

pytestmark = pytest.mark.slow

TOKEN_ENV = "EFFICIENTAI_TEST_CNN_SERVE_TOKEN"
TOKEN = "test-token-cnn-51c2"
CNN_TRAINING: dict[str, Any] = {"model_family": "cnn", "epochs": 6, "conv_channels": [8, 16]}


@pytest.fixture(scope="module")
def cnn_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One home in which the CNN was trained, promoted and bento'd (module-shared: the tests
    below only read it)."""
    from conftest import make_home, resources_for_tests

    home = make_home(tmp_path_factory.mktemp("cnn") / "home")
    with dg.instance_for_test(temp_dir=str(home.dagster_home)) as instance:
        pipeline = PipelineHome(home, resources_for_tests("test", home), instance)
        store = BentoMLResource(
            bentoml_home=str(home.bentoml_home), port=0, max_rows=64, token_env=TOKEN_ENV
        )
        pipeline.resources["bentoml"] = store
        trained = pipeline.materialize(
            [raw_dataset, dataset_splits, candidate_model, champion_model, model_bento],
            run_config=training_run_config(**CNN_TRAINING),
        )
        yield {"pipeline": pipeline, "result": trained, "store": store}


def _validation(pipeline: PipelineHome) -> pd.DataFrame:
    dvc = pipeline.resources["dvc"]
    return pd.read_parquet(dvc.root() / dvc.project_path(SPLITS_DIR) / "validation.parquet")


def _bento_model_dir(store: BentoMLResource, result: dg.ExecuteInJobResult) -> Path:
    tag = str(result.asset_materializations_for_node("model_bento")[0].metadata["bento_tag"].value)
    info = store.get_bento(tag)
    assert info is not None
    return store.resolved_home() / "models" / Path(*info.model_tags[0].split(":"))


def test_the_cnn_trains_in_one_run_passes_its_check_and_becomes_champion(
    cnn_pipeline: dict[str, Any],
) -> None:
    import mlflow

    pipeline: PipelineHome = cnn_pipeline["pipeline"]
    result: dg.ExecuteInJobResult = cnn_pipeline["result"]
    mlflow_resource = pipeline.resources["mlflow"]
    client = mlflow_resource.client()
    experiment = client.get_experiment_by_name(mlflow_resource.experiment_name(TRAINING_EXPERIMENT))
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["model_family"] == "cnn"
    assert run.data.params["conv_channels"] == "[8, 16]"
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == list(range(1, CNN_TRAINING["epochs"] + 1))

    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == QUALITY_CHECK]
    assert check.passed, check.description
    name = mlflow_resource.model_name(MODEL_NAME)
    challenger = client.get_model_version_by_alias(name, CHALLENGER_ALIAS)
    champion = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    assert str(challenger.version) == str(champion.version) == "1"
    assert champion.tags[TAG_QUALITY] == "passed"

    # The registered files say which family they are; the pyfunc loads them without pickle.
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@{CHAMPION_ALIAS}"))
    config = json.loads(next(local.rglob("config.json")).read_text())
    assert config["family"] == "cnn" and config["image_side"] == 8
    assert not [p for p in local.rglob("*") if p.suffix in {".pkl", ".pickle"}]
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION_ALIAS}")
    validation = _validation(pipeline)
    predicted = model.predict(validation.drop(columns=[LABEL_COLUMN]))
    accuracy = float((predicted["label"] == validation[LABEL_COLUMN]).mean())
    assert accuracy == pytest.approx(float(challenger.tags["efficientai.val_accuracy"]), abs=1e-6)
    assert accuracy >= 0.9
    # The signature the bento's strict schema is derived from: the 64 pixel columns.
    signature = mlflow.models.get_model_info(f"models:/{name}@{CHAMPION_ALIAS}").signature
    assert signature.inputs.input_names() == [c for c in validation.columns if c != LABEL_COLUMN]


def test_the_cnn_pyfunc_loads_where_the_project_is_not_installed(
    cnn_pipeline: dict[str, Any], tmp_path: Path
) -> None:
    """The model modules travel as the MLflow model's code paths: a process that cannot import
    ``efficientai_assets`` still loads and runs the registered CNN."""
    import mlflow

    pipeline: PipelineHome = cnn_pipeline["pipeline"]
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)
    pipeline.resources["mlflow"].client()
    local = mlflow.artifacts.download_artifacts(
        f"models:/{name}@{CHAMPION_ALIAS}", dst_path=str(tmp_path / "model")
    )
    rows = tmp_path / "rows.parquet"
    _validation(pipeline).drop(columns=[LABEL_COLUMN]).head(20).to_parquet(rows)
    script = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'efficientai_assets':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model({local!r})\n"
        f"print(model.predict(pd.read_parquet({str(rows)!r}))['label'].tolist())\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    local_model = load_classifier_dir(Path(local) / "artifacts")
    expected = local_model.predict(pd.read_parquet(rows).to_numpy(dtype=np.float32)).tolist()
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == expected


def test_the_served_cnn_bento_answers_like_the_in_process_model(
    cnn_pipeline: dict[str, Any],
) -> None:
    pipeline: PipelineHome = cnn_pipeline["pipeline"]
    store: BentoMLResource = cnn_pipeline["store"]
    result: dg.ExecuteInJobResult = cnn_pipeline["result"]
    model_dir = _bento_model_dir(store, result)
    local = load_classifier_dir(model_dir)
    assert type(local.config).__name__ == "CNNConfig"
    validation = _validation(pipeline)
    features = validation.drop(columns=[LABEL_COLUMN]).to_numpy(dtype=np.float32)[:50]
    tag = str(result.asset_materializations_for_node("model_bento")[0].metadata["bento_tag"].value)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with store.serve(tag, env={TOKEN_ENV: TOKEN}) as server:
        server.wait_until_ready()
        with httpx.Client(timeout=60) as http:
            answer = http.post(
                server.url + "/predict", json={"instances": features.tolist()}, headers=auth
            )
            short_row = http.post(
                server.url + "/predict", json={"instances": [[0.5] * 63]}, headers=auth
            )
            nan_row = http.post(
                server.url + "/predict",
                content=b'{"instances": [[' + b"0.5," * 63 + b"NaN]]}",
                headers={**auth, "Content-Type": "application/json"},
            )
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert [row["label"] for row in rows] == local.predict(features).tolist()
    proba = np.array([[row["probabilities"][str(c)] for c in local.config.classes] for row in rows])
    np.testing.assert_allclose(proba, local.predict_proba(features), rtol=1e-5, atol=1e-6)
    # The strict schema, sized from the model's 64 inputs, refuses what it refuses for the MLP.
    assert short_row.status_code == 400 and "at least 64" in short_row.text
    assert nan_row.status_code == 400 and "finite" in nan_row.text


def test_drift_scores_the_cnn_champion(cnn_pipeline: dict[str, Any]) -> None:
    pipeline: PipelineHome = cnn_pipeline["pipeline"]
    result = dg.materialize(
        [inference_batch, drift_report],
        partition_key="2026-02-01",
        resources=pipeline.resources,
        instance=pipeline.instance,
        run_config={"ops": {"inference_batch": {"config": {"shift": "none"}}}},
    )
    meta: dict[str, Any] = {
        k: v.value
        for k, v in result.asset_materializations_for_node("drift_report")[-1].metadata.items()
    }
    assert meta["columns_tested"] == 64
    assert 0.8 <= meta["champion_accuracy"] <= 1.0
    # Evidently's HTML follows from a child process: wait for it so nothing outlives the test.
    day = pipeline.home.reports_for("test") / "2026-02-01"  # the namespace's own folder
    assert wait_for_report(day, timeout_seconds=600) == RENDERED


def test_an_unknown_family_is_a_config_error_before_any_training(
    home_factory: HomeFactory,
) -> None:
    pipeline = home_factory("unknown-family")
    with pytest.raises(dg.DagsterInvalidConfigError) as raised:
        pipeline.materialize(
            [raw_dataset, dataset_splits, candidate_model],
            run_config=training_run_config(model_family="transformer"),
        )
    message = str(raised.value)
    assert "model_family" in message and "transformer" in message
    assert "'mlp'" in message and "'cnn'" in message
    # Nothing ran: no Dagster run, no MLflow training experiment, no data version.
    assert pipeline.instance.get_runs() == []
    mlflow_resource = pipeline.resources["mlflow"]
    experiment = mlflow_resource.client().get_experiment_by_name(
        mlflow_resource.experiment_name(TRAINING_EXPERIMENT)
    )
    assert experiment is None
