"""Train a small MLX classifier from a script and track it in the project's MLflow store.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/training_workflow.py

The run lands in ``<project>/script-training`` next to the experiments the assets write, with its
parameters, one metric point per epoch, the hardware it ran on, and the saved model as an artifact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from efficientai_assets.client import MLOpsClient
from efficientai_assets.defs.data.datasets import sample_digits
from efficientai_assets.models import mlp


def main() -> None:
    client = MLOpsClient(os.environ.get("EFFICIENTAI_PROJECT", "efficientai"))
    experiment_id = client.create_experiment("script-training", tags={"origin": "example"})

    frame = sample_digits()
    features = frame.drop(columns="label").to_numpy(np.float32)
    labels = frame["label"].to_numpy()
    order = np.random.default_rng(0).permutation(len(frame))
    train, validation = order[: int(0.8 * len(order))], order[int(0.8 * len(order)) :]
    params = mlp.TrainingParams(
        epochs=5, batch_size=64, learning_rate=0.01, hidden_units=(32,), seed=0
    )

    with client.start_run("digits-mlp", experiment_id=experiment_id) as run:
        client.log_params(
            {
                "epochs": params.epochs,
                "batch_size": params.batch_size,
                "learning_rate": params.learning_rate,
                "hidden_units": ",".join(map(str, params.hidden_units)),
                "thermal_state_at_start": client.collect_apple_silicon_metrics()["thermal_state"],
            }
        )

        def on_epoch(record: mlp.EpochRecord) -> None:
            client.log_metrics(
                {
                    "train_loss": record.train_loss,
                    "val_loss": record.val_loss,
                    "val_accuracy": record.val_accuracy,
                    "samples_per_second": record.samples_per_second,
                },
                step=record.epoch,
            )

        outcome, model = mlp.train(
            features[train],
            labels[train],
            features[validation],
            labels[validation],
            list(frame.columns.drop("label")),
            params,
            on_epoch=on_epoch,
        )
        with tempfile.TemporaryDirectory() as scratch:
            model_dir = Path(scratch) / "model"
            mlp.save(model, outcome.config, model_dir)
            client.log_artifact(model_dir)  # weights.safetensors + config.json under "model/"

    print(f"run {run.run_id} finished: val_accuracy={outcome.final.val_accuracy:.3f}")
    print(f"open it with `make mlflow-ui`: {run.url}")


if __name__ == "__main__":
    main()
