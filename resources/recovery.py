"""Runs whose process died are failed, their pool slots freed and their MLflow runs ended.

A run process killed outright (``kill -9``, the OOM killer, a power cut) records nothing: its
Dagster run stays STARTED, the ``heavy`` pool slot it claimed stays claimed (so every later run
waits for it forever) and its MLflow run stays RUNNING. Dagster's run monitoring cannot tell, for
runs launched in-process (``dg launch``, ``make run``) or by the default run launcher: neither
reports whether the run's process lives. So, at the start of every ``make run`` and ``make dev``
(``python -m resources.recovery``) and on demand:

- a STARTED run whose recorded process (the ``pid`` of its engine events) no longer exists on
  this host is failed, and so is a STARTED run older than the instance's
  ``run_monitoring.max_runtime_seconds`` that has no live process to show for itself;
- each such run's concurrency slots are freed (``heavy`` included);
- every RUNNING MLflow run tagged with the id of a Dagster run that has ended is ended FAILED.

The process check applies only to instances on SQLite storage, whose runs all run on this host;
with shared (PostgreSQL) storage only the runtime bound applies, as in the daemon. A pid is
trusted only if its process started before the run recorded it, so a reused pid never keeps a
dead run alive.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dagster as dg

from resources.mlflow.bootstrap import sqlite_path

if TYPE_CHECKING:
    from resources.mlflow.resource import MlflowResource

# The MLflow run tag that names the Dagster run a run belongs to.
DAGSTER_RUN_TAG = "dagster.run_id"
# A pid recorded this long before its process was created belongs to another process.
_PID_CLOCK_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class RecoveredRun:
    run_id: str
    job_name: str
    reason: str


@dataclass(frozen=True)
class RecoveryReport:
    failed_runs: list[RecoveredRun]
    ended_mlflow_runs: list[str]
    problems: list[str]

    def lines(self) -> list[str]:
        return (
            [
                f"recovery: run {run.run_id} ({run.job_name}) marked failed: {run.reason}"
                for run in self.failed_runs
            ]
            + [
                f"recovery: MLflow run {run_id} ended FAILED (its Dagster run had ended)"
                for run_id in self.ended_mlflow_runs
            ]
            + [f"recovery: {problem}" for problem in self.problems]
        )


def process_alive(pid: int, recorded_at: float) -> bool:
    """Whether the process ``pid`` that a run recorded at ``recorded_at`` still runs here."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= recorded_at + _PID_CLOCK_SLACK_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's process: cannot tell, so never fail the run for it


def recorded_pids(instance: dg.DagsterInstance, run_id: str) -> list[tuple[int, float]]:
    """Every ``(pid, when)`` the run's engine events recorded: its run process (in-process or
    run-worker launch) and any step subprocess."""
    found: list[tuple[int, float]] = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        data = event.engine_event_data if event is not None else None
        value = data.metadata.get("pid") if data is not None else None
        text = getattr(value, "value", value)
        if isinstance(text, str) and text.isdigit():
            found.append((int(text), entry.timestamp))
    return found


def runs_on_this_host(instance: dg.DagsterInstance) -> bool:
    """SQLite storage lives on one machine's disk: every run of the instance runs here."""
    return type(instance.run_storage).__name__.startswith("Sqlite")


def dead_run_reason(
    instance: dg.DagsterInstance, record: dg.RunRecord, now: float, local: bool
) -> str | None:
    """Why a STARTED run is dead, or None while it may be alive."""
    run_id = record.dagster_run.run_id
    pids = recorded_pids(instance, run_id) if local else []
    alive = [pid for pid, when in pids if process_alive(pid, when)]
    if pids and not alive:
        return f"its process (pid {pids[0][0]}) is gone"
    limit = instance.run_monitoring_max_runtime_seconds
    started = record.start_time or record.create_timestamp.timestamp()
    if not alive and limit and now - started > limit:
        return f"still STARTED after run_monitoring.max_runtime_seconds ({limit} s)"
    return None


def fail_dead_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[RecoveredRun]:
    """Fail every dead STARTED run of ``instance`` and free its concurrency slots."""
    import time

    moment = now if now is not None else time.time()
    local = runs_on_this_host(instance)
    recovered: list[RecoveredRun] = []
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])
    )
    for record in records:
        reason = dead_run_reason(instance, record, moment, local)
        if reason is None:
            continue
        run = record.dagster_run
        instance.report_run_failed(run, f"Run recovery: {reason}; marked failed.")
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(RecoveredRun(run.run_id, run.job_name, reason))
    return recovered


def _running_tagged_runs_sqlite(database: str) -> list[tuple[str, str]]:
    """(MLflow run id, Dagster run id) of RUNNING runs, read straight from a SQLite store (no
    MLflow import: this runs before every ``make run``)."""
    if not os.path.exists(database):
        return []
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute(
            "SELECT runs.run_uuid, tags.value FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
            "WHERE runs.status = 'RUNNING' AND tags.key = ?",
            (DAGSTER_RUN_TAG,),
        ).fetchall()
    except sqlite3.OperationalError:  # no MLflow tables yet
        return []
    finally:
        connection.close()
    return [(str(run_id), str(dagster_run_id)) for run_id, dagster_run_id in rows]


def _running_tagged_runs_client(mlflow: MlflowResource) -> list[tuple[str, str]]:
    client = mlflow.client()
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    found: list[tuple[str, str]] = []
    if not experiment_ids:
        return found
    token: str | None = None
    while True:
        page = client.search_runs(
            experiment_ids,
            filter_string="attributes.status = 'RUNNING'",
            max_results=1000,
            page_token=token,
        )
        found += [
            (run.info.run_id, run.data.tags[DAGSTER_RUN_TAG])
            for run in page
            if DAGSTER_RUN_TAG in run.data.tags
        ]
        token = page.token
        if not token:
            return found


def end_orphaned_mlflow_runs(
    instance: dg.DagsterInstance, mlflow: MlflowResource, extra_ended: Iterable[str] = ()
) -> list[str]:
    """End FAILED every RUNNING MLflow run whose Dagster run (of this instance) has ended."""
    database = sqlite_path(mlflow.resolved_tracking_uri())
    candidates = (
        _running_tagged_runs_sqlite(str(database))
        if database is not None
        else _running_tagged_runs_client(mlflow)
    )
    ended_now = set(extra_ended)
    ended: list[str] = []
    for mlflow_run_id, dagster_run_id in candidates:
        run = instance.get_run_by_id(dagster_run_id)
        if run is None:  # another instance's run: not ours to judge
            continue
        if run.is_finished or dagster_run_id in ended_now:
            ended.append(mlflow_run_id)
    if ended:
        client = mlflow.client()
        for mlflow_run_id in ended:
            client.set_terminated(mlflow_run_id, status="FAILED")
    return ended


def recover(instance: dg.DagsterInstance, mlflow: MlflowResource | None) -> RecoveryReport:
    """Fail dead runs, free their slots, end their MLflow runs (see the module docstring)."""
    failed = fail_dead_runs(instance)
    ended: list[str] = []
    problems: list[str] = []
    if mlflow is not None:
        try:
            ended = end_orphaned_mlflow_runs(instance, mlflow, (run.run_id for run in failed))
        except Exception as error:  # an unreachable tracking server must not stop a launch
            first_line = (str(error).splitlines() or [""])[0][:300]
            problems.append(
                f"MLflow runs of dead runs not ended ({mlflow.display_uri()}): {first_line}; "
                "the next start tries again"
            )
    return RecoveryReport(failed, ended, problems)


def mlflow_from_environment() -> MlflowResource:
    """The MLflow store the code location uses, wired from the environment the same way."""
    from resources.defaults import DEFAULT_NAMESPACE, build_resources

    return build_resources(os.environ.get("EFFICIENTAI_PROJECT", DEFAULT_NAMESPACE))["mlflow"]


class RecoveringRunCoordinator(dg.QueuedRunCoordinator):
    """Dagster's run queue (``make dev``'s UI, schedules and sensors submit runs to it), which
    recovers dead runs whenever a run is submitted: the daemon dequeues a run only when its pool
    has a free slot, so a slot held by a dead run would keep every later run queued. Configured
    in the home's ``dagster.yaml``."""

    def submit_run(self, context: Any) -> Any:
        try:
            report = recover(self._instance, mlflow_from_environment())
            for line in report.lines():
                self._instance.report_engine_event(line, context.dagster_run)
        except Exception as error:  # recovery must never stop a submission
            logging.getLogger(__name__).warning("run recovery skipped: %s", error)
        return super().submit_run(context)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m resources.recovery``: recover the instance of ``DAGSTER_HOME`` (default: the
    home's) and the MLflow store the code location uses; one line per recovered run."""
    parser = argparse.ArgumentParser(prog="python -m resources.recovery", description=__doc__)
    parser.parse_args(argv)
    from resources.home import default_home

    dagster_home = os.environ.get("DAGSTER_HOME") or str(default_home().dagster_home)
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        recover_and_report(instance)


def recover_and_report(instance: dg.DagsterInstance) -> None:
    """Recover ``instance`` and the code location's MLflow store; one line per recovered run on
    stderr."""
    for line in recover(instance, mlflow_from_environment()).lines():
        print(line, file=sys.stderr)


if __name__ == "__main__":
    main()
