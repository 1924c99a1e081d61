"""The serving steps on a re-run: with nothing changed they answer from their records without
loading MLflow or BentoML and write no new deployment record; a real change builds or deploys.

One home runs data → training → bento → deployment for real (MLflow SQLite store, DVC registry,
MLX training, ``bentoml build``); the re-runs read the same Dagster instance, in a fresh
interpreter (to see which libraries a re-run loads) or in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from conftest import PipelineHome, make_home, resources_for_tests, training_run_config

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.serving.assets import deployment, model_bento
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.names import CHAMPION_ALIAS, MODEL_NAME, TAG_DEPLOYMENT_ID
from resources.bentoml.store import BentoMLResource

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parents[1]
HEAVY = ("mlflow", "bentoml")

# The serving re-run in a fresh interpreter: what it answered and which heavy modules it loaded.
RERUN = """
import json, sys
sys.path.insert(0, sys.argv[2])
import dagster as dg
from conftest import resources_for_tests
from efficientai_assets.defs.serving.assets import deployment, model_bento
from pathlib import Path
from resources.home import EfficientAIHome

home = EfficientAIHome(Path(sys.argv[1]))
with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
    result = dg.materialize([model_bento, deployment], resources=resources_for_tests("test", home),
                            instance=instance)
out = {}
for event in result.get_asset_materialization_events():
    meta = event.materialization.metadata
    out[event.asset_key.to_user_string()] = {
        k: getattr(v, "value", v) for k, v in meta.items()
        if k in ("memoized", "bento_tag", "built", "deployment_id", "live_bento")
    }
heavy = sorted(m for m in sys.argv[3].split(",") if m in sys.modules)
print(json.dumps({"steps": out, "heavy": heavy}))
"""


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == asset
    ]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def records(pipeline: PipelineHome) -> list[str]:
    store: BentoMLResource = pipeline.resources["bentoml"]
    name = pipeline.resources["mlflow"].model_name(MODEL_NAME)
    return sorted(p.name for p in store.deployments_dir(name).glob("[0-9]*.json"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineHome]:
    """A home in which the pipeline ran once through the deployment (record #1)."""
    home = make_home(tmp_path_factory.mktemp("serving-recall") / "home")
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        pipeline = PipelineHome(home, resources_for_tests("test", home), instance)
        first = pipeline.materialize(
            [raw_dataset, dataset_splits, candidate_model, champion_model, model_bento, deployment],
            run_config=training_run_config(),
        )
        assert metadata_of(first, "deployment")["deployment_id"] == 1
        yield pipeline


def test_a_serving_rerun_with_nothing_changed_loads_neither_mlflow_nor_bentoml(
    served: PipelineHome,
) -> None:
    before = metadata_of(served.materialize([model_bento]), "model_bento")  # a full-step record
    done = subprocess.run(
        [sys.executable, "-c", RERUN, str(served.home.root), str(TESTS), ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    bento, live = report["steps"]["model_bento"], report["steps"]["deployment"]
    assert (bento["memoized"], bento["built"], bento["bento_tag"]) == (
        True,
        False,
        before["bento_tag"],
    )
    assert (live["memoized"], live["deployment_id"], live["live_bento"]) == (
        True,
        1,
        before["bento_tag"],
    )
    assert records(served) == ["000001.json"]  # the record stands; none appended


def test_changed_serving_settings_build_another_bento_and_deploy_it(served: PipelineHome) -> None:
    """A changed limit is baked into the bento: the step builds a new one, and the deployment,
    whose live bento is no longer the champion's, writes a new record serving it."""
    before = records(served)
    store: BentoMLResource = served.resources["bentoml"]
    changed = {
        **served.resources,
        "bentoml": BentoMLResource(bentoml_home=store.bentoml_home, max_rows=33),
    }
    result = dg.materialize([model_bento, deployment], resources=changed, instance=served.instance)
    bento, live = metadata_of(result, "model_bento"), metadata_of(result, "deployment")
    assert "memoized" not in bento and bento["built"] is True
    assert "memoized" not in live
    assert live["live_bento"] == bento["bento_tag"]
    assert live["deployment_id"] == int(before[-1].removesuffix(".json")) + 1
    settings = Path(str(bento["bento_path"])) / "src" / "efficientai_assets" / "bento_service"
    assert json.loads((settings / "serving.json").read_text())["max_rows"] == 33


def test_a_missing_bento_or_registry_tag_makes_the_serving_steps_work_again(
    served: PipelineHome,
) -> None:
    """A bento removed from the store is rebuilt (never answered from a record that names it);
    a champion whose tags do not name the live record gets a new record and its tags back."""
    import shutil

    served.materialize([model_bento, deployment])  # settled on this home's own settings
    first = served.materialize([model_bento, deployment])
    assert metadata_of(first, "model_bento")["memoized"] is True
    assert metadata_of(first, "deployment")["memoized"] is True
    shutil.rmtree(Path(str(metadata_of(first, "model_bento")["bento_path"])))

    mlflow = served.resources["mlflow"]
    name = mlflow.model_name(MODEL_NAME)
    champion = mlflow.version_for_alias(name, CHAMPION_ALIAS)
    mlflow.client().delete_model_version_tag(name, champion.version, TAG_DEPLOYMENT_ID)
    count = len(records(served))

    again = served.materialize([model_bento, deployment])
    bento, live = metadata_of(again, "model_bento"), metadata_of(again, "deployment")
    assert "memoized" not in bento and Path(str(bento["bento_path"])).is_dir()
    assert "memoized" not in live and len(records(served)) == count + 1
    tags = mlflow.client().get_model_version(name, champion.version).tags
    assert tags[TAG_DEPLOYMENT_ID] == str(live["deployment_id"])

    third = served.materialize([model_bento, deployment])
    assert metadata_of(third, "model_bento")["memoized"] is True
    assert metadata_of(third, "deployment")["memoized"] is True
    assert len(records(served)) == count + 1


def test_a_move_asked_for_with_a_reason_is_always_recorded(served: PipelineHome) -> None:
    count = len(records(served))
    result = served.materialize(
        [deployment], run_config={"ops": {"deployment": {"config": {"reason": "audit"}}}}
    )
    live = metadata_of(result, "deployment")
    assert "memoized" not in live and live["reason"] == "audit"
    assert len(records(served)) == count + 1
