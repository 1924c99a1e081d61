"""Checks on what callers pass the client (names, steps, metric values, tags), before any request:
a bad value raises naming the key and where it came from, and nothing of its call is written."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

# Metric rows carry their step under a key no MLflow metric name can take.
STEP_KEY = "\x00step"
# A metric row of ``log_metrics_batch`` may name its own step under this key.
BATCH_STEP_KEY = "step"


def check_key(key: object, kind: str) -> str:
    """A non-empty string name (of a param, metric or tag)."""
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"{kind} names must be non-empty strings, got {key!r}")
    return key


def check_step(step: object, where: str = "step") -> int:
    """An integer step; None is MLflow's step 0. Bools and floats are refused, not truncated."""
    if step is None:
        return 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"{where}: step must be an integer, got {step!r}")
    return int(step)


def metric_value(key: str, value: object, where: str) -> float:
    """A float for MLflow; numpy/MLX scalars and 0-d arrays are accepted, bools and text are not."""
    type_name = type(value).__name__
    if isinstance(value, bool) or type_name == "bool_" or isinstance(value, str | bytes):
        raise TypeError(f"metric {key!r} ({where}) is not a number: {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise TypeError(f"metric {key!r} ({where}) is not a number: {value!r}") from error


def metric_row(metrics: object, step: int, where: str) -> dict[str, float]:
    """One row for ``MlflowResource.log_metrics_batch``: the checked values and their step."""
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{where} must be a dict of metric name -> number, got {type(metrics).__name__}"
        )
    row = {check_key(k, "metric"): metric_value(k, v, where) for k, v in metrics.items()}
    return {**row, STEP_KEY: step}


def string_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    """Tags as MLflow stores them: string names, values turned into strings."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a mapping of name -> value, got {type(tags).__name__}")
    return {check_key(key, "tag"): str(value) for key, value in tags.items()}
