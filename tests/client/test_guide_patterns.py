"""The seed guide's three Integration Patterns, each as the guide writes it (import path aside),
then the project's ready-made versions of them (``efficientai_assets.client.patterns``); every
test reads the runs back from MLflow's own client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_guide_support import enter_guide_folder, tracking

from efficientai_assets.client import MLOpsClient, MLOpsClientError


def _runs(home: Path, experiment: str) -> list[Any]:
    store = tracking(home)
    found = store.get_experiment_by_name(experiment)
    assert found is not None, f"experiment {experiment} was not created"
    return list(store.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"]))


def test_pattern_1_project_tracker_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "p1", monkeypatch)

    # -- the guide, Pattern 1: Project-Specific Tracker -----------------------------------------
    class MyProjectTracker:
        """Custom tracker for my project."""

        def __init__(self):
            self.client = MLOpsClient(project_namespace="my-project")

        def start_training(self, config):
            """Start training with tracking."""
            experiment_id = self.client.create_experiment("training")
            return self.client.start_run(
                run_name=f"train_{config['model']}", experiment_id=experiment_id
            )

        def log_training_metrics(self, metrics, epoch):
            """Log training metrics."""
            self.client.log_metrics(metrics, step=epoch)

    # -----------------------------------------------------------------------------------------
    tracker = MyProjectTracker()
    with tracker.start_training({"model": "llama"}):
        for epoch in range(3):
            tracker.log_training_metrics({"loss": 1.0 / (epoch + 1)}, epoch)

    (run,) = _runs(home, "my-project/training")
    assert (run.info.run_name, run.info.status) == ("train_llama", "FINISHED")
    history = tracking(home).get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2]


def test_pattern_2_decorator_as_written_ends_runs_finished_or_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "p2", monkeypatch)

    # -- the guide, Pattern 2: Decorator-Based Tracking -----------------------------------------
    from functools import wraps

    def track_experiment(project_namespace, run_name):
        """Decorator for automatic experiment tracking."""

        def decorator(func):
            @wraps(func)
            def wrapper(*args, **kwargs):
                client = MLOpsClient(project_namespace=project_namespace)
                experiment_id = client.create_experiment(func.__name__)

                with client.start_run(run_name=run_name, experiment_id=experiment_id):
                    result = func(*args, **kwargs)
                    return result

            return wrapper

        return decorator

    @track_experiment(project_namespace="my-project", run_name="training")
    def train_model(config):
        # Training code here
        pass

    # -----------------------------------------------------------------------------------------
    assert train_model({"lr": 0.1}) is None

    @track_experiment(project_namespace="my-project", run_name="training")
    def broken_training(config):
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError, match="diverged"):  # the user's error, unchanged
        broken_training({})
    assert [r.info.status for r in _runs(home, "my-project/train_model")] == ["FINISHED"]
    assert [r.info.status for r in _runs(home, "my-project/broken_training")] == ["FAILED"]


def test_pattern_3_context_manager_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "p3", monkeypatch)

    # -- the guide, Pattern 3: Context Manager ----------------------------------------------------
    class MLOpsContext:
        """Context manager for MLOps operations."""

        def __init__(self, project_namespace, run_name):
            self.client = MLOpsClient(project_namespace=project_namespace)
            self.run_name = run_name
            self.experiment_id = None

        def __enter__(self):
            self.experiment_id = self.client.create_experiment("training")
            self.run = self.client.start_run(
                run_name=self.run_name, experiment_id=self.experiment_id
            )
            self.run.__enter__()
            return self.client

        def __exit__(self, *args):
            self.run.__exit__(*args)

    # Usage
    with MLOpsContext("my-project", "run-001") as client:
        client.log_params({"lr": 0.001})
        # Training code
    # -----------------------------------------------------------------------------------------

    (run,) = _runs(home, "my-project/training")
    assert (run.info.run_name, run.info.status) == ("run-001", "FINISHED")
    assert run.data.params == {"lr": "0.001"}
    assert client.active_run is None


def test_the_projects_ready_made_patterns_track_the_same_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from efficientai_assets.client.patterns import MLOpsContext, ProjectTracker, track_experiment

    home = enter_guide_folder(tmp_path / "ready", monkeypatch)
    tracker = ProjectTracker("my-project")
    with tracker.start_training({"model": "mlp", "lr": 0.01}):
        tracker.log_training_metrics({"loss": 0.4}, epoch=1)

    @track_experiment("my-project", run_name="decorated")
    def fit(scale: float) -> float:
        return scale * 2

    assert fit(2.0) == 4.0
    with pytest.raises(ZeroDivisionError), MLOpsContext("my-project", "ctx") as client:
        client.log_metrics({"loss": 0.3})
        _ = 1 / 0
    with pytest.raises(MLOpsClientError, match="'model' entry"):
        tracker.start_training({"lr": 0.1})

    by_name = {r.info.run_name: r for r in _runs(home, "my-project/training")}
    assert by_name["train_mlp"].data.params == {"model": "mlp", "lr": "0.01"}
    assert by_name["train_mlp"].data.metrics == {"loss": 0.4}
    assert (by_name["ctx"].info.status, by_name["ctx"].data.metrics) == ("FAILED", {"loss": 0.3})
    (decorated,) = _runs(home, "my-project/fit")
    assert (decorated.info.run_name, decorated.info.status) == ("decorated", "FINISHED")
