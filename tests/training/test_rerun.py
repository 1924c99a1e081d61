"""A re-run with nothing changed: every step answers from its last record, loads no heavy library,
and the hardware gate holds nothing that trains nothing; any change makes the step work again.

One home runs data → training → a monitoring day for real (MLflow SQLite store, DVC registry with
a local remote, MLX training, the Evidently report rendered by its child process); the re-runs
read the same Dagster instance, in this process or in a fresh one.
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
from conftest import FAST_TRAINING, PipelineHome, make_home, resources_for_tests

from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.monitoring.assets import drift_report, inference_batch
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from efficientai_assets.defs.training.registry_peek import peek_aliases
from efficientai_assets.names import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    MODEL_NAME,
    TAG_ROLLED_BACK,
)
from resources.evidently.render import RENDERED, wait_for_report
from resources.hardware.gate_settings import GateSettings
from resources.hardware.resource import HardwareResource
from resources.mlflow.resource import MlflowResource

DAY = "2026-03-02"
PIPELINE = [raw_dataset, dataset_splits, candidate_model, champion_model]
MONITORING = [inference_batch, drift_report]
TRAINING = {"ops": {"candidate_model": {"config": FAST_TRAINING}}}
HEAVY = ("mlflow", "evidently", "bentoml", "dvc", "sklearn", "pandas", "scipy")
TESTS = Path(__file__).resolve().parents[1]

# The re-run in a fresh interpreter: what it materialized and which heavy modules it loaded.
RERUN = """
import json, sys
sys.path.insert(0, sys.argv[2])
import dagster as dg
from conftest import FAST_TRAINING, resources_for_tests
from efficientai_assets.defs.data.assets import dataset_splits, raw_dataset
from efficientai_assets.defs.monitoring.assets import drift_report, inference_batch
from efficientai_assets.defs.training.assets import candidate_model, champion_model
from pathlib import Path
from resources.home import EfficientAIHome

home = EfficientAIHome(Path(sys.argv[1]))
resources = resources_for_tests("test", home)
out = {}
with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
    runs = [
        dg.materialize([raw_dataset, dataset_splits, candidate_model, champion_model],
                       resources=resources, instance=instance,
                       run_config={"ops": {"candidate_model": {"config": FAST_TRAINING}}}),
        dg.materialize([inference_batch, drift_report], resources=resources, instance=instance,
                       partition_key=sys.argv[3]),
    ]
    for result in runs:
        for event in result.get_asset_materialization_events():
            meta = event.materialization.metadata
            memo = meta.get("memoized")
            out[event.asset_key.to_user_string()] = bool(memo.value) if memo else False
heavy = sorted(m for m in sys.argv[4].split(",") if m in sys.modules)
print(json.dumps({"memoized": out, "heavy": heavy}))
"""


def memoized(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    out = {}
    for event in result.get_asset_materialization_events():
        memo = event.materialization.metadata.get("memoized")
        out[event.materialization.asset_key.to_user_string()] = bool(memo.value) if memo else False
    return out


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == asset
    ]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def ran_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineHome]:
    """A home in which the pipeline and one monitoring day ran once, report rendered."""
    home = make_home(tmp_path_factory.mktemp("rerun") / "home")
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        pipeline = PipelineHome(home, resources_for_tests("test", home), instance)
        first = pipeline.materialize(PIPELINE, run_config=TRAINING)
        assert not any(memoized(first).values())
        day = dg.materialize(
            MONITORING, resources=pipeline.resources, instance=instance, partition_key=DAY
        )
        assert metadata_of(day, "drift_report")["evidently_report"] == "rendering"
        assert wait_for_report(day_folder(pipeline), timeout_seconds=600) == RENDERED
        yield pipeline


def day_folder(pipeline: PipelineHome) -> Path:
    """The monitored day's folder: the namespace's reports folder (``home.reports_for``)."""
    return pipeline.home.reports_for(pipeline.resources["mlflow"].project_namespace) / DAY


def rerun_monitoring(pipeline: PipelineHome) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        MONITORING, resources=pipeline.resources, instance=pipeline.instance, partition_key=DAY
    )


def test_a_rerun_with_nothing_changed_answers_every_step_without_heavy_imports(
    ran_once: PipelineHome,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", RERUN, str(ran_once.home.root), str(TESTS), DAY, ",".join(HEAVY)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["memoized"] == {
        "raw_dataset": True,
        "dataset_splits": True,
        "candidate_model": True,
        "champion_model": True,
        "inference_batch": True,
        "drift_report": True,
    }
    assert report["heavy"] == []


def test_the_gate_does_not_hold_a_candidate_step_that_trains_nothing(
    ran_once: PipelineHome, tmp_path: Path
) -> None:
    """A machine too hot for training holds neither the recalled answer nor a registry reuse
    (a fresh Dagster instance has no record, so the step looks the version up in MLflow), but
    still holds a step that would train."""
    trace = tmp_path / "hot.json"
    trace.write_text(
        json.dumps({"start": 1_000_000, "readings": [{"at": 0, "thermal_state": "critical"}]})
    )
    hot = HardwareResource(
        source="replay",
        replay_trace_path=str(trace),
        gate=GateSettings(
            bad_readings_to_hold=1,
            retry_initial_seconds=0.02,
            retry_max_seconds=0.05,
            max_wait_seconds=0.2,
        ),
    )
    resources = {**ran_once.resources, "hardware": hot}
    recalled = dg.materialize(
        [candidate_model], resources=resources, instance=ran_once.instance, run_config=TRAINING
    )
    assert metadata_of(recalled, "candidate_model")["memoized"] is True
    with dg.instance_for_test() as fresh:
        reused = dg.materialize(
            [candidate_model], resources=resources, instance=fresh, run_config=TRAINING
        )
        meta = metadata_of(reused, "candidate_model")
        assert meta["memoized"] is True and "nothing loaded" not in meta["reason"]
        retraining = {"ops": {"candidate_model": {"config": {**FAST_TRAINING, "seed": 99}}}}
        held = dg.materialize(
            [candidate_model],
            resources=resources,
            instance=fresh,
            run_config=retraining,
            raise_on_error=False,
        )
    assert not held.success
    retries = [e for e in held.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries, "a step that would train is still held by the gate"


def test_a_moved_alias_or_changed_tag_makes_the_training_steps_look_again(
    ran_once: PipelineHome,
) -> None:
    mlflow: MlflowResource = ran_once.resources["mlflow"]
    client, name = mlflow.client(), mlflow.model_name(MODEL_NAME)
    version = client.get_model_version_by_alias(name, CHALLENGER_ALIAS).version
    client.delete_registered_model_alias(name, CHALLENGER_ALIAS)
    again = ran_once.materialize([candidate_model], run_config=TRAINING)
    meta = metadata_of(again, "candidate_model")
    assert "nothing loaded" not in meta["reason"] and meta["model_version"] == str(version)
    assert client.get_model_version_by_alias(name, CHALLENGER_ALIAS).version == version

    client.set_model_version_tag(name, version, TAG_ROLLED_BACK, "deployment 9: test")
    try:
        contest = ran_once.materialize([champion_model])
        assert metadata_of(contest, "champion_model").get("memoized") is None
    finally:
        client.delete_model_version_tag(name, version, TAG_ROLLED_BACK)


def test_the_registry_peek_reads_what_mlflow_reads(ran_once: PipelineHome) -> None:
    mlflow: MlflowResource = ran_once.resources["mlflow"]
    client, name = mlflow.client(), mlflow.model_name(MODEL_NAME)
    peeked = peek_aliases(mlflow, name, (CHAMPION_ALIAS, "nobody"))
    assert peeked is not None and peeked["nobody"] is None
    champion = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    seen = peeked[CHAMPION_ALIAS]
    assert seen is not None
    assert (seen.version, dict(seen.tags), seen.run_id) == (
        str(champion.version),
        dict(champion.tags),
        champion.run_id,
    )
    server = MlflowResource(tracking_uri="http://127.0.0.1:9")
    assert peek_aliases(server, name, (CHAMPION_ALIAS,)) is None


def test_a_changed_batch_file_or_a_missing_report_is_worked_again(ran_once: PipelineHome) -> None:
    day = day_folder(ran_once)
    batch = day / "batch.parquet"
    batch.write_bytes(batch.read_bytes() + b"\n")  # no longer the recorded bytes
    again = rerun_monitoring(ran_once)
    # The day's batch is drawn again (same seed: the recorded bytes), so its verdict still holds.
    assert memoized(again) == {"inference_batch": False, "drift_report": True}
    (day / "drift.html").unlink()
    assert memoized(rerun_monitoring(ran_once)) == {"inference_batch": True, "drift_report": False}
    assert wait_for_report(day, timeout_seconds=600) == RENDERED
    assert memoized(rerun_monitoring(ran_once)) == {"inference_batch": True, "drift_report": True}


def test_a_changed_source_file_is_read_and_versioned_again(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    source = tmp_path / "data.csv"
    rows = ["a,b,label"] + [f"{i},{i % 7},{i % 2}" for i in range(60)]
    source.write_text("\n".join(rows) + "\n")
    config = {"ops": {"raw_dataset": {"config": {"source_path": str(source)}}}}
    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        pipeline = PipelineHome(home, resources_for_tests("test", home), instance)
        first = metadata_of(pipeline.materialize([raw_dataset], config), "raw_dataset")
        second = metadata_of(pipeline.materialize([raw_dataset], config), "raw_dataset")
        assert second["memoized"] is True and second["dvc_md5"] == first["dvc_md5"]
        source.write_text("\n".join([*rows, "99,1,0"]) + "\n")
        third = metadata_of(pipeline.materialize([raw_dataset], config), "raw_dataset")
    assert "memoized" not in third and third["dvc_md5"] != first["dvc_md5"]
    assert third["dagster/row_count"] == 61
