"""Tune an MLX classifier's learning rate and width: one child run per trial under a sweep run.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/hyperparameter_tuning.py

A small grid on the digits sample (fixed seed and split). Each trial is a child run of the sweep
run in ``<project>/hyperparameter-tuning`` with its parameters and its per-epoch curve, logged in
one ``log_metrics_batch`` round-trip; the sweep run records the best trial's parameters and score.
Compare the trials in the MLflow UI (``make mlflow-ui``).
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from efficientai_assets.client import MLOpsClient
from efficientai_assets.defs.data.datasets import sample_digits
from efficientai_assets.models import mlp

LEARNING_RATES = (0.003, 0.03)
HIDDEN_UNITS = ((16,), (64,))
EPOCHS = 4


def main() -> None:
    client = MLOpsClient(os.environ.get("EFFICIENTAI_PROJECT", "efficientai"))
    experiment_id = client.create_experiment("hyperparameter-tuning")
    frame = sample_digits()
    features = frame.drop(columns="label").to_numpy(np.float32)
    labels = frame["label"].to_numpy()
    order = np.random.default_rng(0).permutation(len(frame))
    train, validation = order[: int(0.8 * len(order))], order[int(0.8 * len(order)) :]
    names = list(frame.columns.drop("label"))

    results: list[tuple[float, float, tuple[int, ...]]] = []
    with client.start_run("digits-sweep", experiment_id=experiment_id) as sweep:
        client.log_params({"grid.learning_rate": LEARNING_RATES, "grid.hidden_units": HIDDEN_UNITS})
        for learning_rate, hidden in itertools.product(LEARNING_RATES, HIDDEN_UNITS):
            params = mlp.TrainingParams(
                epochs=EPOCHS, batch_size=64, learning_rate=learning_rate,
                hidden_units=hidden, seed=0,
            )  # fmt: skip
            name = f"lr{learning_rate}-h{'x'.join(map(str, hidden))}"
            with client.start_run(name):  # a child of the sweep
                client.log_params({"learning_rate": learning_rate, "hidden_units": hidden})
                outcome, _ = mlp.train(
                    features[train], labels[train], features[validation], labels[validation],
                    names, params,
                )  # fmt: skip
                client.log_metrics_batch(
                    [
                        {
                            "step": r.epoch,
                            "train_loss": r.train_loss,
                            "val_accuracy": r.val_accuracy,
                        }
                        for r in outcome.history
                    ]
                )
            results.append((outcome.final.val_accuracy, learning_rate, hidden))
            print(f"trial {name}: val_accuracy={outcome.final.val_accuracy:.3f}")
        best_accuracy, best_rate, best_hidden = max(results)
        client.log_params({"best.learning_rate": best_rate, "best.hidden_units": best_hidden})
        client.log_metrics({"best_val_accuracy": best_accuracy})
    print(
        f"best: learning_rate={best_rate} hidden_units={best_hidden} "
        f"val_accuracy={best_accuracy:.3f} (sweep run {sweep.run_id})"
    )


if __name__ == "__main__":
    main()
