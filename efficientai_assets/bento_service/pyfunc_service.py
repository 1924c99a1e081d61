"""The BentoML service for any MLflow model: its pyfunc, behind a strict schema from its signature.

Served with ``bentoml serve <bento tag>`` for bentos built from an MLflow model directory or a
``models:/`` URI (``efficientai_assets.client.packager``). The model directory comes from the
bento's own model store and is loaded with ``mlflow.pyfunc.load_model``. Loading never unpickles
unless the user opted in through MLflow's own ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true``: a model
that needs pickle leaves the server up but not ready, and ``/readyz``, ``/metadata`` and
``predict`` say why. The request model is built from ``pyfunc_serving.json`` (the signature); the
HTTP edge is the MLX service's (``middleware.EdgeGuardMiddleware``).
"""

# No ``from __future__ import annotations``: BentoML derives the API schemas from the annotations.

import logging
import math
import os
from typing import Any, cast

import bentoml
from bentoml.exceptions import InternalServerError, InvalidArgument, ServiceUnavailable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from efficientai_assets.bento_service.middleware import EdgeGuardMiddleware
from efficientai_assets.bento_service.pyfunc_settings import (
    COLUMN_TYPES,
    PICKLE_ENV,
    PyfuncSettings,
    load_pyfunc_settings,
    pickle_allowed,
)

logger = logging.getLogger("efficientai.serving")

SETTINGS: PyfuncSettings = load_pyfunc_settings()
PredictRequest = SETTINGS.input.request_model(SETTINGS.max_rows)
SERVICE_NAME = "efficientai_pyfunc"


class ModelState:
    """The loaded pyfunc of this worker, or why there is none."""

    def __init__(self) -> None:
        self.model: Any = None
        self.error: str | None = "model not loaded yet"

    def not_ready_reason(self) -> str | None:
        return None if self.model is not None else self.error


STATE = ModelState()


def _metadata(_: Request) -> JSONResponse:
    return JSONResponse(
        {
            **SETTINGS.labels(),
            "bento_model_tag": SETTINGS.bento_model_tag,
            "model_framework": SETTINGS.model_framework,
            "input": SETTINGS.input.to_json(),
            "max_rows": SETTINGS.max_rows,
            "max_body_bytes": SETTINGS.max_body_bytes,
            "pickle": SETTINGS.pickle_reason,
            "ready": STATE.model is not None,
            "not_ready_reason": STATE.not_ready_reason(),
            "auth_required": bool(os.environ.get(SETTINGS.token_env)),
        }
    )


def model_input(instances: list[Any]) -> Any:
    """The validated instances as the model's signature declares them: a typed DataFrame, or an
    array of the tensor's dtype."""
    import numpy as np
    import pandas as pd

    spec = SETTINGS.input
    if spec.kind == "tensor":
        return np.asarray(instances, dtype=spec.dtype)
    rows = [i.model_dump(by_alias=True) if hasattr(i, "model_dump") else dict(i) for i in instances]
    frame = pd.DataFrame.from_records(rows, columns=[c.name for c in spec.columns])
    for column in spec.columns:
        dtype = COLUMN_TYPES[column.type][1]
        if dtype != "object" and bool(frame[column.name].notna().all()):
            frame[column.name] = frame[column.name].astype(np.dtype(dtype))
    return frame


def plain(value: Any) -> Any:
    """A JSON value for whatever a pyfunc returns (numpy scalars, NaN as null, nested)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def predictions(output: Any) -> list[Any]:
    """One JSON value per instance: a DataFrame's rows as objects, a Series' or array's items."""
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        return cast("list[Any]", plain(output.to_dict(orient="records")))
    if isinstance(output, pd.Series):
        return cast("list[Any]", plain(output.tolist()))
    converted = plain(output)
    return converted if isinstance(converted, list) else [converted]


metadata_app = Starlette(routes=[Route("/metadata", _metadata, methods=["GET"])])


@bentoml.asgi_app(metadata_app, path="/")
@bentoml.service(
    name=SERVICE_NAME,
    labels=SETTINGS.labels(),
    workers=1,
    http={"host": "127.0.0.1"},
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
)
class PyfuncModelService:
    """Predictions of one MLflow model for instances of its signature's inputs."""

    stored_model = bentoml.models.BentoModel(SETTINGS.bento_model_tag)

    @bentoml.on_startup
    def load_model(self) -> None:
        """Load the pyfunc once per worker; any failure is kept as the not-ready reason."""
        try:
            if SETTINGS.pickle_reason and not pickle_allowed():
                raise PermissionError(
                    f"{SETTINGS.pickle_reason}; loading it would run code from a pickle. "
                    f"Set {PICKLE_ENV}=true for this server to allow it"
                )
            # Whatever the model's code does, MLflow's own pickle gates stay closed unless opened.
            os.environ.setdefault(PICKLE_ENV, "false")
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(self.stored_model.path)
        except Exception as error:  # missing files, refused pickle, a model that fails to load
            STATE.error = f"model {SETTINGS.bento_model_tag} failed to load: {error}"
            logger.error(STATE.error)
            return
        STATE.model, STATE.error = model, None
        logger.info("serving %s version %s", SETTINGS.model_name, SETTINGS.model_version)

    def __is_ready__(self) -> bool:
        return STATE.model is not None

    @bentoml.api(input_spec=PredictRequest)
    def predict(self, instances: list[Any]) -> list[Any]:
        """The model's output for each instance (an object per row for a DataFrame output)."""
        model = STATE.model
        if model is None:
            raise ServiceUnavailable(STATE.not_ready_reason() or "model not loaded")
        try:
            from mlflow.exceptions import MlflowException

            output = model.predict(model_input(instances))
        except MlflowException as error:  # the model's own schema enforcement refused the input
            raise InvalidArgument(f"the model refused the input: {error.message}") from error
        except Exception as error:
            logger.exception("predict failed")
            raise InternalServerError(f"the model failed: {type(error).__name__}") from error
        return predictions(output)


SERVICE = cast("bentoml.Service[Any]", PyfuncModelService)
SERVICE.apis["predict"].output_spec.media_type = "application/json"
SERVICE.add_asgi_middleware(
    EdgeGuardMiddleware,
    max_body_bytes=SETTINGS.max_body_bytes,
    token=os.environ.get(SETTINGS.token_env) or None,
    labels=SETTINGS.labels(),
    not_ready=STATE.not_ready_reason,
)
