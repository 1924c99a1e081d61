"""What a bento serves and within which limits: ``serving.json`` (baked in at build) + environment.

The build writes ``serving.json`` next to this file in the bento's source tree; it names the model
in the BentoML store, the MLflow version it came from, and the request limits. At serve time a few
limits may be tightened or loosened through ``EFFICIENTAI_SERVE_*`` variables; the model identity
cannot be overridden. Pure Python: importing it is cheap and needs neither bentoml nor mlx.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

SETTINGS_FILENAME = "serving.json"
SETTINGS_PATH_ENV = "EFFICIENTAI_SERVING_SETTINGS"
DEFAULT_TOKEN_ENV = "EFFICIENTAI_SERVE_TOKEN"

# Environment overrides read at serve time: variable -> settings field.
ENV_OVERRIDES: Mapping[str, str] = {
    "EFFICIENTAI_SERVE_MAX_ROWS": "max_rows",
    "EFFICIENTAI_SERVE_MAX_BODY_BYTES": "max_body_bytes",
    "EFFICIENTAI_SERVE_TOKEN_ENV": "token_env",
    "EFFICIENTAI_SERVE_ADAPTIVE_BATCHING": "adaptive_batching",
    "EFFICIENTAI_SERVE_MAX_BATCH_SIZE": "max_batch_size",
    "EFFICIENTAI_SERVE_MAX_LATENCY_MS": "max_latency_ms",
    "EFFICIENTAI_SERVE_MAX_QUEUE_ROWS": "max_queue_rows",
    "EFFICIENTAI_SERVE_MAX_IN_FLIGHT": "max_in_flight",
    "EFFICIENTAI_SERVE_MAX_IN_FLIGHT_BYTES": "max_in_flight_bytes",
    "EFFICIENTAI_SERVE_TRACE_PREDICT": "trace_predict",
}
_BOOL_FIELDS = frozenset({"adaptive_batching", "trace_predict"})
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """``serving.json`` is missing or malformed, or an override is not a valid value."""


@dataclass(frozen=True)
class ServingSettings:
    """Everything the service needs before it loads a model."""

    bento_model_tag: str
    model_name: str
    model_version: str
    data_md5: str
    git_sha: str
    n_features: int
    classes: tuple[int, ...]
    max_rows: int = 512
    max_body_bytes: int = 1_000_000
    # Batching and back-pressure (see ``batching``): rows per forward pass, how long a request
    # may wait for the model, rows waiting before new requests get 503 + Retry-After, and the
    # requests and request bytes one worker holds at once (parsing, queued, computing or
    # answering); the byte bound keeps a burst of large requests from piling up seconds of work.
    max_batch_size: int = 512
    max_latency_ms: int = 10_000
    max_queue_rows: int = 1024
    max_in_flight: int = 64
    max_in_flight_bytes: int = 1_000_000
    token_env: str = DEFAULT_TOKEN_ENV
    adaptive_batching: bool = True
    trace_predict: bool = False
    feature_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in (
            "n_features",
            "max_rows",
            "max_body_bytes",
            "max_batch_size",
            "max_latency_ms",
            "max_queue_rows",
            "max_in_flight",
            "max_in_flight_bytes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(
                    f"serving setting {name} must be a positive integer, got {value!r}"
                )
        if not self.classes:
            raise SettingsError("serving setting classes must name at least one class")
        if self.feature_names and len(self.feature_names) != self.n_features:
            raise SettingsError(
                f"serving settings list {len(self.feature_names)} feature names "
                f"but n_features is {self.n_features}"
            )
        if not self.token_env.replace("_", "").isalnum():
            raise SettingsError(
                f"token_env must be an environment variable name, got {self.token_env!r}"
            )

    # -- serialisation ------------------------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ServingSettings:
        known = {name for name in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise SettingsError(f"unknown serving settings {unknown}")
        values = dict(raw)
        values["classes"] = tuple(int(c) for c in values.get("classes", ()))
        values["feature_names"] = tuple(str(n) for n in values.get("feature_names", ()))
        try:
            return cls(**values)
        except TypeError as error:
            raise SettingsError(f"incomplete serving settings: {error}") from error

    def labels(self) -> dict[str, str]:
        """The provenance every bento and response carries."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "data_md5": self.data_md5,
            "git_sha": self.git_sha,
        }

    def with_env(self, environ: Mapping[str, str]) -> ServingSettings:
        """These settings with the ``EFFICIENTAI_SERVE_*`` overrides found in ``environ``."""
        changes: dict[str, Any] = {}
        for variable, name in ENV_OVERRIDES.items():
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            if name == "token_env":
                changes[name] = raw
                continue
            if name in _BOOL_FIELDS:
                if raw.lower() not in _TRUE | _FALSE:
                    raise SettingsError(f"{variable} must be true or false, got {raw!r}")
                changes[name] = raw.lower() in _TRUE
                continue
            try:
                changes[name] = int(raw)
            except ValueError as error:
                raise SettingsError(f"{variable} must be an integer, got {raw!r}") from error
        return replace(self, **changes) if changes else self


def settings_path() -> Path:
    configured = os.environ.get(SETTINGS_PATH_ENV)
    return Path(configured) if configured else Path(__file__).with_name(SETTINGS_FILENAME)


def load_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> ServingSettings:
    """The settings of the bento this code runs in, with environment overrides applied."""
    path = path or settings_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise SettingsError(
            f"{path} is missing: this service runs from a bento built by efficientai "
            "(BentoMLResource.build_bento), not from the source tree"
        ) from error
    except json.JSONDecodeError as error:
        raise SettingsError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise SettingsError(f"{path} must hold a JSON object")
    return ServingSettings.from_mapping(raw).with_env(os.environ if environ is None else environ)
