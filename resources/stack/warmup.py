"""What a stack worker imports before its first step.

A step on a Celery worker runs in the worker's own long-lived process (``--pool solo``), so the
first step of every worker used to pay for loading the code location and the libraries behind it
(MLflow alone takes seconds to import, and a light and a heavy worker each paid it). Importing them
once when the worker starts moves that cost to ``make stack-up`` / ``make stack-worker``, where it
is paid once per worker instead of inside somebody's run.

``EFFICIENTAI_WORKER_PRELOAD`` replaces the list (comma-separated module names; empty: none). A
module that fails to import is logged and skipped: the worker still starts, and the step that
needs the module fails with the import's own error.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

PRELOAD_ENV = "EFFICIENTAI_WORKER_PRELOAD"

# The code location first (every step reconstructs its job from it) and the storage every step
# writes its events to, then what the steps import lazily: the sample's loader, the data formats,
# DVC and its S3 filesystem, MLflow's client and model flavour. Training itself runs in a child
# process, so MLX is not among them.
DEFAULT_PRELOAD = (
    "efficientai_assets.definitions",
    "dagster_postgres",
    "pandas",
    "pyarrow.parquet",
    "sklearn.datasets",
    "dvc.repo",
    "s3fs",
    "mlflow",
    "mlflow.pyfunc",
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preloaded:
    module: str
    seconds: float
    error: str | None = None


def preload_modules() -> tuple[str, ...]:
    """The modules to preload: ``EFFICIENTAI_WORKER_PRELOAD`` when set, else the default list."""
    configured = os.environ.get(PRELOAD_ENV)
    if configured is None:
        return DEFAULT_PRELOAD
    return tuple(name.strip() for name in configured.split(",") if name.strip())


def preload(modules: Iterable[str]) -> list[Preloaded]:
    """Import each module in turn; one that fails is reported, not raised."""
    results: list[Preloaded] = []
    for module in modules:
        started = time.perf_counter()
        error: str | None = None
        try:
            importlib.import_module(module)
        except Exception as failure:  # a worker must start without an optional module
            error = f"{type(failure).__name__}: {failure}"
        results.append(Preloaded(module, time.perf_counter() - started, error))
    return results


def preload_from_environment() -> list[Preloaded]:
    results = preload(preload_modules())
    for result in results:
        if result.error:
            logger.warning(
                "worker warm-up: could not import %s (%s); a step that needs it will fail",
                result.module,
                result.error,
            )
    loaded = [result for result in results if not result.error]
    if loaded:
        logger.info(
            "worker warm-up: imported %s in %.1f s",
            ", ".join(result.module for result in loaded),
            sum(result.seconds for result in results),
        )
    return results
