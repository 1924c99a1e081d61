"""What a served model answers, shared by every backend that serves it (the bento's BentoML
service and the Ray Serve application): loading the weights with their checks, the predictions
and their refusals, the ``/metadata`` document, and the body of a 400 for a request the strict
schema refuses (BentoML's own format, so both backends answer a bad request identically).

Pure Python with numpy and pydantic; mlx is imported only when weights are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efficientai_assets.bento_service.settings import ServingSettings

if TYPE_CHECKING:
    import numpy as np
    from pydantic import ValidationError

    from efficientai_assets.models.common import Classifier


def load_checked(model_dir: str | Path, settings: ServingSettings) -> tuple[Classifier, str]:
    """The classifier in ``model_dir`` (safetensors + JSON config, never pickle) on the best MLX
    device, and the device's name; raises when it does not fit the settings or does not compute
    finite probabilities."""
    import mlx.core as mx
    import numpy as np

    from efficientai_assets.models.families import load_classifier_dir
    from efficientai_assets.models.family import best_device_name

    device = best_device_name()
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    classifier = load_classifier_dir(model_dir)
    if classifier.config.n_features != settings.n_features:
        raise ValueError(
            f"model expects {classifier.config.n_features} features, "
            f"the bento was built for {settings.n_features}"
        )
    probe = classifier.predict_proba(np.zeros((1, settings.n_features), dtype=np.float32))
    if not np.all(np.isfinite(probe)):
        raise ValueError("the weights produce non-finite probabilities")
    return classifier, device


def not_loaded_reason(settings: ServingSettings, error: BaseException) -> str:
    """Why a model is not ready, as ``/metadata`` and a 503 say it."""
    return f"model {settings.bento_model_tag} failed to load: {error}"


def non_finite_message(proba: np.ndarray) -> str | None:
    """The 400 message for rows whose probabilities are not finite (values that overflow float32
    arithmetic inside the model), or None when every row is finite."""
    import numpy as np

    finite = np.isfinite(proba).all(axis=1)
    if finite.all():
        return None
    bad = np.flatnonzero(~finite)
    shown = ", ".join(f"instances[{i}]" for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
    return (
        f"{shown}: the model's output is not finite (the values overflow float32 "
        "arithmetic inside the model); send values on the scale of the training data"
    )


def predictions(proba: np.ndarray, classes: tuple[int, ...] | list[int]) -> list[dict[str, Any]]:
    """One ``{"label", "probabilities"}`` per row (the ``Prediction`` schema as plain values)."""
    import numpy as np

    names = [str(c) for c in classes]
    labels = np.asarray(classes)[proba.argmax(axis=1)]
    return [
        {"label": int(label), "probabilities": dict(zip(names, row.tolist(), strict=True))}
        for label, row in zip(labels, proba, strict=True)
    ]


# BentoML names the bento's input model after ``PredictRequest`` plus this suffix (its IO
# descriptor class), and its 400s say so; another backend names it the same way.
BENTO_INPUT_SUFFIX = "IODescriptor"


def validation_error_body(error: ValidationError) -> dict[str, Any]:
    """The 400 body for a request the strict schema refuses, as BentoML writes it."""
    title = (
        error.title
        if error.title.endswith(BENTO_INPUT_SUFFIX)
        else error.title + BENTO_INPUT_SUFFIX
    )
    return {
        "error": f"{error.error_count()} validation error for {title}",
        "detail": error.errors(include_context=False, include_input=False),
    }


def metadata_document(
    settings: ServingSettings,
    *,
    device: str,
    not_ready_reason: str | None,
    auth_required: bool,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``GET /metadata``: provenance, limits, device and readiness of the served model."""
    return {
        **settings.labels(),
        "bento_model_tag": settings.bento_model_tag,
        "classes": list(settings.classes),
        "n_features": settings.n_features,
        "max_rows": settings.max_rows,
        "max_body_bytes": settings.max_body_bytes,
        "device": device,
        "ready": not_ready_reason is None,
        "not_ready_reason": not_ready_reason,
        "auth_required": auth_required,
        **(extra or {}),
    }
