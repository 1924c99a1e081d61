"""Train a small MLX classifier and build a BentoML bento of it in the project's bento store.

Run from the repository root (``EFFICIENTAI_HOME`` picks the home; default ``.efficientai/``)::

    .venv/bin/python docs/examples/deployment.py

The bento is ``<project>-digits-script:v1-<digest>``: building again with the same weights reuses
it. Serve it on 127.0.0.1 with ``BENTOML_HOME=<home>/bentoml bentoml serve <tag>``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from efficientai_assets.client import MLOpsClient
from efficientai_assets.defs.data.datasets import sample_digits
from efficientai_assets.models import mlp


def main() -> int:
    client = MLOpsClient(os.environ.get("EFFICIENTAI_PROJECT", "efficientai"))
    frame = sample_digits()
    features = frame.drop(columns="label").to_numpy(np.float32)
    labels = frame["label"].to_numpy()
    params = mlp.TrainingParams(
        epochs=3, batch_size=64, learning_rate=0.01, hidden_units=(32,), seed=0
    )
    outcome, model = mlp.train(
        features, labels, features, labels, list(frame.columns.drop("label")), params
    )

    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(scratch) / "model"
        mlp.save(model, outcome.config, model_dir)
        with client.start_run("digits-script-deploy"):  # the run records the bento tag
            result = client.deploy_model(model_dir, model_name="digits-script", version="1")

    if result["status"] != "success":
        print(f"deployment failed: {result['error']}", file=sys.stderr)
        return 1
    print(
        f"bento {result['bento_tag']} ({'built' if result['built'] else 'reused'}, "
        f"{result['size_bytes'] / 1e6:.2f} MB)"
    )
    for bento in client.bentoml_store.list_bentos(labels={"model_name": result["model_name"]}):
        print(f"  in the store: {bento.tag} labels={bento.labels}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
