"""The seed guide's Core Components, each usage block as written (import path aside): the unified
client's configuration against a real ``mlflow server``, the MLflow, DVC, BentoML and Evidently
entry points, and Best Practices' "Use Tags"; each test reads back what the stores hold."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import bentoml_list, dvc_cloud_status
from mlflow import MlflowClient
from test_guide_support import enter_guide_folder, tracking

from efficientai_assets.client import MLOpsClient
from efficientai_assets.client.dvc_client import DVCClient
from efficientai_assets.models import mlp
from resources.bentoml.servers import free_port


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a free loopback port (SQLite store, served artifacts)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("wb")
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(root / "artifacts"), "--serve-artifacts"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def test_the_configured_client_tracks_into_the_given_mlflow_server_and_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str
) -> None:
    enter_guide_folder(tmp_path / "configured", monkeypatch)
    Path("outputs/notes.txt").write_text("trained on the server")

    # -- the guide, Core Components: MLOps Client configuration (the server's real port) -----
    client = MLOpsClient(
        project_namespace="my-project",  # Project identifier
        mlflow_tracking_uri=mlflow_server,  # MLFlow server
        dvc_remote_name="storage",  # DVC remote
        workspace_root="mlops/workspace",  # Workspace directory
    )
    # -----------------------------------------------------------------------------------------
    experiment_id = client.create_experiment(experiment_name="served", tags={"env": "test"})
    with client.start_run(run_name="on-the-server", experiment_id=experiment_id) as run:
        client.log_metrics({"loss": 0.25}, step=3)
        client.log_artifact("outputs/notes.txt")

    assert client.home.root == (tmp_path / "configured" / "mlops" / "workspace").resolve()
    assert client.dvc_client.remote_name == "storage"
    server = MlflowClient(tracking_uri=mlflow_server)
    assert server.get_experiment(experiment_id).name == "my-project/served"
    finished = server.get_run(run.run_id)
    assert finished.info.status == "FINISHED"
    assert [(m.step, m.value) for m in server.get_metric_history(run.run_id, "loss")] == [(3, 0.25)]
    assert [a.path for a in server.list_artifacts(run.run_id)] == ["notes.txt"]
    embedded = tracking(client.home.root)  # the home's own store got none of it
    assert embedded.get_experiment_by_name("my-project/served") is None


def test_mlflow_component_client_tracks_as_the_guide_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "mlflow", monkeypatch)
    Path("model.bin").write_bytes(b"bin")

    # -- the guide, MLFlow Integration ----------------------------------------------------------
    from efficientai_assets.client.mlflow_client import create_client

    client = create_client(project_name="my-project")

    # Create experiment
    experiment_id = client.create_experiment("training", tags={"env": "production"})

    # Track run
    with client.start_run(run_name="run-001", experiment_id=experiment_id) as run:
        client.log_params({"lr": 0.001})
        client.log_metrics({"loss": 0.5}, step=0)
        client.log_artifact("model.bin")
    # -----------------------------------------------------------------------------------------

    store = tracking(home)
    experiment = store.get_experiment(experiment_id)
    assert (experiment.name, experiment.tags["env"]) == ("my-project/training", "production")
    finished = store.get_run(run.run_id)
    assert (finished.info.run_name, finished.info.status) == ("run-001", "FINISHED")
    assert finished.data.params == {"lr": "0.001"}
    assert finished.data.metrics == {"loss": 0.5}
    assert [a.path for a in store.list_artifacts(run.run_id)] == ["model.bin"]
    # The unified client sees the same experiment: one store, one namespace.
    assert MLOpsClient(project_namespace="my-project").create_experiment("training") == (
        experiment_id
    )


def test_dvc_component_client_versions_pushes_pulls_and_is_the_unified_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "dvc", monkeypatch)
    pd.DataFrame({"feature": [1, 2, 3], "label": [0, 1, 0]}).to_csv("data/train.csv", index=False)

    # -- the guide, DVC Integration --------------------------------------------------------------
    from efficientai_assets.client.dvc_client import create_client

    client = create_client(project_name="my-project")

    # Initialize DVC
    client.init()

    # Version data
    client.add("data/train.csv")
    client.push()

    # Pull data
    client.pull()

    # Check status
    status = client.status()
    # -----------------------------------------------------------------------------------------

    registry = home / "data"
    tracked = registry / "my-project" / "datasets" / "train.csv"
    assert status == {} and dvc_cloud_status(registry) == {}
    log = subprocess.run(
        ["git", "-C", str(registry), "log", "--format=%s", "--", "my-project/datasets/train.csv.dvc"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert "my-project/datasets/train.csv" in log

    # A lost copy (work tree and cache) comes back from the remote.
    original = tracked.read_bytes()
    tracked.unlink()
    import shutil

    shutil.rmtree(registry / ".dvc" / "cache")
    pulled = client.pull()
    assert tracked.read_bytes() == original
    assert pulled["stats"]["fetched"] >= 1

    unified = MLOpsClient(project_namespace="my-project")
    assert isinstance(unified.dvc_client, DVCClient)
    assert unified.dvc_client.root() == client.root()
    assert unified.dvc_client.status() == {}


def test_use_tags_adds_the_dataset_and_the_git_tag_lands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "tags", monkeypatch)
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "me@example.com"],
                 ["config", "user.name", "me"], ["commit", "-q", "--allow-empty", "-m", "start"]):  # fmt: skip
        subprocess.run(["git", *args], check=True, timeout=30, capture_output=True)
    pd.DataFrame({"feature": [4, 5, 6]}).to_csv("data/train.csv", index=False)
    client = MLOpsClient(project_namespace="my-project")

    # -- the guide, Best Practices: Use Tags ----------------------------------------------------
    client.dvc_client.add("data/train.csv")
    # Tag with git
    import subprocess as guide_subprocess

    guide_subprocess.run(["git", "tag", "-a", "data-v1.0", "-m", "Training data v1.0"])
    # -----------------------------------------------------------------------------------------

    tags = subprocess.run(["git", "tag"], capture_output=True, text=True, timeout=30).stdout
    assert tags.split() == ["data-v1.0"]
    version = client.dvc_client.current_version("my-project/datasets/train.csv")
    assert version is not None and version.md5
    assert dvc_cloud_status(home / "data")  # added, not pushed: the guide pushes separately


def test_bentoml_packager_builds_the_bento_and_writes_its_dockerfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = enter_guide_folder(tmp_path / "bento", monkeypatch)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 3)).astype(np.float32)
    labels = (features[:, 0] > 0).astype(np.int64)
    params = mlp.TrainingParams(
        epochs=1, batch_size=32, learning_rate=0.01, hidden_units=(4,), seed=0
    )
    outcome, model = mlp.train(features, labels, features, labels, ["a", "b", "c"], params)
    mlp.save(model, outcome.config, Path("outputs/model"))  # an MLX model, as the guide's

    # -- the guide, BentoML Integration ---------------------------------------------------------
    from efficientai_assets.client.packager import package_model

    result = package_model(
        model_path="outputs/model",
        model_name="my_model",
        model_framework="mlx",
        build_docker=True,
    )

    print(f"Bento: {result['bento_name']}")
    # -----------------------------------------------------------------------------------------

    assert capsys.readouterr().out.strip() == "Bento: efficientai-my_model"
    listed = bentoml_list(home / "bentoml")
    assert result["bento_tag"] in listed
    assert listed[result["bento_tag"]]["model_name"] == "efficientai-my_model"
    assert Path(result["path"], "bento.yaml").is_file()
    docker = result["docker"]
    dockerfile = Path(docker["dockerfile"]).read_text()
    assert "FROM " in dockerfile and "bentoml" in dockerfile.lower()
    if not docker["engine_available"]:  # no Docker engine on this machine: said so plainly
        assert docker["image_tag"] is None
        assert docker["message"].startswith("no image was built: no docker engine is reachable")
        assert f"bentoml containerize {result['bento_tag']}" in docker["message"]


def test_evidently_monitor_reports_drift_and_keeps_the_report_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = enter_guide_folder(tmp_path / "evidently", monkeypatch)
    rng = np.random.default_rng(7)
    reference_data = pd.DataFrame(rng.normal(size=(400, 2)), columns=["x", "y"])
    current_data = pd.DataFrame(rng.normal(loc=2.0, size=(400, 2)), columns=["x", "y"])

    # -- the guide, Evidently Integration -------------------------------------------------------
    from efficientai_assets.client.evidently_monitor import EvidentlyMonitor

    monitor = EvidentlyMonitor(project_name="my-project")

    # Generate drift report
    report = monitor.generate_drift_report(current_data, reference_data)

    if report["drift_detected"]:
        print(f"Drift score: {report['drift_score']}")
    # -----------------------------------------------------------------------------------------

    assert capsys.readouterr().out.strip() == "Drift score: 1.0"
    html, summary = Path(report["html_path"]), Path(report["json_path"])
    assert html.parent.parent == home / "reports" / "namespaces" / "my-project" / "my-project"
    assert html.stat().st_size > 10_000 and "<html" in html.read_text()[:2000].lower()
    written = json.loads(summary.read_text())["summary"]
    assert written["drift_detected"] is True and written["drifted_columns"] == ["x", "y"]
    assert written["warnings"] == []  # 400 rows per side: the default test, nothing to warn
