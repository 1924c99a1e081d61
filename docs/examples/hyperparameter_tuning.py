"""Tune the MLX classifier's learning rate and width with the project's sweep.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/hyperparameter_tuning.py

``client.run_sweep`` runs the ``training_sweep`` job — the same job as in the Dagster UI
(docs/guide.md, "Hyperparameter sweeps") — on the home's stores and Dagster instance: one step per
configuration of the grid, each a child run of one sweep run in ``<project>/training`` with its
parameters, per-epoch metrics and hardware context; the best (validation accuracy, ties by loss) is
registered as ``challenger``, checked, and promoted to ``champion`` when it is not worse. Run it
twice: the second sweep reuses every registered configuration and trains nothing. Compare the
configurations in the MLflow UI (``make mlflow-ui``) or in the run's metadata in Dagster.
"""

from __future__ import annotations

import math
import os
from typing import Any

from efficientai_assets.client import MLOpsClient

GRID: dict[str, list[Any]] = {"learning_rate": [0.003, 0.03], "hidden_units": [[16], [64]]}
BASE = {"epochs": 4, "batch_size": 64, "seed": 0}


def main() -> None:
    client = MLOpsClient(os.environ.get("EFFICIENTAI_PROJECT", "efficientai"))
    report = client.run_sweep(GRID, base=BASE)
    for outcome in report.outcomes:
        accuracy = "-" if math.isnan(outcome.val_accuracy) else f"{outcome.val_accuracy:.3f}"
        print(f"{outcome.key} {outcome.label}: {outcome.status}, val_accuracy={accuracy}")
    print(report.reason)
    print(
        f"sweep run {report.parent_run_id} (Dagster run {report.dagster_run_id}); "
        f"challenger v{report.challenger_version}, champion v{report.champion_version}"
    )


if __name__ == "__main__":
    main()
