"""The executor the jobs run with, chosen by configuration: in one process by default, or on
``dagster-celery`` workers when ``EFFICIENTAI_CELERY_BROKER`` names a broker.

Steps tagged ``dagster-celery/queue: heavy`` (training, bento builds) go to the ``heavy`` queue,
which only workers on hardware fit for it consume; every other step goes to ``dagster``. The
Celery settings here are shared with the workers (``resources.stack.worker_app``) so both sides
declare the queues alike.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from resources.stack.settings import BACKEND_ENV, BROKER_ENV, DEFAULT_QUEUE

# A step whose worker dies is not lost: its message is acknowledged only when the step has ended,
# so the broker hands it to another worker of its queue (the step runs again there). One step at
# a time per worker: a heavy step holds the machine it runs on.
CELERY_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "task_default_queue": DEFAULT_QUEUE,
    "broker_connection_retry_on_startup": True,
    # A worker runs its step in its own thread of control (solo pool) and sends no AMQP heartbeats
    # meanwhile; with heartbeats on, the broker would drop it mid-step and hand the step to
    # another worker while the first still runs it. A killed worker's socket closes at once.
    "broker_heartbeat": 0,
}


RUN_LOOP_TICK_SECONDS = 0.1


def celery_selected() -> bool:
    return bool(os.environ.get(BROKER_ENV))


def executor_from_environment() -> dg.ExecutorDefinition:
    """The in-process executor (``resources.in_process_executor``: Dagster's, with a pool wait
    that sleeps) unless a Celery broker is configured (then the Celery executor, its broker and
    backend read from the environment when a run starts)."""
    if not celery_selected():
        try:
            from resources.in_process_executor import sleeping_in_process_executor
        except ImportError:  # not the pinned Dagster: its own executor (the wait spins again)
            return dg.in_process_executor
        return sleeping_in_process_executor
    from dagster_celery import celery_executor, core_execution_loop

    # dagster-celery's run loop looks at its tasks once a second (TICK_SECONDS = 1, a module
    # constant it offers no setting for): every step then waits on average half a second after its
    # predecessor ended before it is even submitted — seconds over a pipeline of a dozen steps.
    # A tenth of a second costs one result check per running step per tick.
    if isinstance(getattr(core_execution_loop, "TICK_SECONDS", None), int | float):
        setattr(core_execution_loop, "TICK_SECONDS", RUN_LOOP_TICK_SECONDS)  # noqa: B010
    backend: Any = {"env": BACKEND_ENV} if os.environ.get(BACKEND_ENV) else "rpc://"
    return celery_executor.configured(
        {
            "broker": {"env": BROKER_ENV},
            "backend": backend,
            "config_source": CELERY_SETTINGS,
        },
        name="celery",
    )
