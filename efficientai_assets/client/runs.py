"""Experiments, runs and logging: ``create_experiment``, ``start_run`` and the ``log_*`` calls.

Each ``start_run`` creates its run with ``MlflowClient`` and an explicit id and registers it in
``core.OPEN_RUNS`` for the current thread or task only; values are checked (``values.py``) before
any request, and metrics go out in batched ``log_batch`` round-trips. Whatever MLflow raises leaves
as a ``TrackingError`` naming the run and the tracking URI (``guard.py``); an exception raised by
the caller's own code inside a ``start_run`` block propagates unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from efficientai_assets.client.core import OPEN_RUNS, ClientCore
from efficientai_assets.client.errors import (
    ArgumentTypeError,
    InvalidArgumentError,
    MLOpsClientError,
    PathNotFoundError,
    RunHandle,
)
from efficientai_assets.client.guard import guarded, guarded_await, translate
from efficientai_assets.client.values import (
    BATCH_STEP_KEY,
    STEP_KEY,
    check_key,
    check_step,
    metric_row,
    string_tags,
)
from efficientai_assets.names import (
    TAG_GIT_SHA,
    TAG_PARENT_RUN,
    TAG_PROJECT,
    TAG_SOURCE,
    TRAINING_EXPERIMENT,
)


class RunsMixin(ClientCore):
    """Experiments and runs of one project namespace, kept apart per thread and task."""

    @guarded("create an experiment")
    def create_experiment(
        self,
        experiment_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
    ) -> str:
        """The id of experiment ``<namespace>/<experiment_name>``, created on first use
        (idempotent). ``name=`` is accepted for ``experiment_name=``."""
        if (experiment_name is None) == (name is None):
            raise InvalidArgumentError(
                "create_experiment takes the experiment's name once: "
                "create_experiment('training') or create_experiment(experiment_name='training')"
            )
        name = experiment_name if experiment_name is not None else name
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(f"experiment name must be a non-empty string, got {name!r}")
        experiment_id = self.mlflow_client.ensure_experiment(name.strip(), string_tags(tags))
        self._log("experiment %s -> %s", self.mlflow_client.experiment_name(name), experiment_id)
        return experiment_id

    def _experiment_for_run(self, experiment_id: str | None) -> str:
        from mlflow.exceptions import MlflowException

        if experiment_id is None:
            with self._lock:
                cached = self._default_experiment_id
            if cached is None:
                cached = self.mlflow_client.ensure_experiment(TRAINING_EXPERIMENT)
                with self._lock:
                    self._default_experiment_id = cached
            return cached
        experiment_id = str(experiment_id)
        try:
            experiment = self._mlflow().get_experiment(experiment_id)
        except MlflowException as error:
            raise InvalidArgumentError(
                f"experiment {experiment_id!r} does not exist in "
                f"{self.mlflow_client.display_uri()}: create it with create_experiment()"
            ) from error
        if experiment.lifecycle_stage != "active":
            raise MLOpsClientError(f"experiment {experiment_id!r} ({experiment.name}) is deleted")
        return experiment_id

    @contextmanager
    def start_run(
        self,
        run_name: str,
        experiment_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Iterator[RunHandle]:
        """Open a run and make it this client's current run in this thread; it ends FINISHED, or
        FAILED when the block raises (KILLED on Ctrl-C). A run started inside another run of the
        same client is its child (in the parent's experiment unless told otherwise); otherwise
        ``experiment_id=None`` means ``<namespace>/training``, where the training asset logs."""
        from efficientai_assets.provenance import git_sha

        if not isinstance(run_name, str) or not run_name.strip():
            raise InvalidArgumentError(f"run_name must be a non-empty string, got {run_name!r}")
        parent = self.active_run
        if experiment_id is None and parent is not None:
            experiment_id = parent.experiment_id
        action = f"create run {run_name.strip()!r}"
        try:
            resolved_experiment = self._experiment_for_run(experiment_id)
            run_tags = {
                TAG_PROJECT: self.project_namespace,
                TAG_SOURCE: "client",
                TAG_GIT_SHA: git_sha(),
                **({TAG_PARENT_RUN: parent.run_id} if parent is not None else {}),
                **string_tags(tags),
            }
            tracking = self._mlflow()
            created = tracking.create_run(
                resolved_experiment, run_name=run_name.strip(), tags=_resolve_context_tags(run_tags)
            )
        except Exception as error:
            context = {**self.error_context(), "run_id": None}
            raise translate(error, f"{action} in experiment {experiment_id}", **context) from error
        handle = RunHandle(
            run_id=created.info.run_id,
            experiment_id=resolved_experiment,
            run_name=created.info.run_name,
            url=self.mlflow_client.run_url(resolved_experiment, created.info.run_id),
            parent_run_id=parent.run_id if parent is not None else None,
        )
        OPEN_RUNS.set((*OPEN_RUNS.get(), (self._identity, handle)))
        self._log("run %s started: %s", handle.run_name, handle.url)
        status = "FAILED"
        try:
            yield handle
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            OPEN_RUNS.set(tuple(e for e in OPEN_RUNS.get() if e[1].run_id != handle.run_id))
            try:
                tracking.set_terminated(handle.run_id, status=status)
            except Exception as error:
                context = {**self.error_context(), "run_id": handle.run_id}
                raise translate(error, f"end the run {status}", **context) from error
            self._log("run %s ended %s", handle.run_name, status)

    @guarded("log params")
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values are stored as strings) into the current run, in one request."""
        handle = self._require_run("log params")
        if not isinstance(params, Mapping):
            raise ArgumentTypeError(f"params must be a mapping, got {type(params).__name__}")
        for key in params:
            check_key(key, "param")
        if params:
            self.mlflow_client.log_params(handle.run_id, params)

    @guarded("log metrics")
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log numeric metrics at ``step`` (MLflow's step 0 when omitted), in one request."""
        handle = self._require_run("log metrics")
        self._write_metrics(handle.run_id, [metric_row(metrics, check_step(step), "metrics")])

    @guarded("log a metrics batch")
    def log_metrics_batch(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log many metric rows in one round-trip (MLflow's ``log_batch``, 1000 values a request).

        A row's ``step`` entry places it; a row without one is step ``i`` (its index in ``rows``).
        Every row is checked before anything is written.
        """
        handle = self._require_run("log a metrics batch")
        if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Sequence):
            raise ArgumentTypeError(
                f"log_metrics_batch takes a list of metric dicts, got {type(rows).__name__}"
            )
        prepared = []
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise ArgumentTypeError(
                    f"metrics row {index} must be a dict, got {type(row).__name__}"
                )
            values = {k: v for k, v in row.items() if k != BATCH_STEP_KEY}
            step = check_step(row.get(BATCH_STEP_KEY, index), f"row {index}")
            prepared.append(metric_row(values, step, f"row {index}"))
        self._write_metrics(handle.run_id, prepared)

    @guarded("log metrics")
    def log_metrics_async(
        self, metrics: Mapping[str, Any], step: int | None = None
    ) -> Coroutine[Any, Any, None]:
        """An awaitable that logs ``metrics`` from a worker thread, leaving the event loop free.

        The run and the values are resolved when this is called (errors raise here); the
        request is made when the result is awaited.
        """
        handle = self._require_run("log metrics")
        row = metric_row(metrics, check_step(step), "metrics")
        context = {**self.error_context(), "run_id": handle.run_id}
        written = asyncio.to_thread(self._write_metrics, handle.run_id, [row])
        return guarded_await(written, "log metrics", context)

    def _write_metrics(self, run_id: str, rows: list[dict[str, float]]) -> None:
        """One ``log_batch`` round-trip (per 1000 values) through the MLflow resource."""
        rows = [row for row in rows if len(row) > 1]  # a row holds its step and its metrics
        if rows:
            self.mlflow_client.log_metrics_batch(run_id, rows, step_key=STEP_KEY)

    @guarded("log an artifact")
    def log_artifact(self, local_path: str | Path) -> None:
        """Upload a file (under its name) or a folder (as a folder of that name) to the run."""
        handle = self._require_run("log an artifact")
        path = Path(local_path).expanduser()
        if not path.exists():
            raise PathNotFoundError(f"cannot log artifact: {path} does not exist")
        tracking = self._mlflow()
        if path.is_dir():
            tracking.log_artifacts(handle.run_id, str(path), artifact_path=path.resolve().name)
        else:
            tracking.log_artifact(handle.run_id, str(path))
        self._log("artifact %s logged to run %s", path, handle.run_id)


def _resolve_context_tags(tags: dict[str, str]) -> dict[str, str]:
    """Add what MLflow's fluent API would record (user, source script, its git commit)."""
    from mlflow.tracking.context.registry import resolve_tags

    return {str(k): str(v) for k, v in resolve_tags(tags).items()}
