"""Dagster's in-process executor, with a wait for a pool slot that sleeps instead of spinning.

In Dagster 1.13.27 a step that waits for a concurrency-pool slot (the ``heavy`` pool: training,
bento builds) is re-checked by the in-process executor's loop after
``InstanceConcurrencyContext.interval_to_next_pending_claim_check()`` seconds, which returns
``min(0, ...)`` — never more than 0 — so the loop never sleeps: a run queued behind another
run's training burns a whole core for as long as it waits (dagster-io/dagster PR #20367 named
the bug; it was closed unmerged). The claim itself already backs off (1 s, growing to 15 s,
between checks of the storage); only the sleep until the next check is missing.

This executor is Dagster's in-process executor (same name, same config, same events) whose
concurrency context returns the time left until the next check, so the loop sleeps until then.
It is what the project's jobs run with unless Celery is configured
(``resources.stack.executor``). Built on Dagster's execution internals of the pinned version;
``tests/operations/test_pool_wait.py`` measures the waiting process's CPU on real processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg

# Built on the execution internals of exactly this Dagster; any other refuses to load here and
# the jobs run with Dagster's own in-process executor (resources.stack.executor).
PINNED_DAGSTER = "1.13.27"
if dg.__version__ != PINNED_DAGSTER:
    raise ImportError(
        f"resources.in_process_executor is built for Dagster {PINNED_DAGSTER}, not {dg.__version__}"
    )

from dagster._core.definitions.executor_definition import (  # noqa: E402
    IN_PROC_CONFIG,
    _core_in_process_executor_creation,
)
from dagster._core.events import DagsterEvent, EngineEventData  # noqa: E402
from dagster._core.execution.api import ExecuteRunWithPlanIterable  # noqa: E402
from dagster._core.execution.context.system import PlanExecutionContext, PlanOrchestrationContext  # noqa: E402
from dagster._core.execution.context_creation_job import PlanExecutionContextManager  # noqa: E402
from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator  # noqa: E402
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext  # noqa: E402
from dagster._core.execution.plan.plan import ExecutionPlan  # noqa: E402
from dagster._core.executor.in_process import InProcessExecutor  # noqa: E402
from dagster._utils.timing import time_execution_scope  # noqa: E402
from dagster_shared.utils.timing import format_duration  # noqa: E402


class SleepingConcurrencyContext(InstanceConcurrencyContext):
    """Dagster's per-run view of pool claims; the time to the next claim check is never
    negative (``max``, where Dagster 1.13.27 takes ``min(0, ...)``)."""

    def interval_to_next_pending_claim_check(self) -> float:
        if not self.has_pending_claims() or not self._pending_timeouts:
            return 0.0
        now = time.time()
        return max(0.0, min(ready_at - now for ready_at in self._pending_timeouts.values()))


def _sleeping_execution_iterator(
    job_context: PlanExecutionContext,
    execution_plan: ExecutionPlan,
    instance_concurrency_context: InstanceConcurrencyContext | None = None,
) -> Iterator[DagsterEvent]:
    """``dagster._core.executor.in_process.inprocess_execution_iterator`` with the context above."""
    with SleepingConcurrencyContext(job_context.instance, job_context.dagster_run) as context:
        yield from inner_plan_execution_iterator(job_context, execution_plan, context)


class SleepingInProcessExecutor(InProcessExecutor):
    """``InProcessExecutor.execute`` (Dagster 1.13.27) with the sleeping iterator."""

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[DagsterEvent]:
        steps = execution_plan.step_keys_to_execute
        yield DagsterEvent.engine_event(
            plan_context,
            f"Executing steps in process (pid: {os.getpid()})",
            event_specific_data=EngineEventData.in_process(os.getpid(), steps),
        )
        with time_execution_scope() as timer_result:
            yield from iter(
                ExecuteRunWithPlanIterable(
                    execution_plan=plan_context.execution_plan,
                    iterator=_sleeping_execution_iterator,
                    execution_context_manager=PlanExecutionContextManager(
                        job=plan_context.job,
                        retry_mode=plan_context.retry_mode,
                        execution_plan=plan_context.execution_plan,
                        run_config=plan_context.run_config,
                        dagster_run=plan_context.dagster_run,
                        instance=plan_context.instance,
                        raise_on_error=plan_context.raise_on_error,
                        output_capture=plan_context.output_capture,
                        step_dependency_config=self.step_dependency_config,
                    ),
                )
            )
        yield DagsterEvent.engine_event(
            plan_context,
            f"Finished steps in process (pid: {os.getpid()}) in "
            f"{format_duration(timer_result.millis)}",
            event_specific_data=EngineEventData.in_process(os.getpid(), steps),
        )


@dg.executor(name="in_process", config_schema=IN_PROC_CONFIG)
def sleeping_in_process_executor(init_context: Any) -> SleepingInProcessExecutor:
    """Execute all steps in a single process; a step waiting for a pool slot sleeps."""
    stock = _core_in_process_executor_creation(init_context.executor_config)
    return SleepingInProcessExecutor(
        retries=stock.retries,
        marker_to_close=stock.marker_to_close,
        step_dependency_config=stock.step_dependency_config,
    )
