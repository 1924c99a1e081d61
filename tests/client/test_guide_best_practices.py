"""The seed guide's Best Practices as written (import path aside): batch and async logging,
"Version Early, Version Often", and the incremental (canary, then full) rollout of a user's own
MLflow model, served by real ``bentoml serve`` processes; each test reads back what the stores
hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import bentoml_list, dvc_cloud_status
from test_guide_support import (
    enter_guide_folder,
    predict,
    save_user_model,
    served,
    tracking,
)

from efficientai_assets.client import MLOpsClient


def test_batch_logging_as_written_stores_every_flushed_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "batch", monkeypatch)
    client = MLOpsClient(project_namespace="my-project")
    with client.start_run(run_name="batched") as run:
        # -- the guide, Performance Optimization: Batch Logging -------------------------------
        # Good: Batch metrics
        metrics_batch = []
        for epoch in range(100):
            metrics_batch.append({"loss": 0.5, "accuracy": 0.85})
            if epoch % 10 == 0:
                client.log_metrics_batch(metrics_batch)
                metrics_batch = []

        # Bad: Log every iteration
        for epoch in range(100):
            client.log_metrics({"loss": 0.5}, step=epoch)  # 100 API calls
        # -------------------------------------------------------------------------------------

    store = tracking(home)
    accuracy = store.get_metric_history(run.run_id, "accuracy")
    # Flushed at epochs 0, 10, ..., 90: 1 + 9 * 10 rows; the last 9 were never flushed.
    assert len(accuracy) == 91 and {m.value for m in accuracy} == {0.85}
    assert sorted({m.step for m in accuracy}) == list(range(10))  # a row's index in its batch
    assert len(store.get_metric_history(run.run_id, "loss")) == 91 + 100
    assert store.get_run(run.run_id).info.status == "FINISHED"


def test_async_logging_as_written_lands_in_the_open_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "async", monkeypatch)
    client = MLOpsClient(project_namespace="my-project")
    metrics = {"latency_ms": 12.5, "throughput": 310.0}
    with client.start_run(run_name="async-run") as run:
        # -- the guide, Performance Optimization: Async Operations ----------------------------
        import asyncio

        async def log_metrics_async(client, metrics, step):
            await client.log_metrics_async(metrics, step)

        # Use async for long-running operations
        asyncio.run(log_metrics_async(client, metrics, 0))
        # -------------------------------------------------------------------------------------

    assert tracking(home).get_run(run.run_id).data.metrics == metrics


def test_version_early_version_often_pushes_data_and_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "often", monkeypatch)
    pd.DataFrame({"feature": [1, 2, 3, 4]}).to_csv("data/train.csv", index=False)
    pd.DataFrame({"feature": [5, 6]}).to_csv("data/val.csv", index=False)
    save_user_model(Path("outputs/model"))
    client = MLOpsClient(project_namespace="my-project")

    # -- the guide, Data Versioning: Version Early, Version Often ------------------------------
    # Before training
    client.version_dataset("data/train.csv", push_to_remote=True)
    client.version_dataset("data/val.csv", push_to_remote=True)

    # After training
    client.version_dataset("outputs/model", push_to_remote=True)
    # -----------------------------------------------------------------------------------------

    registry = home / "data"
    assert dvc_cloud_status(registry) == {}
    for name in ("train.csv", "val.csv", "model"):
        version = client.dvc_client.current_version(f"my-project/datasets/{name}")
        assert version is not None, name
    model_version = client.dvc_client.current_version("my-project/datasets/model")
    assert model_version is not None and model_version.md5.endswith(".dir")


def test_incremental_rollout_as_written_serves_the_canary_then_the_full_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = enter_guide_folder(tmp_path / "rollout", monkeypatch)
    save_user_model(Path("model"))  # the user's own model, saved with MLflow as code
    client = MLOpsClient(project_namespace="my-project")
    observed: dict[str, Any] = {}

    def monitor_metrics(duration_minutes: int) -> None:
        """Watch the canary: serve its bento and send it traffic (a few requests, not an hour)."""
        (canary,) = [
            tag
            for tag, labels in bentoml_list(home / "bentoml").items()
            if labels["model_name"] == "my-project-prod_model"
            and labels["model_version"] == "canary"
        ]
        with served(home, canary) as server:
            answers = [predict(server, {"instances": [{"feature": n}]}) for n in range(5)]
        observed["canary"] = [(a.status_code, a.json()) for a in answers]
        observed["minutes"] = duration_minutes

    # -- the guide, Model Deployment: Incremental Rollout ----------------------------------------
    # Deploy canary
    client.deploy_model(model_path="model", model_name="prod_model", version="canary")

    # Monitor performance
    monitor_metrics(duration_minutes=60)

    # Full rollout
    client.deploy_model(model_path="model", model_name="prod_model", version="v1.0")
    # -----------------------------------------------------------------------------------------

    assert observed["canary"] == [(200, [2 * n]) for n in range(5)]
    listed = {
        labels["model_version"]: tag
        for tag, labels in bentoml_list(home / "bentoml").items()
        if labels["model_name"] == "my-project-prod_model"
    }
    assert set(listed) == {"canary", "v1.0"}
    with served(home, listed["v1.0"]) as server:
        answer = predict(server, {"instances": [{"feature": 21}, {"feature": -4}]})
        assert (answer.status_code, answer.json()) == (200, [42, -8])
        assert answer.headers["x-efficientai-model-version"] == "v1.0"
        refused = predict(server, {"instances": [{"feature": "21"}]})
        assert refused.status_code == 400 and "feature" in refused.text
