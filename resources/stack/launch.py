"""Submit a job to the stack's webserver (through the queued run coordinator, as the UI does) and
wait for it: the daemon dequeues it within the run limits and the Celery executor spreads its
steps over the workers. Fails with the run's step errors and the run's URL."""

from __future__ import annotations

import json
import time
from typing import Any

from resources.stack.processes import StackError
from resources.stack.services import Stack

_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
_LOST_CONNECTION = "server closed the connection unexpectedly"
# How often `wait` asks the webserver for the run's status: one small GraphQL query; a run's end
# is seen within a quarter of a second rather than up to a second late.
_POLL_SECONDS = 0.25


def submit(
    stack: Stack,
    job: str,
    partition: str | None = None,
    run_config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
) -> str:
    """Queue one run of ``job``; returns its run id."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    client = DagsterGraphQLClient("127.0.0.1", port_number=stack.state.ports["webserver"])
    all_tags = dict(tags or {})
    if partition:
        all_tags["dagster/partition"] = partition
    attempts = 5  # one per storage (runs, events, schedules) holding a dead connection, and spare
    for attempt in range(1, attempts + 1):
        try:
            return str(
                client.submit_job_execution(job, run_config=run_config or {}, tags=all_tags or None)
            )
        except DagsterGraphQLClientError as error:
            # The webserver keeps one pooled PostgreSQL connection; after a database restart its
            # first requests fail on the dead connections, which are then replaced: ask again.
            if attempt < attempts and _LOST_CONNECTION in str(error):
                time.sleep(1.0)
                continue
            raise StackError(
                f"the webserver at {stack.webserver_url} did not accept a run of {job!r}: {error}"
            ) from error
    raise AssertionError("unreachable")


def wait(stack: Stack, run_id: str, timeout_seconds: float) -> str:
    """Poll the run until it ends; returns its final status, or fails naming what went wrong."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=stack.state.ports["webserver"])
    deadline = time.monotonic() + timeout_seconds
    status = "QUEUED"
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id).value
        if status in _TERMINAL:
            break
        time.sleep(_POLL_SECONDS)
    url = f"{stack.webserver_url}/runs/{run_id}"
    if status not in _TERMINAL:
        raise StackError(f"run {run_id} still {status} after {timeout_seconds:.0f} s: see {url}")
    if status != "SUCCESS":
        raise StackError(f"run {run_id} ended {status}: {step_errors(stack, run_id)}; see {url}")
    return status


def step_errors(stack: Stack, run_id: str) -> str:
    """The run's step failure messages, read from the stack's Dagster storage."""
    import os

    import dagster as dg

    saved = dict(os.environ)  # the stack's variables only while its storage is read
    os.environ.update(stack.client_env(secrets=False))
    try:
        with dg.DagsterInstance.from_config(str(stack.paths.dagster_home)) as instance:
            records = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            failures = [
                f"{record.step_key}: {record.dagster_event.step_failure_data.error.message.strip()}"
                for record in records
                if record.dagster_event is not None
                and record.dagster_event.step_failure_data is not None
                and record.dagster_event.step_failure_data.error is not None
            ]
            if not failures:
                records = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
                failures = [record.message for record in records if record.message]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return "; ".join(failures) or "no step failure recorded"


def parse_config(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise StackError(f"--config-json is not JSON: {error}") from error
    if not isinstance(parsed, dict):
        raise StackError("--config-json must be a JSON object (the run config)")
    return parsed
