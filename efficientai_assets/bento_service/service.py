"""The BentoML service: one MLX model version, loaded from safetensors, behind a strict API.

Served with ``bentoml serve <bento tag>``. The model comes from the bento's own model store
(``bentoml.models.BentoModel``); weights are read with ``MLXClassifier.load_dir`` (safetensors +
JSON config, never pickle) on the device MLX offers. A model that is missing or corrupt leaves the
server up but not ready: ``/readyz`` answers 503 and ``predict`` answers 503 with the reason.
"""

# No ``from __future__ import annotations``: BentoML derives the API schemas from the annotations.

import logging
import os
from typing import Any, cast

import bentoml
import numpy as np
from bentoml.exceptions import ServiceUnavailable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from efficientai_assets.bento_service.middleware import EdgeGuardMiddleware
from efficientai_assets.bento_service.schemas import Prediction, make_request_model
from efficientai_assets.bento_service.settings import ServingSettings, load_settings

logger = logging.getLogger("efficientai.serving")

SETTINGS: ServingSettings = load_settings()
PredictRequest = make_request_model(SETTINGS.n_features, SETTINGS.max_rows)
SERVICE_NAME = "efficientai_classifier"
PREDICT_ROUTE = "/predict"


class ModelState:
    """What this worker process has loaded; shared by the API, the probes and the edge guard."""

    def __init__(self) -> None:
        self.classifier: Any = None
        self.device = "unknown"
        self.error: str | None = "model not loaded yet"

    def not_ready_reason(self) -> str | None:
        return None if self.classifier is not None else self.error


STATE = ModelState()


def _metadata(_: Request) -> JSONResponse:
    return JSONResponse(
        {
            **SETTINGS.labels(),
            "bento_model_tag": SETTINGS.bento_model_tag,
            "classes": list(SETTINGS.classes),
            "n_features": SETTINGS.n_features,
            "max_rows": SETTINGS.max_rows,
            "max_body_bytes": SETTINGS.max_body_bytes,
            "device": STATE.device,
            "ready": STATE.classifier is not None,
            "not_ready_reason": STATE.not_ready_reason(),
            "auth_required": bool(os.environ.get(SETTINGS.token_env)),
        }
    )


metadata_app = Starlette(routes=[Route("/metadata", _metadata, methods=["GET"])])


@bentoml.asgi_app(metadata_app, path="/")
@bentoml.service(
    name=SERVICE_NAME,
    labels=SETTINGS.labels(),
    workers=1,
    http={"host": "127.0.0.1"},
    traffic={"timeout": 30},
    logging={"access": {"enabled": False}},
    # BentoML opens an OpenTelemetry span for every request even with no exporter configured;
    # on the predict route that was a third of the request's CPU time (measured with py-spy).
    # EFFICIENTAI_SERVE_TRACE_PREDICT=true traces it again (set an exporter in BENTOML_CONFIG).
    tracing={} if SETTINGS.trace_predict else {"excluded_urls": [PREDICT_ROUTE]},
)
class MLXClassifierService:
    """Predicts the class (and every class probability) of rows of features."""

    stored_model = bentoml.models.BentoModel(SETTINGS.bento_model_tag)

    def __init__(self) -> None:
        # ``predict`` is a BentoML descriptor that rebuilds the bound API (``inspect.signature``
        # and a fresh wrapper) on every attribute access, which BentoML makes twice per request
        # (~9% of the request's CPU time). The instance keeps the one it built.
        self.predict = self.predict

    @bentoml.on_startup
    def load_model(self) -> None:
        """Load the weights once per worker; any failure is kept as the not-ready reason."""
        try:
            import mlx.core as mx

            from efficientai_assets.models.mlp import MLXClassifier, best_device_name

            device = best_device_name()
            mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
            classifier = MLXClassifier.load_dir(self.stored_model.path)
            if classifier.config.n_features != SETTINGS.n_features:
                raise ValueError(
                    f"model expects {classifier.config.n_features} features, "
                    f"the bento was built for {SETTINGS.n_features}"
                )
            probe = classifier.predict_proba(np.zeros((1, SETTINGS.n_features), dtype=np.float32))
            if not np.all(np.isfinite(probe)):
                raise ValueError("the weights produce non-finite probabilities")
        except Exception as error:  # corrupt or missing files: stay up, report not ready
            STATE.error = f"model {SETTINGS.bento_model_tag} failed to load: {error}"
            logger.error(STATE.error)
            return
        STATE.classifier, STATE.device, STATE.error = classifier, device, None
        logger.info(
            "serving %s version %s on %s", SETTINGS.model_name, SETTINGS.model_version, device
        )

    def __is_ready__(self) -> bool:
        return STATE.classifier is not None

    @bentoml.api(
        input_spec=PredictRequest,
        batchable=SETTINGS.adaptive_batching,
        max_batch_size=SETTINGS.max_batch_size,
        max_latency_ms=SETTINGS.max_latency_ms,
    )
    async def predict(self, instances: list[list[float]]) -> list[Prediction]:
        """Labels and class probabilities for each row (adaptive batching merges requests;
        ``EFFICIENTAI_SERVE_ADAPTIVE_BATCHING=false`` turns it off)."""
        classifier = STATE.classifier
        if classifier is None:
            raise ServiceUnavailable(STATE.not_ready_reason() or "model not loaded")
        proba = classifier.predict_proba(np.asarray(instances, dtype=np.float32))
        classes = [str(c) for c in classifier.config.classes]
        labels = np.asarray(classifier.config.classes)[proba.argmax(axis=1)]
        return [
            Prediction(
                label=int(label), probabilities=dict(zip(classes, row.tolist(), strict=True))
            )
            for label, row in zip(labels, proba, strict=True)
        ]


# The decorators' stubs hide that the class is now a ``bentoml.Service``.
SERVICE = cast("bentoml.Service[Any]", MLXClassifierService)
# Without a declared media type BentoML regenerates the output's JSON schema on every response
# to choose one (measured: ~15% of a request's CPU time).
SERVICE.apis["predict"].output_spec.media_type = "application/json"
SERVICE.add_asgi_middleware(
    EdgeGuardMiddleware,
    max_body_bytes=SETTINGS.max_body_bytes,
    token=os.environ.get(SETTINGS.token_env) or None,
    labels=SETTINGS.labels(),
    not_ready=STATE.not_ready_reason,
)
