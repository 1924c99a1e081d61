"""The model deployment of the project's Ray Serve application: one served version's replicas.

Each replica writes the model files it was deployed with (checked against their digests) to a
private folder and loads them with the project's loader (never pickle); weights that are missing
or corrupt leave the replica up and not ready, answering 503 with the reason rather than 500s.
Concurrent calls on a replica are merged into one forward pass (``serve.batch``). Runs inside
Ray worker processes; ``app`` pins one deployment of it per node.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve

from efficientai_assets.bento_service.answers import (
    load_checked,
    non_finite_message,
    not_loaded_reason,
    predictions,
)
from efficientai_assets.bento_service.settings import ServingSettings

logger = logging.getLogger("efficientai.serving.ray")


@serve.deployment(max_ongoing_requests=64)
class ModelServer:
    """One served version's replicas: its weights, loaded once per replica."""

    def __init__(
        self, settings_json: str, files: dict[str, bytes], digests: dict[str, str]
    ) -> None:
        import hashlib

        self.settings = ServingSettings.from_mapping(json.loads(settings_json)).with_env(os.environ)
        self.classifier: Any = None
        self.device = "unknown"
        self.error: str | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="efficientai-ray-model-")
        try:
            for name, data in files.items():
                if hashlib.sha256(data).hexdigest() != digests.get(name):
                    raise ValueError(f"{name} does not match the digest it was deployed with")
                (Path(self._folder.name) / name).write_bytes(data)
            self.classifier, self.device = load_checked(self._folder.name, self.settings)
        except Exception as error:  # missing or corrupt weights: up, not ready, no 500s
            self.error = not_loaded_reason(self.settings, error)
            logger.error(self.error)

    def status(self) -> dict[str, Any]:
        import ray

        return {
            "ready": self.classifier is not None,
            "reason": self.error,
            "device": self.device,
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def _forward(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Concurrent calls on this replica as one forward pass, split back per call."""
        sizes = np.cumsum([len(rows) for rows in batches])[:-1]
        proba = self.classifier.predict_proba(np.concatenate(batches))
        return list(np.split(proba, sizes))

    async def predict(self, instances: list[list[float]]) -> dict[str, Any]:
        """``{"status": 200, "body": [...]}`` or a refusal with its status and message."""
        if self.classifier is None:
            return {"status": 503, "body": {"error": f"not ready: {self.error}"}}
        proba = await self._forward(np.asarray(instances, dtype=np.float32))
        refusal = non_finite_message(proba)
        if refusal is not None:
            return {"status": 400, "body": {"error": refusal}}
        return {"status": 200, "body": predictions(proba, self.settings.classes)}
