"""The script client on real stores in a temporary home: what MLflow's own client, ``dvc status``
and ``bentoml.list()`` report after a script-style workflow; runs kept apart across threads; bad
input refused with errors that name the problem."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import bentoml_list, dvc_cloud_status
from mlflow import MlflowClient

from efficientai_assets.client import MLOpsClient, MLOpsClientError, NoActiveRunError
from efficientai_assets.models import mlp
from resources.evidently.resource import DriftInputError
from resources.hardware.resource import HardwareResource

NAMESPACE = "clienttest"


@pytest.fixture(scope="module")
def home_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("client") / "home"


@pytest.fixture(scope="module")
def client(home_root: Path) -> MLOpsClient:
    return MLOpsClient(NAMESPACE, workspace_root=home_root)


@pytest.fixture(scope="module")
def tracking(client: MLOpsClient) -> MlflowClient:
    return MlflowClient(tracking_uri=client.home.mlflow_tracking_uri)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MLX classifier (4 features, 2 classes) saved as weights.safetensors + config.json."""
    rng = np.random.default_rng(0)
    features = rng.normal(size=(128, 4)).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.int64)
    params = mlp.TrainingParams(
        epochs=2, batch_size=32, learning_rate=0.01, hidden_units=(8,), seed=0
    )
    outcome, model = mlp.train(features, labels, features, labels, ["f0", "f1", "f2", "f3"], params)
    folder = tmp_path_factory.mktemp("model") / "tiny"
    mlp.save(model, outcome.config, folder)
    return folder


def _frame(rows: int, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(loc=shift, size=(rows, 3)), columns=["a", "b", "c"])


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("EFFICIENTAI_PROJECT", "BENTOML_HOME")}


def _git(registry: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(registry), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


# -- the script-style workflow ------------------------------------------------------------------


def test_versioning_without_push_commits_the_pointer_and_keeps_the_data_local(
    client: MLOpsClient, tmp_path: Path
) -> None:
    csv_path = tmp_path / "local.csv"
    _frame(20).to_csv(csv_path, index=False)
    assert client.version_dataset(csv_path) is True
    relative = client.dataset_path(csv_path)
    registry = client.dvc_client.root()
    assert _git(registry, "log", "--format=%H", "--", f"{relative}.dvc")
    not_pushed = dvc_cloud_status(registry)
    assert not_pushed, "the content should not be on the remote yet"
    assert client.version_dataset(csv_path, push_to_remote=True) is True
    assert dvc_cloud_status(registry) == {}


def test_script_workflow_lands_in_mlflow_the_dvc_registry_and_the_bento_store(
    client: MLOpsClient, tracking: MlflowClient, small_model: Path, tmp_path: Path
) -> None:
    csv_path = tmp_path / "train.csv"
    _frame(50).to_csv(csv_path, index=False)
    assert client.version_dataset(csv_path, push_to_remote=True) is True
    relative = client.dataset_path(csv_path)
    assert relative == f"{NAMESPACE}/datasets/train.csv"
    registry = client.dvc_client.root()
    assert dvc_cloud_status(registry) == {}  # the content is on the remote
    assert _git(registry, "log", "--format=%H", "--", f"{relative}.dvc")  # its pointer committed
    assert not _git(registry, "status", "--porcelain")

    experiment_id = client.create_experiment("workflow", tags={"team": "vision"})
    assert client.create_experiment("workflow") == experiment_id
    with client.start_run("five-epochs", experiment_id=experiment_id, tags={"try": "1"}) as run:
        client.log_params({"learning_rate": 0.01, "epochs": 5})
        for epoch in range(5):
            client.log_metrics(
                {"loss": 1.0 / (epoch + 1), "accuracy": np.float32(0.5 + 0.1 * epoch)}, step=epoch
            )
        client.log_artifact(small_model)
        client.log_artifact(csv_path)
        deployed = client.deploy_model(small_model, model_name="tiny", version="1")

    experiment = tracking.get_experiment(experiment_id)
    assert experiment.name == f"{NAMESPACE}/workflow"
    assert experiment.tags["team"] == "vision"
    finished = tracking.get_run(run.run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.run_name == "five-epochs"
    assert finished.data.params == {"learning_rate": "0.01", "epochs": "5"}
    history = tracking.get_metric_history(run.run_id, "loss")
    assert [(m.step, round(m.value, 6)) for m in history] == [
        (e, round(1.0 / (e + 1), 6)) for e in range(5)
    ]
    assert [m.step for m in tracking.get_metric_history(run.run_id, "accuracy")] == list(range(5))
    assert finished.data.tags["try"] == "1"
    assert finished.data.tags["efficientai.project"] == NAMESPACE
    assert {a.path for a in tracking.list_artifacts(run.run_id)} == {"tiny", "train.csv"}
    assert {a.path for a in tracking.list_artifacts(run.run_id, "tiny")} == {
        "tiny/weights.safetensors",
        "tiny/config.json",
    }

    assert deployed["status"] == "success", deployed
    assert deployed["bento_tag"].startswith(f"{NAMESPACE}-tiny:v1-")
    assert finished.data.tags["efficientai.bento_tag"] == deployed["bento_tag"]
    listed = bentoml_list(client.home.bentoml_home)
    assert deployed["bento_tag"] in listed
    assert listed[deployed["bento_tag"]]["model_version"] == "1"
    assert listed[deployed["bento_tag"]]["mlflow_run_id"] == run.run_id

    client.set_reference_data(_frame(2000, seed=1))
    shifted = client.evidently_monitor.generate_drift_report(_frame(2000, shift=1.5, seed=2))
    assert shifted["drift_detected"] is True and shifted["drift_score"] == 1.0
    same = client.evidently_monitor.generate_drift_report(_frame(2000, seed=3))
    assert same["drift_detected"] is False and same["drift_score"] == 0.0
    explicit = client.evidently_monitor.generate_drift_report(
        _frame(2000, shift=1.5, seed=2), reference=_frame(2000, shift=1.5, seed=4)
    )
    assert explicit["drift_detected"] is False


def test_a_run_whose_block_raises_ends_failed_and_the_error_propagates(
    client: MLOpsClient, tracking: MlflowClient
) -> None:
    with pytest.raises(ZeroDivisionError), client.start_run("breaks") as run:
        client.log_metrics({"before": 1.0})
        _ = 1 / 0
    assert tracking.get_run(run.run_id).info.status == "FAILED"
    assert client.active_run is None


def test_runs_without_an_experiment_go_to_the_training_experiment_and_children_nest(
    client: MLOpsClient, tracking: MlflowClient
) -> None:
    with client.start_run("outer") as outer, client.start_run("inner") as inner:
        client.log_metrics({"depth": 2})
        assert client.active_run == inner
    assert tracking.get_experiment(outer.experiment_id).name == f"{NAMESPACE}/training"
    child = tracking.get_run(inner.run_id)
    assert child.data.tags["mlflow.parentRunId"] == outer.run_id
    assert child.info.experiment_id == outer.experiment_id
    assert "depth" not in tracking.get_run(outer.run_id).data.metrics
    assert {tracking.get_run(r.run_id).info.status for r in (outer, inner)} == {"FINISHED"}


def test_a_metrics_batch_is_logged_with_each_rows_step(
    client: MLOpsClient, tracking: MlflowClient
) -> None:
    with client.start_run("batch") as run:
        client.log_metrics_batch([{"loss": 0.9, "step": 10}, {"loss": 0.8, "step": 20}])
        client.log_metrics_batch([{"acc": 0.1}, {"acc": 0.2}, {"acc": 0.3}])
    assert [(m.step, m.value) for m in tracking.get_metric_history(run.run_id, "loss")] == [
        (10, 0.9),
        (20, 0.8),
    ]
    assert [m.step for m in tracking.get_metric_history(run.run_id, "acc")] == [0, 1, 2]
    assert "step" not in tracking.get_run(run.run_id).data.metrics


# -- concurrency --------------------------------------------------------------------------------


def test_clients_in_threads_log_only_into_their_own_runs_and_end_only_them(
    client: MLOpsClient, tracking: MlflowClient, home_root: Path
) -> None:
    other = MLOpsClient(NAMESPACE, workspace_root=home_root)
    workers = [(client, 0), (client, 1), (other, 2), (other, 3)]
    barrier = threading.Barrier(len(workers) + 1)
    run_ids: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(owner: MLOpsClient, index: int) -> None:
        try:
            with owner.start_run(f"thread-{index}") as run:
                run_ids[index] = run.run_id
                barrier.wait(timeout=60)  # every run is open before anyone logs
                for step in range(10):
                    owner.log_metrics({"worker": index}, step=step)
                owner.log_metrics_batch([{"batch_worker": index}] * 3)
                barrier.wait(timeout=60)  # every thread has logged before any run ends
                if index == 3:
                    raise RuntimeError("worker 3 fails")
        except RuntimeError as error:
            if "worker 3" not in str(error):
                errors.append(error)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=pair) for pair in workers]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    # Runs are open in four other threads; this thread has none of its own.
    with pytest.raises(NoActiveRunError):
        client.log_metrics({"worker": -1.0})
    barrier.wait(timeout=60)
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors

    assert len(set(run_ids.values())) == len(workers)
    for index, run_id in run_ids.items():
        history = tracking.get_metric_history(run_id, "worker")
        assert [m.step for m in history] == list(range(10))
        assert {m.value for m in history} == {float(index)}
        assert {m.value for m in tracking.get_metric_history(run_id, "batch_worker")} == {
            float(index)
        }
        expected = "FAILED" if index == 3 else "FINISHED"
        assert tracking.get_run(run_id).info.status == expected


def test_async_metrics_are_written_from_a_worker_thread_into_the_run_open_at_the_call(
    client: MLOpsClient, tracking: MlflowClient
) -> None:
    writer_threads: list[int] = []

    class RecordingExecutor(ThreadPoolExecutor):
        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            def recorded() -> Any:
                writer_threads.append(threading.get_ident())
                return fn(*args, **kwargs)

            return super().submit(recorded)

    async def scenario() -> tuple[str, int]:
        asyncio.get_running_loop().set_default_executor(RecordingExecutor(max_workers=2))
        with client.start_run("async") as run:
            await asyncio.gather(
                *(client.log_metrics_async({"latency": float(i)}, step=i) for i in range(5))
            )
            pending = client.log_metrics_async({"late": 1.0}, step=0)
        await pending  # created inside the run, awaited after it ended: still that run's
        return run.run_id, threading.get_ident()

    run_id, loop_thread = asyncio.run(scenario())
    assert len(writer_threads) == 6 and loop_thread not in writer_threads
    history = tracking.get_metric_history(run_id, "latency")
    assert sorted((m.step, m.value) for m in history) == [(i, float(i)) for i in range(5)]
    assert tracking.get_run(run_id).data.metrics["late"] == 1.0
    with pytest.raises(NoActiveRunError):
        _ = client.log_metrics_async({"outside": 1.0}, step=0)


# -- bad input ----------------------------------------------------------------------------------


def test_versioning_a_missing_file_names_it_and_leaves_the_registry_alone(
    client: MLOpsClient, tmp_path: Path
) -> None:
    client.dvc_client.ensure_repo()
    commits = _git(client.dvc_client.root(), "rev-list", "--count", "HEAD")
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.csv"):
        client.version_dataset(missing)
    assert _git(client.dvc_client.root(), "rev-list", "--count", "HEAD") == commits


def test_a_non_numeric_metric_is_refused_by_name_and_nothing_of_its_row_is_logged(
    client: MLOpsClient, tracking: MlflowClient
) -> None:
    with client.start_run("bad-metrics") as run:
        with pytest.raises(TypeError, match=r"'accuracy'.*not a number: 'high'"):
            client.log_metrics({"loss": 0.1, "accuracy": "high"}, step=1)
        with pytest.raises(TypeError, match="'flag'"):
            client.log_metrics({"flag": True})
        with pytest.raises(TypeError, match=r"'loss' \(row 1\)"):
            client.log_metrics_batch([{"loss": 0.5}, {"loss": None}])
        with pytest.raises(TypeError, match="step must be an integer"):
            client.log_metrics({"loss": 0.1}, step=1.5)  # type: ignore[arg-type]
    assert tracking.get_run(run.run_id).data.metrics == {}


def test_calls_that_need_a_run_refuse_outside_one_and_create_none(
    client: MLOpsClient, tracking: MlflowClient, small_model: Path
) -> None:
    experiment_id = client.create_experiment("no-runs-here")
    for call in (
        lambda: client.log_metrics({"loss": 0.1}),
        lambda: client.log_metrics_batch([{"loss": 0.1}]),
        lambda: client.log_params({"lr": 0.1}),
        lambda: client.log_artifact(small_model),
    ):
        with pytest.raises(NoActiveRunError, match="start_run"):
            call()
    assert tracking.search_runs([experiment_id]) == []


def test_bad_arguments_get_errors_naming_the_problem(
    client: MLOpsClient, home_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="project_namespace"):
        MLOpsClient("Not A Namespace", workspace_root=home_root)
    with (
        pytest.raises(MLOpsClientError, match="'987654' does not exist"),
        client.start_run("lost", experiment_id="987654"),
    ):
        pass
    with pytest.raises(ValueError, match="contains the data registry"):
        client.version_dataset(client.home.root)
    with client.start_run("artifacts"), pytest.raises(FileNotFoundError, match=r"ghost\.txt"):
        client.log_artifact(tmp_path / "ghost.txt")
    with pytest.raises(MLOpsClientError, match="no reference data"):
        MLOpsClient(NAMESPACE, workspace_root=home_root).evidently_monitor.generate_drift_report(
            _frame(100)
        )
    with pytest.raises(DriftInputError, match=r"missing column\(s\) \['c'\]"):
        client.evidently_monitor.generate_drift_report(
            _frame(100).drop(columns="c"), reference=_frame(100)
        )
    with pytest.raises(TypeError, match="DataFrame"):
        client.set_reference_data([[1.0, 2.0]])  # type: ignore[arg-type]


def test_deploying_an_incomplete_model_raises_and_a_failed_build_is_reported(
    client: MLOpsClient, small_model: Path, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        client.deploy_model(tmp_path / "absent", "tiny", "1")
    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    (weights_only / "weights.safetensors").write_bytes(
        (small_model / "weights.safetensors").read_bytes()
    )
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        client.deploy_model(weights_only, "tiny", "1")
    (weights_only / "config.json").write_text(json.dumps({"classes": [0, 1]}))
    failed = client.deploy_model(weights_only, "broken", "1")
    assert failed["status"] == "failed" and failed["bento_tag"] is None
    assert "feature_names" in failed["error"]


# -- hardware -----------------------------------------------------------------------------------


def test_silicon_metrics_map_the_hardware_snapshot_and_say_unknown_where_unknown(
    client: MLOpsClient, home_root: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "m2.json"
    trace.write_text(
        json.dumps(
            {
                "readings": [
                    {
                        "at": 0,
                        "chip": "Apple M2 Pro",
                        "memory_total_bytes": 16 * 2**30,
                        "unified_memory": True,
                        "metal_available": True,
                        "performance_cores": 8,
                        "efficiency_cores": 4,
                        "thermal_state": "fair",
                        "low_power_mode": False,
                        "memory_pressure": "normal",
                    }
                ]
            }
        )
    )
    replayed = MLOpsClient(NAMESPACE, workspace_root=home_root)
    replayed.silicon_monitor = HardwareResource(source="replay", replay_trace_path=str(trace))
    readings = replayed.collect_apple_silicon_metrics()
    assert {key: readings[key] for key in ("chip_type", "unified_memory_gb", "mps_available")} == {
        "chip_type": "Apple M2 Pro",
        "unified_memory_gb": 16.0,
        "mps_available": True,
    }
    assert (readings["performance_cores"], readings["efficiency_cores"]) == (8, 4)
    assert (readings["thermal_state"], readings["power_mode"]) == ("fair", "normal")
    assert readings["memory_pressure"] == "normal"
    assert readings["ane_available"] == "unknown"  # the trace does not know: never a guess

    real = client.collect_apple_silicon_metrics()
    required = {
        "chip_type", "unified_memory_gb", "mps_available", "ane_available", "performance_cores",
        "efficiency_cores", "thermal_state", "power_mode", "memory_pressure",
    }  # fmt: skip
    assert required <= real.keys()
    assert None not in real.values()
    json.dumps(real)  # JSON-safe as returned


# -- the examples -------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("training_workflow.py", "finished: val_accuracy="),
        ("data_versioning.py", "dvc status against the remote: in sync"),
        ("deployment.py", "bento efficientai-digits-script:v1-"),
        ("monitoring.py", "brighter pixels:   drift_detected=True"),
    ],
)
def test_the_examples_run_as_written_against_the_embedded_defaults(
    script: str, expected: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=tmp_path,
        env={**_clean_env(), "EFFICIENTAI_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert expected in completed.stdout
    assert "Traceback" not in completed.stderr
    # Everything went under the given home, through the stores the assets use.
    if script != "data_versioning.py":
        runs = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}")
        statuses = [
            run.info.status
            for experiment in runs.search_experiments()
            for run in runs.search_runs([experiment.experiment_id])
        ]
        assert statuses and set(statuses) == {"FINISHED"}
    else:
        assert dvc_cloud_status(home / "data") == {}


# -- the package ---------------------------------------------------------------------------------


def test_the_package_exports_the_names_users_import() -> None:
    """``from efficientai_assets.client import ...`` is the documented import; the module path
    of before keeps giving the same class."""
    import efficientai_assets.client as package
    from efficientai_assets.client.client import MLOpsClient as by_module

    assert package.MLOpsClient is by_module is MLOpsClient
    assert set(package.__all__) == {
        "BATCH_STEP_KEY",
        "DriftMonitor",
        "MLOpsClient",
        "MLOpsClientError",
        "NoActiveRunError",
        "RunHandle",
    }
    assert issubclass(package.NoActiveRunError, package.MLOpsClientError)
