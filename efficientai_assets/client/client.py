"""One Python client for scripts and notebooks, on the very resources the assets use.

``MLOpsClient`` wires ``MlflowResource``, ``DvcResource``, ``BentoMLResource``, ``EvidentlyResource``
and ``HardwareResource`` exactly as the code location does (``resources.defaults.build_resources``
under one ``EFFICIENTAI_HOME``), so a run logged from a script lands in the same MLflow experiment,
DVC registry and bento store as a run from an asset.

The client is assembled from one mixin per job: runs and logging (``runs.py``), datasets
(``datasets.py``), deployment (``deployment.py``), monitoring (``monitoring.py``, ``drift.py``) and
hyperparameter sweeps (``sweeps.py``, the project's ``training_sweep`` job),
on the shared state of ``core.py``; ``client.dvc_client`` is the guide's DVC client
(``dvc_client.py``) and ``client.evidently_monitor`` its drift monitor. Every error it raises is an
``MLOpsClientError`` (``errors.py``). Heavy libraries are imported inside the methods that use them.
"""

from __future__ import annotations

import itertools
import logging
import threading
from pathlib import Path

from efficientai_assets.client.core import logger
from efficientai_assets.client.datasets import DatasetsMixin
from efficientai_assets.client.deployment import DeploymentMixin
from efficientai_assets.client.drift import DriftMonitor
from efficientai_assets.client.dvc_client import dvc_client_for
from efficientai_assets.client.guard import guarded
from efficientai_assets.client.monitoring import MonitoringMixin
from efficientai_assets.client.runs import RunsMixin
from efficientai_assets.client.sweeps import SweepsMixin
from efficientai_assets.client.wiring import check_namespace, home_for, wired

_CLIENT_IDS = itertools.count(1)


class MLOpsClient(RunsMixin, DatasetsMixin, DeploymentMixin, MonitoringMixin, SweepsMixin):
    """Experiments, runs, datasets, bentos, drift and hardware readings for one project.

    Defaults come from ``EFFICIENTAI_HOME`` (or ``workspace_root``): the embedded MLflow store,
    DVC registry and remote, BentoML home and reports folder. ``project_namespace`` keeps
    projects apart: it prefixes experiment names, registry folders and bento names.
    """

    @guarded("create the client")
    def __init__(
        self,
        project_namespace: str,
        mlflow_tracking_uri: str | None = None,
        dvc_remote_name: str = "storage",
        workspace_root: str | Path | None = None,
        verbose: bool = False,
    ) -> None:
        self.project_namespace = check_namespace(project_namespace)
        self.verbose = bool(verbose)
        self.home = home_for(workspace_root)
        resources = wired(project_namespace, self.home, mlflow_tracking_uri, dvc_remote_name)
        self.mlflow_client = resources["mlflow"]
        self.dvc_client = dvc_client_for(resources["dvc"])
        self.bentoml_store = resources["bentoml"]
        self.silicon_monitor = resources["hardware"]
        self.evidently_monitor = DriftMonitor(resources["evidently"])

        self._identity = next(_CLIENT_IDS)
        self._lock = threading.Lock()
        self._tracking = None
        self._default_experiment_id = None
        if verbose and not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
            logger.addHandler(handler)
        if verbose:
            logger.setLevel(logging.INFO)
        self._log(
            "project %s: home %s, tracking %s",
            project_namespace,
            self.home.root,
            self.mlflow_client.display_uri(),
        )

    def __repr__(self) -> str:
        return f"MLOpsClient(project_namespace={self.project_namespace!r}, home={str(self.home.root)!r})"
