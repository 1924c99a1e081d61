"""One home for all state: every store's default location derives from ``EFFICIENTAI_HOME``.

Layout (other tools and checks rely on it)::

    dagster/            DAGSTER_HOME
    mlflow/mlflow.db    MLflow backend store (SQLite)
    mlflow/artifacts/   MLflow artifact root
    data/               DVC data registry (git + DVC)
    dvc-remote/         default DVC remote
    bentoml/            BENTOML_HOME
    reports/            Evidently reports by partition (the default namespace's)
    reports/namespaces/<namespace>/   every other project namespace's reports
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from resources.locking import file_lock, write_atomically
from resources.mlflow.bootstrap import prepare_sqlite_store

HOME_ENV_VAR = "EFFICIENTAI_HOME"
DEFAULT_HOME_DIRNAME = ".efficientai"
# The namespace a home serves when EFFICIENTAI_PROJECT is unset; its reports keep the home's
# original place, so homes made before namespaces had folders of their own read as they were.
DEFAULT_NAMESPACE = "efficientai"
NAMESPACE_REPORTS_DIRNAME = "namespaces"

# A project namespace prefixes experiments, registered models and bentos, and names the project's
# folder in the data registry, so it is a plain name: never a path, never ``..``.
NAMESPACE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def namespace_problem(namespace: object, source: str = "the project namespace") -> str | None:
    """Why ``namespace`` may not be used, or None. The one validator of namespaces: the code
    location (``EFFICIENTAI_PROJECT``), every resource that takes one, and the client call it."""
    if isinstance(namespace, str) and NAMESPACE_PATTERN.fullmatch(namespace):
        return None
    return (
        f"{source} {namespace!r} must be 1-64 characters of lowercase letters, digits, "
        "'.', '_' or '-', starting with a letter or digit (a plain name, not a path)"
    )


def validate_namespace(namespace: object, source: str = "the project namespace") -> str:
    """``namespace`` when it is a plain name; a ``ValueError`` saying what one looks like if not."""
    problem = namespace_problem(namespace, source)
    if problem is not None:
        raise ValueError(problem)
    return str(namespace)


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

    def reports_for(self, namespace: str) -> Path:
        """The reports folder of ``namespace``: namespaces share the home but never a day's
        folder (``<reports>/<day>/`` for the default one, ``<reports>/namespaces/<ns>/<day>/``
        for any other), so two projects monitoring the same day keep both reports."""
        name = validate_namespace(namespace)
        if name == DEFAULT_NAMESPACE:
            return self.reports
        return self.reports / NAMESPACE_REPORTS_DIRNAME / name

    @property
    def dagster_yaml(self) -> Path:
        return self.dagster_home / "dagster.yaml"

    @property
    def lock_file(self) -> Path:
        """Held while the home's layout and stores are created (``ensure_layout``)."""
        return self.root / ".home.lock"

    @property
    def stores_ready_marker(self) -> Path:
        """Written once the embedded stores exist, so later opens skip creating them."""
        return self.root / ".stores-ready"

    def ensure_layout(self) -> None:
        """Create every folder, the Dagster instance config when missing (never overwritten once
        edited) and, the first time, every embedded store, created and migrated once under the
        home's lock before anything else opens them: the Dagster instance's storage (as
        ``dagster.yaml`` declares it) and the MLflow SQLite store (unless
        ``EFFICIENTAI_MLFLOW_TRACKING_URI`` names another). Any number of processes may open a
        fresh home at once; each finds the stores whole."""
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock_file):
            for folder in (
                self.dagster_home,
                self.mlflow_artifacts,
                self.data_registry,
                self.dvc_remote,
                self.bentoml_home,
                self.reports,
            ):
                folder.mkdir(parents=True, exist_ok=True)
            if not self.dagster_yaml.exists() or (
                self.dagster_yaml.read_text() in _EARLIER_DAGSTER_YAMLS
            ):
                write_atomically(self.dagster_yaml, DAGSTER_YAML)
            if not self.stores_ready_marker.exists():
                self._create_stores()
                write_atomically(self.stores_ready_marker, "")

    def _create_stores(self) -> None:
        import dagster as dg

        with dg.DagsterInstance.from_config(str(self.dagster_home)):
            pass
        configured = os.environ.get("EFFICIENTAI_MLFLOW_TRACKING_URI")
        prepare_sqlite_store(configured or self.mlflow_tracking_uri, str(self.mlflow_artifacts))


# The embedded Dagster instance: SQLite storage in DAGSTER_HOME; heavy MLX assets share pools whose
# default limit is 1 (op granularity). Run monitoring (in the daemon of `make dev`) frees the slots
# of ended runs and fails a run still STARTED after max_runtime_seconds, a run whose process died
# included; `resources.recovery` applies the same bound, and a liveness check of the run's process,
# before every launch: `make run` (through `resources.supervise`) and every run submitted to the
# queue (the UI's, schedules', sensors': its run coordinator).
# See docs/operations.md.
MAX_RUNTIME_SECONDS = 4 * 3600
DAGSTER_YAML = f"""\
run_coordinator:
  module: resources.recovery
  class: RecoveringRunCoordinator
concurrency:
  pools:
    granularity: op
    default_limit: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 60
  max_runtime_seconds: {MAX_RUNTIME_SECONDS}
telemetry:
  enabled: false
"""


# Earlier defaults, replaced when found unedited: a home made before the run-recovery bound.
_EARLIER_DAGSTER_YAMLS = (
    """\
concurrency:
  pools:
    granularity: op
    default_limit: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 60
telemetry:
  enabled: false
""",
)


def default_home() -> EfficientAIHome:
    return EfficientAIHome.from_env()


def namespace_reports(configured_dir: str, namespace: str) -> Path:
    """The reports folder of ``namespace``: a configured one (an ``EvidentlyResource``'s
    ``reports_dir``, set by whatever wired the resources for that namespace) is the namespace's
    own; empty means the folder of ``namespace`` in the home named by ``EFFICIENTAI_HOME``,
    resolved now (at run or tick time, not when the code location loads). The one rule for day
    folders and the retraining audit trail alike."""
    name = validate_namespace(namespace)
    if configured_dir:
        return Path(configured_dir).expanduser().resolve()
    return default_home().reports_for(name)


def main() -> None:
    """``python -m resources.home``: create the home and its stores (once, under the home's lock)
    and print the variables that point at it."""
    home = default_home()
    home.ensure_layout()
    print(f"export {HOME_ENV_VAR}={home.root}")
    print(f"export DAGSTER_HOME={home.dagster_home}")
    print(f"export BENTOML_HOME={home.bentoml_home}")
    print(f"export MLFLOW_TRACKING_URI={home.mlflow_tracking_uri}")


if __name__ == "__main__":
    main()
