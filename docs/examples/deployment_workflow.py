"""Package a model with BentoML and roll it out as the guide does: a canary, checked, then v1.0.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/deployment_workflow.py

Trains a small MLX classifier on the digits sample and saves it as an MLX folder, packages it
(``package_model``, with BentoML's Dockerfile: no image is built where no Docker engine runs),
deploys it as ``canary``, serves the canary on 127.0.0.1 and checks its answers on held-out rows,
then deploys ``v1.0``. Every bento is in ``<home>/bentoml``; the rollout is a run of
``<project>/deployments`` holding the canary's accuracy and both bento tags.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from efficientai_assets.client import MLOpsClient
from efficientai_assets.client.packager import package_model
from efficientai_assets.defs.data.datasets import sample_digits
from efficientai_assets.models import mlp


def ask(url: str, rows: list[list[float]]) -> list[int]:
    """POST rows to a served bento's ``/predict``; the predicted labels."""
    request = urllib.request.Request(
        url + "/predict",
        data=json.dumps({"instances": rows}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return [int(row["label"]) for row in json.loads(answer.read())]


def main() -> int:
    project = os.environ.get("EFFICIENTAI_PROJECT", "efficientai")
    client = MLOpsClient(project)
    frame = sample_digits()
    features = frame.drop(columns="label").to_numpy(np.float32)
    labels = frame["label"].to_numpy()
    train, held_out = np.arange(0, 1500), np.arange(1500, len(frame))
    params = mlp.TrainingParams(
        epochs=5, batch_size=64, learning_rate=0.01, hidden_units=(32,), seed=0
    )
    outcome, model = mlp.train(
        features[train], labels[train], features[held_out], labels[held_out],
        list(frame.columns.drop("label")), params,
    )  # fmt: skip

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(scratch) / "model"
        mlp.save(model, outcome.config, model_dir)

        packaged = package_model(
            model_path=model_dir,
            model_name="digits-rollout",
            model_framework="mlx",
            build_docker=True,
            project_name=project,
        )
        print(f"Bento: {packaged['bento_name']} ({packaged['bento_tag']})")
        print(f"Docker: {packaged['docker']['message']}")

        experiment_id = client.create_experiment("deployments")
        with client.start_run("digits-rollout", experiment_id=experiment_id):
            canary = client.deploy_model(model_dir, model_name="digits-rollout", version="canary")
            if canary["status"] != "success":
                print(f"canary failed: {canary['error']}", file=sys.stderr)
                return 1
            store = client.bentoml_store.model_copy(update={"port": 0})
            with store.serve(canary["bento_tag"]) as server:
                server.wait_until_ready(timeout=180)
                predicted = ask(server.url, features[held_out][:100].tolist())
            accuracy = float(np.mean(np.asarray(predicted) == labels[held_out][:100]))
            client.log_metrics({"canary_accuracy": accuracy})
            print(f"canary {canary['bento_tag']}: accuracy {accuracy:.2f} on 100 held-out rows")
            if accuracy < 0.5:
                print("the canary is worse than a coin: no rollout", file=sys.stderr)
                return 1
            full = client.deploy_model(model_dir, model_name="digits-rollout", version="v1.0")
    print(f"rolled out: {full['bento_tag']} ({full['status']})")
    return 0 if full["status"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
