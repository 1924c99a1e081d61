"""The Celery app a stack worker runs: ``celery -A resources.stack.worker_app worker -Q a,b``.

It registers dagster-celery's step task on an app built from the environment (the broker URL is
read from ``EFFICIENTAI_CELERY_BROKER`` and never written to a file) with the executor's own
settings, so the run side and the workers agree on queues and acknowledgement.

A worker is a long-lived process: before it takes its first step it loads the code location and
the libraries the steps use (``resources.stack.warmup``), so no run pays those imports.
"""

from __future__ import annotations

import os
from typing import Any

from celery.signals import celeryd_after_setup
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from resources.stack.executor import CELERY_SETTINGS
from resources.stack.settings import BACKEND_ENV, BROKER_ENV
from resources.stack.warmup import preload_from_environment

_broker = os.environ.get(BROKER_ENV)
if not _broker:
    raise RuntimeError(
        f"{BROKER_ENV} is not set: a worker needs the broker URL of the stack it joins "
        "(`python -m resources.stack env` on the stack's machine prints it)"
    )

app = make_app(
    CeleryExecutor.for_cli(
        broker=_broker,
        backend=os.environ.get(BACKEND_ENV) or "rpc://",
        config_source=CELERY_SETTINGS,
    ).app_args()
)
execute_plan = create_task(app)


@celeryd_after_setup.connect
def _warm_up(**_: Any) -> None:
    """Runs once in the worker process, after its logging is set up and before it consumes (so
    before it says "ready")."""
    preload_from_environment()
