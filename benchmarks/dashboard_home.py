"""A home with hundreds of runs, written through the stores' own clients, for measuring the
dashboard: MLflow runs with per-epoch curves and the pipeline's tags, registered versions with
aliases, and Dagster runs (some failed) whose materializations, gate holds and check results
carry the metadata the pipeline writes.

Training hundreds of real models would take hours on this machine; what the dashboard reads is
the stores, so the stores are filled as the pipeline fills them, only faster.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from efficientai_assets.names import (
    CANDIDATE_ASSET,
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DRIFT_ASSET,
    DRIFT_CHECK,
    MODEL_NAME,
    QUALITY_CHECK,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_GIT_SHA,
    TAG_QUALITY,
    TAG_VAL_ACCURACY,
)
from resources.home import EfficientAIHome

CURVES = ("val_accuracy", "train_loss", "val_loss", "samples_per_second")


@dataclass(frozen=True)
class HomeSize:
    """How much a generated home holds, per namespace."""

    namespaces: tuple[str, ...] = ("alpha", "beta")
    runs: int = 150
    epochs: int = 12
    versions: int = 30
    days: int = 45
    dagster_runs: int = 30
    failed_runs: int = 8


def _model(namespace: str) -> str:
    return f"{namespace}-{MODEL_NAME}"


def fill_mlflow(home: EfficientAIHome, size: HomeSize, seed: int = 0) -> dict[str, list[str]]:
    """Runs with curves and tags, and the newest ``versions`` of them registered, per namespace;
    ``namespace → registered run ids`` (oldest first)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    uri = home.mlflow_tracking_uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    rng = random.Random(seed)
    registered: dict[str, list[str]] = {}
    now_ms = int(time.time() * 1000)
    for namespace in size.namespaces:
        experiment = client.create_experiment(
            f"{namespace}/training", artifact_location=str(home.mlflow_artifacts / namespace)
        )
        run_ids = []
        for index in range(size.runs):
            start = now_ms - (size.runs - index) * 60_000
            run = client.create_run(
                experiment,
                start_time=start,
                run_name=f"candidate-{index}",
                tags={
                    "training.device": "cpu",
                    "blas.source": "openblas",
                    "gate.decision": "go",
                    "training.batch_size": "64",
                    "hardware.start.platform": "linux",
                    "hardware.start.logical_cpus": "2",
                },
            )
            run_id = run.info.run_id
            metrics = []
            for step in range(size.epochs):
                ts = start + step * 1000
                metrics += [
                    Metric("val_accuracy", 0.5 + 0.04 * step + rng.random() * 0.01, ts, step),
                    Metric("train_loss", 2.0 / (step + 1), ts, step),
                    Metric("val_loss", 2.2 / (step + 1), ts, step),
                    Metric("samples_per_second", 9000 + rng.random() * 500, ts, step),
                ]
            client.log_batch(
                run_id,
                metrics=metrics,
                params=[Param("epochs", str(size.epochs)), Param("seed", str(index))],
                tags=[RunTag("efficientai.project", namespace)],
            )
            client.set_terminated(run_id, "FINISHED", end_time=start + 30_000)
            run_ids.append(run_id)
        name = _model(namespace)
        client.create_registered_model(name)
        chosen = run_ids[-size.versions :]
        for number, run_id in enumerate(chosen, start=1):
            accuracy = 0.9 + rng.random() * 0.05
            client.create_model_version(
                name,
                source=f"runs:/{run_id}/model",
                run_id=run_id,
                tags={
                    TAG_VAL_ACCURACY: f"{accuracy:.4f}",
                    TAG_QUALITY: "passed" if number % 7 else "failed",
                    TAG_DATA_MD5: f"{namespace}-md5-{number // 10}",
                    TAG_GIT_SHA: "0" * 40,
                    TAG_DAGSTER_RUN_ID: uuid.uuid4().hex,
                },
            )
        client.set_registered_model_alias(name, CHAMPION_ALIAS, str(len(chosen) - 1))
        client.set_registered_model_alias(name, CHALLENGER_ALIAS, str(len(chosen)))
        registered[namespace] = chosen
    return registered


def fill_dagster(home: EfficientAIHome, size: HomeSize) -> None:
    """Real Dagster runs of stand-in assets keyed as the pipeline's: candidates with the gate's
    metadata, drift reports by day with their check, holds as observations, and failed runs."""
    first = date(2026, 1, 1)

    def build(namespace: str, day: str | None, fail: bool) -> list[Any]:
        model = _model(namespace)

        @dg.asset(name=CANDIDATE_ASSET, check_specs=[dg.AssetCheckSpec(QUALITY_CHECK,
                  asset=CANDIDATE_ASSET)])  # fmt: skip
        def candidate() -> dg.MaterializeResult:
            context = dg.AssetExecutionContext.get()
            if fail:
                raise RuntimeError("candidate failed: stand-in failure")
            context.log_event(
                dg.AssetObservation(
                    CANDIDATE_ASSET,
                    metadata={"gate.decision": "hold", "gate.held_seconds": 30.0,
                              "gate.reason": "thermal serious", "model_name": model},
                )
            )  # fmt: skip
            return dg.MaterializeResult(
                metadata={"model_name": model, "gate.decision": "go", "gate.held_seconds": 30.0},
                check_results=[dg.AssetCheckResult(passed=True)],
            )

        partitions = dg.DailyPartitionsDefinition(start_date="2026-01-01")

        @dg.asset(name=DRIFT_ASSET, partitions_def=partitions,
                  check_specs=[dg.AssetCheckSpec(DRIFT_CHECK, asset=DRIFT_ASSET)])  # fmt: skip
        def drift() -> dg.MaterializeResult:
            share = 0.6 if day and day.endswith("5") else 0.1
            return dg.MaterializeResult(
                metadata={
                    "drift_share": share,
                    "drift_share_threshold": 0.5,
                    "dataset_drift": share >= 0.5,
                    "drifted_column_names": dg.MetadataValue.json(["pixel_3"]),
                    "champion_version": dg.MetadataValue.text(str(size.versions - 1)),
                    "reference_data_md5": dg.MetadataValue.text(
                        f"{namespace}-md5-{(size.versions - 1) // 10}"
                    ),
                },
                check_results=[dg.AssetCheckResult(passed=share < 0.5)],
            )

        return [drift] if day else [candidate]

    with dg.DagsterInstance.from_config(str(home.dagster_home)) as instance:
        for namespace in size.namespaces:
            for index in range(size.dagster_runs):
                fail = index < size.failed_runs
                dg.materialize(build(namespace, None, fail), instance=instance,
                               raise_on_error=False)  # fmt: skip
            for offset in range(size.days):
                day = (first + timedelta(days=offset)).isoformat()
                dg.materialize(build(namespace, day, False), instance=instance,
                               partition_key=day)  # fmt: skip


def build_home(root: Path, size: HomeSize | None = None) -> EfficientAIHome:
    """A fresh home under ``root`` filled to ``size``."""
    size = size or HomeSize()
    home = EfficientAIHome(root.resolve())
    home.ensure_layout()
    fill_mlflow(home, size)
    fill_dagster(home, size)
    return home
