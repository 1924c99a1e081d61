"""The seed guide's MLflow client: ``create_client(project_name=...)`` → ``create_experiment``,
``start_run`` (a context manager), ``log_params``, ``log_metrics``, ``log_artifact``.

It is the unified client's run-and-logging part alone (``runs.RunsMixin``) on the project's
``MlflowResource``: the same experiments (``<project>/<name>``), the same per-thread runs, the
same batched writes and errors. A run logged here is a run ``MLOpsClient`` and the assets see.
"""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

from efficientai_assets.client.guard import guarded
from efficientai_assets.client.runs import RunsMixin
from efficientai_assets.client.wiring import DEFAULT_NAMESPACE, check_namespace, home_for, wired

_IDS = itertools.count(1_000_000)  # apart from MLOpsClient's identities


class MLflowTrackingClient(RunsMixin):
    """Experiments, runs and logging of one project on its MLflow store."""

    @guarded("create the MLflow client")
    def __init__(
        self,
        project_name: str = DEFAULT_NAMESPACE,
        tracking_uri: str | None = None,
        workspace_root: str | Path | None = None,
        verbose: bool = False,
    ) -> None:
        self.project_namespace = check_namespace(project_name, "project_name")
        self.verbose = bool(verbose)
        self.home = home_for(workspace_root)
        self.mlflow_client = wired(self.project_namespace, self.home, tracking_uri)["mlflow"]
        self._identity = next(_IDS)
        self._lock = threading.Lock()
        self._tracking = None
        self._default_experiment_id = None

    def __repr__(self) -> str:
        return (
            f"MLflowTrackingClient(project_name={self.project_namespace!r}, "
            f"tracking={self.mlflow_client.display_uri()!r})"
        )


def create_client(
    project_name: str = DEFAULT_NAMESPACE,
    tracking_uri: str | None = None,
    workspace_root: str | Path | None = None,
    verbose: bool = False,
) -> MLflowTrackingClient:
    """The MLflow client of ``project_name`` on the home's store (or ``tracking_uri``)."""
    return MLflowTrackingClient(project_name, tracking_uri, workspace_root, verbose)
