"""One home for all state: every store's default location derives from ``EFFICIENTAI_HOME``.

Layout (other tools and checks rely on it)::

    dagster/            DAGSTER_HOME
    mlflow/mlflow.db    MLflow backend store (SQLite)
    mlflow/artifacts/   MLflow artifact root
    data/               DVC data registry (git + DVC)
    dvc-remote/         default DVC remote
    bentoml/            BENTOML_HOME
    reports/            Evidently reports by partition
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV_VAR = "EFFICIENTAI_HOME"
DEFAULT_HOME_DIRNAME = ".efficientai"


@dataclass(frozen=True)
class EfficientAIHome:
    """The paths of every embedded store under one root folder."""

    root: Path

    @classmethod
    def from_env(cls) -> EfficientAIHome:
        """The home named by ``EFFICIENTAI_HOME``, else ``.efficientai/`` in the working directory."""
        configured = os.environ.get(HOME_ENV_VAR)
        root = Path(configured) if configured else Path.cwd() / DEFAULT_HOME_DIRNAME
        return cls(root.expanduser().resolve())

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        return self.mlflow_dir / "mlflow.db"

    @property
    def mlflow_tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    @property
    def mlflow_artifacts(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def data_registry(self) -> Path:
        return self.root / "data"

    @property
    def dvc_remote(self) -> Path:
        return self.root / "dvc-remote"

    @property
    def bentoml_home(self) -> Path:
        return self.root / "bentoml"

    @property
    def reports(self) -> Path:
        return self.root / "reports"


def default_home() -> EfficientAIHome:
    return EfficientAIHome.from_env()
