"""The seed guide's three integration patterns, ready to use: a project tracker class, a decorator
and a context manager, each a thin layer over one ``MLOpsClient`` (no state of their own beyond
the client and the open run).

- ``ProjectTracker(namespace)``: ``start_training(config)`` opens a run named after the config's
  model; ``log_training_metrics(metrics, epoch)`` logs into it.
- ``@track_experiment(project_namespace, run_name)``: the function runs inside a run of the
  experiment named after it; the run ends FAILED if the function raises.
- ``with MLOpsContext(project_namespace, run_name) as client:``: a run of the ``training``
  experiment around the block, the client handed to it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from efficientai_assets.client.client import MLOpsClient
from efficientai_assets.client.errors import InvalidArgumentError, RunHandle

P = ParamSpec("P")
R = TypeVar("R")


class ProjectTracker:
    """Pattern 1: one project's tracking, as a class an existing project keeps around."""

    def __init__(
        self,
        project_namespace: str,
        experiment: str = "training",
        workspace_root: str | Path | None = None,
    ) -> None:
        self.client = MLOpsClient(
            project_namespace=project_namespace, workspace_root=workspace_root
        )
        self.experiment = experiment

    def start_training(self, config: Mapping[str, Any]) -> AbstractContextManager[RunHandle]:
        """A run ``train_<config['model']>`` in the tracker's experiment, with the config as
        params; use it as ``with tracker.start_training(config):``."""
        if not isinstance(config, Mapping) or "model" not in config:
            raise InvalidArgumentError("config must be a mapping with a 'model' entry")
        experiment_id = self.client.create_experiment(self.experiment)
        return _RunWithParams(
            self.client,
            self.client.start_run(run_name=f"train_{config['model']}", experiment_id=experiment_id),
            config,
        )

    def log_training_metrics(self, metrics: Mapping[str, float], epoch: int) -> None:
        self.client.log_metrics(metrics, step=epoch)


def track_experiment(
    project_namespace: str, run_name: str, workspace_root: str | Path | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Pattern 2: run the decorated function inside a run of the experiment named after it."""

    def decorator(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            client = MLOpsClient(project_namespace=project_namespace, workspace_root=workspace_root)
            experiment_id = client.create_experiment(func.__name__)
            with client.start_run(run_name=run_name, experiment_id=experiment_id):
                return func(*args, **kwargs)

        return wrapper

    return decorator


class MLOpsContext:
    """Pattern 3: ``with MLOpsContext("my-project", "run-001") as client:`` — a run around the
    block (FINISHED, or FAILED when the block raises), the client handed in."""

    def __init__(
        self,
        project_namespace: str,
        run_name: str,
        experiment: str = "training",
        workspace_root: str | Path | None = None,
    ) -> None:
        self.client = MLOpsClient(
            project_namespace=project_namespace, workspace_root=workspace_root
        )
        self.run_name = run_name
        self.experiment = experiment
        self.experiment_id: str | None = None
        self.run: RunHandle | None = None
        self._context: AbstractContextManager[RunHandle] | None = None

    def __enter__(self) -> MLOpsClient:
        self.experiment_id = self.client.create_experiment(self.experiment)
        self._context = self.client.start_run(
            run_name=self.run_name, experiment_id=self.experiment_id
        )
        self.run = self._context.__enter__()
        return self.client

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool | None:
        context, self._context = self._context, None
        return context.__exit__(kind, error, trace) if context is not None else None


class _RunWithParams(AbstractContextManager[RunHandle]):
    """A run context that logs ``params`` into the run as it opens."""

    def __init__(
        self, client: MLOpsClient, run: AbstractContextManager[RunHandle], params: Mapping[str, Any]
    ) -> None:
        self.client, self.run, self.params = client, run, params

    def __enter__(self) -> RunHandle:
        handle = self.run.__enter__()
        try:
            self.client.log_params(dict(self.params))
        except BaseException as error:
            self.run.__exit__(type(error), error, error.__traceback__)
            raise
        return handle

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool | None:
        return self.run.__exit__(kind, error, trace)
