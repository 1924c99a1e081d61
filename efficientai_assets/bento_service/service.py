"""The BentoML service: one MLX model version, loaded from safetensors, behind a strict API.

Served with ``bentoml serve <bento tag>``. The model comes from the bento's own model store
(``bentoml.models.BentoModel``); weights are read with ``MLXClassifier.load_dir`` (safetensors +
JSON config, never pickle) on the device MLX offers. A model that is missing or corrupt leaves the
server up but not ready: ``/readyz`` answers 503 and ``predict`` answers 503 with the reason.

Concurrent requests are merged by the project's ``MicroBatcher`` (BentoML's own batching is off:
see ``batching`` for why), behind a queue bounded in rows and a cap on requests in flight; what
does not fit gets 503 with ``Retry-After``. A row whose probabilities are not finite (inputs
within float32 range can still overflow inside the model) gets 400 naming the row, so no
response ever carries a bare ``NaN``.
"""

# No ``from __future__ import annotations``: BentoML derives the API schemas from the annotations.

import gc
import logging
import os
from typing import Any, cast

import bentoml
import numpy as np
import pydantic_core
from bentoml.exceptions import ServiceUnavailable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from efficientai_assets.bento_service.answers import (
    load_checked,
    metadata_document,
    non_finite_message,
    not_loaded_reason,
    predictions,
)
from efficientai_assets.bento_service.batching import MicroBatcher, Overloaded
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


def _infer(rows: np.ndarray) -> np.ndarray:
    classifier = STATE.classifier
    if classifier is None:
        raise ServiceUnavailable(STATE.not_ready_reason() or "model not loaded")
    return cast("np.ndarray", classifier.predict_proba(rows))


BATCHER = MicroBatcher(
    _infer,
    max_batch_rows=SETTINGS.max_batch_size,
    max_queue_rows=SETTINGS.max_queue_rows,
    max_wait_ms=SETTINGS.max_latency_ms,
    merge=SETTINGS.adaptive_batching,
)


def _answer(proba: np.ndarray, classes: tuple[int, ...]) -> Any:
    """The ``list[Prediction]`` response, encoded once by pydantic-core.

    BentoML would validate the output into its IO model and encode it with the standard library:
    27 ms for 512 rows against 5 ms here, half of a large request's cost. The shape is the
    declared ``Prediction`` one (the schema BentoML publishes is unchanged).
    """
    return Response(
        pydantic_core.to_json(predictions(proba, classes)), media_type="application/json"
    )


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Any:
    """A JSON error BentoML sends as is (it passes a returned ``Response`` through untouched)."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _metadata(_: Request) -> JSONResponse:
    batching = {
        **BATCHER.describe(),
        "max_in_flight": SETTINGS.max_in_flight,
        "max_in_flight_bytes": SETTINGS.max_in_flight_bytes,
    }
    return JSONResponse(
        metadata_document(
            SETTINGS,
            device=STATE.device,
            not_ready_reason=STATE.not_ready_reason(),
            auth_required=bool(os.environ.get(SETTINGS.token_env)),
            extra={"batching": batching},
        )
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
            classifier, device = load_checked(self.stored_model.path, SETTINGS)
        except Exception as error:  # corrupt or missing files: stay up, report not ready
            STATE.error = not_loaded_reason(SETTINGS, error)
            logger.error(STATE.error)
            return
        STATE.classifier, STATE.device, STATE.error = classifier, device, None
        # Everything imported and loaded so far lives as long as the worker. Frozen, it is no
        # longer traversed by the cyclic collector, whose full collections otherwise stalled the
        # event loop 100-280 ms every few seconds under load (the bulk of the p99).
        gc.collect()
        gc.freeze()
        logger.info(
            "serving %s version %s on %s", SETTINGS.model_name, SETTINGS.model_version, device
        )

    def __is_ready__(self) -> bool:
        return STATE.classifier is not None

    # Not ``batchable``: the project's batcher merges requests (see ``batching``).
    @bentoml.api(input_spec=PredictRequest)
    async def predict(self, instances: list[list[float]]) -> list[Prediction]:
        """Labels and class probabilities for each row (concurrent requests are computed together;
        ``EFFICIENTAI_SERVE_ADAPTIVE_BATCHING=false`` computes each alone)."""
        classifier = STATE.classifier
        if classifier is None:
            raise ServiceUnavailable(STATE.not_ready_reason() or "model not loaded")
        try:
            proba = await BATCHER.predict(np.asarray(instances, dtype=np.float32))
        except Overloaded as error:
            return _refusal(503, str(error), {"Retry-After": str(error.retry_after_s)})
        message = non_finite_message(proba)
        if message is not None:
            return _refusal(400, message)
        return _answer(proba, classifier.config.classes)


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
    max_in_flight=SETTINGS.max_in_flight,
    max_in_flight_bytes=SETTINGS.max_in_flight_bytes,
    overloaded=BATCHER.full,
)
