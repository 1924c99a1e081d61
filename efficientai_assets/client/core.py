"""What every part of ``MLOpsClient`` shares: the wired resources, the verbose log, one lazily
made ``MlflowClient``, and which of this client's runs are open in the current thread or task.

Run state never goes through MLflow's fluent (process-global) active run: the open runs live in a
context variable keyed by the client, so a thread (or an asyncio task) sees only the runs it
started, and two clients in two threads never log into or end each other's runs.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import TYPE_CHECKING, Any

from efficientai_assets.client.drift import DriftMonitor
from efficientai_assets.client.dvc_client import DVCClient
from efficientai_assets.client.errors import NoActiveRunError, RunHandle
from resources.bentoml.store import BentoMLResource
from resources.hardware.resource import HardwareResource
from resources.home import EfficientAIHome
from resources.mlflow.resource import MlflowResource

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger("efficientai.client")

# (client identity, run) pairs of the runs open in the current thread or task, innermost last.
OPEN_RUNS: contextvars.ContextVar[tuple[tuple[int, RunHandle], ...]] = contextvars.ContextVar(
    "efficientai_open_runs", default=()
)


class ClientCore:
    """The state ``MLOpsClient.__init__`` sets up; the client's parts (runs, datasets, deployment,
    monitoring) are mixins on this base and read it only."""

    project_namespace: str
    verbose: bool
    home: EfficientAIHome
    mlflow_client: MlflowResource
    dvc_client: DVCClient
    bentoml_store: BentoMLResource
    silicon_monitor: HardwareResource
    evidently_monitor: DriftMonitor
    _identity: int
    _lock: threading.Lock
    _tracking: MlflowClient | None
    _default_experiment_id: str | None

    def error_context(self) -> dict[str, Any]:
        """What an error message may name: the tracking URI (password hidden) and current run."""
        run = self.active_run
        return {
            "uri": self.mlflow_client.resolved_tracking_uri(),
            "display_uri": self.mlflow_client.display_uri(),
            "run_id": run.run_id if run is not None else None,
            "secrets": (self.mlflow_client.password,),
        }

    def _log(self, message: str, *args: object) -> None:
        if self.verbose:
            logger.info(message, *args)

    def _mlflow(self) -> MlflowClient:
        with self._lock:
            if self._tracking is None:
                self._tracking = self.mlflow_client.client()
            return self._tracking

    @property
    def active_run(self) -> RunHandle | None:
        """This client's innermost open run in the current thread or task, if any."""
        for identity, handle in reversed(OPEN_RUNS.get()):
            if identity == self._identity:
                return handle
        return None

    def _require_run(self, action: str) -> RunHandle:
        handle = self.active_run
        if handle is None:
            raise NoActiveRunError(
                f"cannot {action}: no active run for project {self.project_namespace!r} in this "
                "thread; call it inside `with client.start_run(...)`"
            )
        return handle
