"""One Python client for scripts and notebooks, on the very resources the assets use.

``MLOpsClient`` wires ``MlflowResource``, ``DvcResource``, ``BentoMLResource``, ``EvidentlyResource``
and ``HardwareResource`` exactly as the code location does (``resources.defaults.build_resources``
under one ``EFFICIENTAI_HOME``), so a run logged from a script lands in the same MLflow experiment,
DVC registry and bento store as a run from an asset.

Run state never goes through MLflow's fluent (process-global) active run: each ``start_run`` creates
the run with ``MlflowClient`` and an explicit id, and the client's current run lives in a context
variable keyed by the client. A thread (or an asyncio task) sees only the runs it started, so two
clients in two threads never log into or end each other's runs. Heavy libraries are imported
inside the methods that use them.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import numbers
import re
import shutil
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from efficientai_assets.names import TAG_GIT_SHA, TRAINING_EXPERIMENT
from resources.bentoml.store import BentoMLResource, ModelProvenance
from resources.defaults import build_resources
from resources.dvc.resource import DvcResource
from resources.evidently.resource import DriftSchema, EvidentlyResource, generate_drift_report
from resources.hardware.resource import HardwareResource
from resources.home import EfficientAIHome
from resources.mlflow.resource import MlflowResource, redact_secrets

if TYPE_CHECKING:
    import pandas as pd
    from dagster import ConfigurableResource
    from mlflow import MlflowClient

logger = logging.getLogger("efficientai.client")

# Namespaces become experiment prefixes, registry folders and (lowercased) bento names.
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Metric rows carry their step under a key no MLflow metric name can take.
_STEP_KEY = "\x00step"
# A metric row of ``log_metrics_batch`` may name its own step under this key.
BATCH_STEP_KEY = "step"
# Registry folder (inside the project's folder) of datasets versioned from outside the registry.
DATASETS_DIR = "datasets"

TAG_PROJECT = "efficientai.project"
TAG_SOURCE = "efficientai.source"
TAG_BENTO = "efficientai.bento_tag"
TAG_PARENT_RUN = "mlflow.parentRunId"

# (client identity, run) pairs of the runs open in the current thread or task, innermost last.
_OPEN_RUNS: contextvars.ContextVar[tuple[tuple[int, RunHandle], ...]] = contextvars.ContextVar(
    "efficientai_open_runs", default=()
)
_CLIENT_IDS = itertools.count(1)
_Resource = TypeVar("_Resource", bound="ConfigurableResource")


class MLOpsClientError(RuntimeError):
    """A client call cannot proceed; the message says why and what to do."""


class NoActiveRunError(MLOpsClientError):
    """A call that logs into a run was made outside ``start_run``."""


@dataclass(frozen=True)
class RunHandle:
    """The run a ``start_run`` block logs into."""

    run_id: str
    experiment_id: str
    run_name: str
    url: str
    parent_run_id: str | None = None


class DriftMonitor:
    """Drift of a current frame against a reference, through ``EvidentlyResource``'s settings and
    the project's drift function (explicit schema, validated frames, bounded sampling)."""

    def __init__(self, resource: EvidentlyResource) -> None:
        self.resource = resource
        self._reference: pd.DataFrame | None = None
        self._lock = threading.Lock()

    @property
    def reference(self) -> pd.DataFrame | None:
        return self._reference

    def set_reference(self, frame: pd.DataFrame) -> None:
        """Validate ``frame`` as a drift reference now (not at the first report), then keep it."""
        self.resource.check_frame(frame, self._schema(frame, "reference data"), "reference data")
        with self._lock:
            self._reference = frame

    def generate_drift_report(
        self,
        current: pd.DataFrame,
        reference: pd.DataFrame | None = None,
        output_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """``drift_detected``, ``drift_score`` (share of drifted columns) and per-column detail.

        ``reference`` defaults to the frame given to ``set_reference_data``. Every column except
        ``label`` is compared as numerical; with ``output_dir`` the HTML and JSON reports are
        written there too.
        """
        if reference is None:
            reference = self._reference
        if reference is None:
            raise MLOpsClientError(
                "no reference data: pass reference=... or call set_reference_data(df) first"
            )
        return generate_drift_report(
            current,
            reference,
            schema=self._schema(reference, "reference data"),
            output_dir=output_dir,
            settings=self.resource.settings(),
        )

    @staticmethod
    def _schema(frame: Any, role: str) -> DriftSchema:
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{role} must be a pandas DataFrame, got {type(frame).__name__}")
        return DriftSchema.for_features([str(c) for c in frame.columns])


class MLOpsClient:
    """Experiments, runs, datasets, bentos, drift and hardware readings for one project.

    Defaults come from ``EFFICIENTAI_HOME`` (or ``workspace_root``): the embedded MLflow store,
    DVC registry and remote, BentoML home and reports folder. ``project_namespace`` keeps
    projects apart: it prefixes experiment names, registry folders and bento names.
    """

    def __init__(
        self,
        project_namespace: str,
        mlflow_tracking_uri: str | None = None,
        dvc_remote_name: str = "storage",
        workspace_root: str | Path | None = None,
        verbose: bool = False,
    ) -> None:
        if not isinstance(project_namespace, str) or not _NAMESPACE.match(project_namespace):
            raise ValueError(
                f"project_namespace {project_namespace!r} must be 1-64 characters of lowercase "
                "letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        if not isinstance(dvc_remote_name, str) or not re.match(
            r"^[A-Za-z0-9_-]+$", dvc_remote_name
        ):
            raise ValueError(f"dvc_remote_name {dvc_remote_name!r} is not a valid DVC remote name")
        if mlflow_tracking_uri is not None and not (
            isinstance(mlflow_tracking_uri, str) and mlflow_tracking_uri.strip()
        ):
            raise ValueError("mlflow_tracking_uri, when given, must be a non-empty URI")
        self.project_namespace = project_namespace
        self.verbose = verbose
        self.home = (
            EfficientAIHome(Path(workspace_root).expanduser().resolve())
            if workspace_root is not None
            else EfficientAIHome.from_env()
        )
        self.home.ensure_layout()
        wired = build_resources(project_namespace, self.home)
        mlflow = wired["mlflow"]
        if mlflow_tracking_uri is not None:
            mlflow = mlflow.model_copy(update={"tracking_uri": mlflow_tracking_uri.strip()})
        dvc = wired["dvc"]
        if dvc_remote_name != dvc.remote_name:
            dvc = dvc.model_copy(update={"remote_name": dvc_remote_name})
        bentoml = wired.get("bentoml") or BentoMLResource(bentoml_home=str(self.home.bentoml_home))
        evidently = wired.get("evidently") or EvidentlyResource(reports_dir=str(self.home.reports))
        self.mlflow_client: MlflowResource = _resolve_env_vars(mlflow)
        self.dvc_client: DvcResource = _resolve_env_vars(dvc)
        self.bentoml_store: BentoMLResource = _resolve_env_vars(bentoml)
        self.silicon_monitor: HardwareResource = _resolve_env_vars(wired["hardware"])
        self.evidently_monitor = DriftMonitor(_resolve_env_vars(evidently))

        self._identity = next(_CLIENT_IDS)
        self._lock = threading.Lock()
        self._tracking: MlflowClient | None = None
        self._default_experiment_id: str | None = None
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

    def _log(self, message: str, *args: object) -> None:
        if self.verbose:
            logger.info(message, *args)

    def _mlflow(self) -> MlflowClient:
        with self._lock:
            if self._tracking is None:
                self._tracking = self.mlflow_client.client()
            return self._tracking

    # -- experiments and runs ------------------------------------------------------------------

    def create_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """The id of experiment ``<namespace>/<name>``, created on first use (idempotent)."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"experiment name must be a non-empty string, got {name!r}")
        experiment_id = self.mlflow_client.ensure_experiment(name.strip(), _string_tags(tags))
        self._log("experiment %s -> %s", self.mlflow_client.experiment_name(name), experiment_id)
        return experiment_id

    @property
    def active_run(self) -> RunHandle | None:
        """This client's innermost open run in the current thread or task, if any."""
        for identity, handle in reversed(_OPEN_RUNS.get()):
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
            raise MLOpsClientError(
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
            raise ValueError(f"run_name must be a non-empty string, got {run_name!r}")
        parent = self.active_run
        if experiment_id is None and parent is not None:
            experiment_id = parent.experiment_id
        resolved_experiment = self._experiment_for_run(experiment_id)
        run_tags = {
            TAG_PROJECT: self.project_namespace,
            TAG_SOURCE: "client",
            TAG_GIT_SHA: git_sha(),
            **({TAG_PARENT_RUN: parent.run_id} if parent is not None else {}),
            **_string_tags(tags),
        }
        tracking = self._mlflow()
        try:
            created = tracking.create_run(
                resolved_experiment, run_name=run_name.strip(), tags=_resolve_context_tags(run_tags)
            )
        except Exception as error:
            raise MLOpsClientError(
                f"could not create run {run_name!r} in experiment {resolved_experiment} at "
                f"{self.mlflow_client.display_uri()}: "
                + redact_secrets(str(error), self.mlflow_client.resolved_tracking_uri())
            ) from error
        handle = RunHandle(
            run_id=created.info.run_id,
            experiment_id=resolved_experiment,
            run_name=created.info.run_name,
            url=self.mlflow_client.run_url(resolved_experiment, created.info.run_id),
            parent_run_id=parent.run_id if parent is not None else None,
        )
        _OPEN_RUNS.set((*_OPEN_RUNS.get(), (self._identity, handle)))
        self._log("run %s started: %s", handle.run_name, handle.url)
        status = "FAILED"
        try:
            yield handle
            status = "FINISHED"
        except KeyboardInterrupt:
            status = "KILLED"
            raise
        finally:
            _OPEN_RUNS.set(tuple(e for e in _OPEN_RUNS.get() if e[1].run_id != handle.run_id))
            tracking.set_terminated(handle.run_id, status=status)
            self._log("run %s ended %s", handle.run_name, status)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (values are stored as strings) into the current run, in one request."""
        handle = self._require_run("log params")
        if not isinstance(params, Mapping):
            raise TypeError(f"params must be a mapping, got {type(params).__name__}")
        for key in params:
            _check_key(key, "param")
        if params:
            self.mlflow_client.log_params(handle.run_id, params)

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log numeric metrics at ``step`` (MLflow's step 0 when omitted), in one request."""
        handle = self._require_run("log metrics")
        self._write_metrics(handle.run_id, [_metric_row(metrics, _check_step(step), "metrics")])

    def log_metrics_batch(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Log many metric rows in one round-trip (MLflow's ``log_batch``, 1000 values a request).

        A row's ``step`` entry places it; a row without one is step ``i`` (its index in ``rows``).
        Every row is checked before anything is written.
        """
        handle = self._require_run("log a metrics batch")
        if isinstance(rows, Mapping | str | bytes) or not isinstance(rows, Sequence):
            raise TypeError(
                f"log_metrics_batch takes a list of metric dicts, got {type(rows).__name__}"
            )
        prepared = []
        for index, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise TypeError(f"metrics row {index} must be a dict, got {type(row).__name__}")
            values = {k: v for k, v in row.items() if k != BATCH_STEP_KEY}
            step = _check_step(row.get(BATCH_STEP_KEY, index), f"row {index}")
            prepared.append(_metric_row(values, step, f"row {index}"))
        self._write_metrics(handle.run_id, prepared)

    def log_metrics_async(
        self, metrics: Mapping[str, Any], step: int | None = None
    ) -> Coroutine[Any, Any, None]:
        """An awaitable that logs ``metrics`` from a worker thread, leaving the event loop free.

        The run and the values are resolved when this is called (errors raise here); the
        request is made when the result is awaited.
        """
        handle = self._require_run("log metrics")
        row = _metric_row(metrics, _check_step(step), "metrics")
        return asyncio.to_thread(self._write_metrics, handle.run_id, [row])

    def _write_metrics(self, run_id: str, rows: list[dict[str, float]]) -> None:
        """One ``log_batch`` round-trip (per 1000 values) through the MLflow resource."""
        rows = [row for row in rows if len(row) > 1]  # a row holds its step and its metrics
        if rows:
            self.mlflow_client.log_metrics_batch(run_id, rows, step_key=_STEP_KEY)

    def log_artifact(self, local_path: str | Path) -> None:
        """Upload a file (under its name) or a folder (as a folder of that name) to the run."""
        handle = self._require_run("log an artifact")
        path = Path(local_path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"cannot log artifact: {path} does not exist")
        tracking = self._mlflow()
        if path.is_dir():
            tracking.log_artifacts(handle.run_id, str(path), artifact_path=path.resolve().name)
        else:
            tracking.log_artifact(handle.run_id, str(path))
        self._log("artifact %s logged to run %s", path, handle.run_id)

    # -- data ----------------------------------------------------------------------------------

    def dataset_path(self, path: str | Path) -> str:
        """Where ``path`` is versioned, relative to the registry root: itself when it already lies
        in the registry, else ``<namespace>/datasets/<name>``."""
        source = Path(path).expanduser().resolve()
        root = self.dvc_client.root()
        if root.is_relative_to(source) and root != source:
            raise ValueError(f"cannot version {source}: it contains the data registry {root}")
        if source.is_relative_to(root):
            relative = source.relative_to(root)
            if not relative.parts:
                raise ValueError(f"{source} is the data registry itself, not a dataset in it")
            if relative.parts[0] in (".git", ".dvc"):
                raise ValueError(f"{source} is registry internals, not a dataset")
            return relative.as_posix()
        return self.dvc_client.project_path(DATASETS_DIR, source.name)

    def version_dataset(self, path: str | Path, push_to_remote: bool = False) -> bool:
        """Version a file or folder in the DVC data registry: copied under
        ``<namespace>/datasets/`` (unless already inside the registry), added to DVC and its
        pointer committed; pushed to the remote when ``push_to_remote``. True once versioned;
        errors raise (and leave no committed pointer).
        """
        source = Path(path).expanduser()
        if not source.exists():
            raise FileNotFoundError(f"cannot version dataset: {source} does not exist")
        relative = self.dataset_path(source)
        staged: Path | None = None
        if source.resolve() != self.dvc_client.root() / relative:
            # Copied into a private stage first; the registry takes it in under its lock.
            staged = self.dvc_client.stage() / source.name
            if source.is_dir():
                shutil.copytree(source.resolve(), staged)
            else:
                shutil.copy2(source.resolve(), staged)
        version = self.dvc_client.version(
            relative,
            f"Version {relative} from the {self.project_namespace} client",
            push=push_to_remote,
            staged=staged,
        )
        self._log(
            "dataset %s: md5 %s (%s), commit %s%s",
            relative,
            version.md5,
            "new version" if version.changed else "unchanged",
            version.commit[:10],
            ", pushed" if push_to_remote else ", not pushed",
        )
        return True

    # -- deployment ----------------------------------------------------------------------------

    def deploy_model(self, model_path: str | Path, model_name: str, version: str) -> dict[str, Any]:
        """Import an MLX model folder (``weights.safetensors`` + ``config.json``) into the BentoML
        store and build its bento ``<namespace>-<model_name>:v<version>-<digest>`` (an identical
        existing bento is reused). Returns ``status`` ("success" or "failed"), ``bento_tag`` and,
        on failure, ``error``. Arguments that cannot be right raise instead."""
        if not isinstance(model_name, str) or not model_name.strip():
            raise ValueError(f"model_name must be a non-empty string, got {model_name!r}")
        if isinstance(version, bool) or not isinstance(version, str | int) or not str(version):
            raise ValueError(f"version must be a non-empty string, got {version!r}")
        folder = Path(model_path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"cannot deploy: model folder {folder} does not exist")
        from efficientai_assets.models.mlp import CONFIG_FILENAME, WEIGHTS_FILENAME
        from efficientai_assets.provenance import git_sha

        missing = [
            name for name in (WEIGHTS_FILENAME, CONFIG_FILENAME) if not (folder / name).is_file()
        ]
        if missing:
            raise FileNotFoundError(f"cannot deploy {folder}: it lacks {', '.join(missing)}")
        registered = self.mlflow_client.model_name(model_name.strip())
        provenance = ModelProvenance(
            model_name=registered,
            model_version=str(version),
            data_md5="unknown",
            git_sha=git_sha(),
        )
        run = self.active_run
        labels = {TAG_SOURCE: "client", **({"mlflow_run_id": run.run_id} if run else {})}
        result: dict[str, Any] = {
            "model_name": registered,
            "version": str(version),
            "model_path": str(folder.resolve()),
        }
        try:
            imported = self.bentoml_store.import_model(
                folder.resolve(), provenance, metadata={"source_path": str(folder.resolve())}
            )
            bento = self.bentoml_store.build_bento(imported, provenance, extra_labels=labels)
        except Exception as error:  # a failed build is reported, not raised (see docstring)
            self._log("deploy of %s v%s failed: %s", registered, version, error)
            return {**result, "status": "failed", "bento_tag": None, "error": str(error)}
        if run is not None:
            self._mlflow().set_tag(run.run_id, TAG_BENTO, bento.tag)
        self._log("bento %s %s", bento.tag, "built" if bento.built else "reused")
        return {
            **result,
            "status": "success",
            "bento_tag": bento.tag,
            "model_tag": imported.tag,
            "bento_path": str(bento.path),
            "size_bytes": bento.size_bytes,
            "built": bento.built,
            "labels": dict(bento.labels),
        }

    # -- monitoring ----------------------------------------------------------------------------

    def set_reference_data(self, df: pd.DataFrame) -> None:
        """The frame ``evidently_monitor.generate_drift_report`` compares against by default."""
        self.evidently_monitor.set_reference(df)

    def collect_apple_silicon_metrics(self) -> dict[str, Any]:
        """The hardware snapshot in the guide's terms; "unknown" wherever a reading is absent."""
        snap = self.silicon_monitor.snapshot()
        gib = 2**30
        total_gb = round(snap.memory_total_bytes / gib, 2) if snap.memory_total_bytes else None
        power_mode = {True: "low_power", False: "normal", None: None}[snap.low_power_mode]
        readings: dict[str, Any] = {
            "chip_type": snap.chip,
            "unified_memory_gb": total_gb if snap.unified_memory else None,
            "memory_total_gb": total_gb,
            "mps_available": snap.metal_available,
            "mlx_gpu_available": snap.mlx_gpu_available,
            "ane_available": snap.neural_engine,
            "performance_cores": snap.performance_cores,
            "efficiency_cores": snap.efficiency_cores,
            "logical_cpus": snap.logical_cpus,
            "thermal_state": snap.thermal_state,
            "power_mode": power_mode,
            "on_battery": snap.on_battery,
            "memory_pressure": snap.memory_pressure,
            "platform": snap.platform,
            "machine": snap.machine,
            "source": snap.source,
            "taken_at": snap.taken_at,
            "notes": list(snap.notes),
        }
        return {key: "unknown" if value is None else value for key, value in readings.items()}


# -- helpers ---------------------------------------------------------------------------------------


def _resolve_env_vars(resource: _Resource) -> _Resource:
    """Dagster resolves ``EnvVar`` fields (credentials) only when it runs; a script reads them from
    the environment here. (Dagster's own initialisation would create a throw-away instance.)"""
    import dagster as dg

    updates = {
        name: value.get_value()
        for name in type(resource).model_fields
        if isinstance(value := getattr(resource, name), dg.EnvVar)
    }
    return resource.model_copy(update=updates) if updates else resource


def _check_key(key: object, kind: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"{kind} names must be non-empty strings, got {key!r}")
    return key


def _check_step(step: object, where: str = "step") -> int:
    if step is None:
        return 0
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"{where}: step must be an integer, got {step!r}")
    return int(step)


def _metric_value(key: str, value: object, where: str) -> float:
    """A float for MLflow; numpy/MLX scalars and 0-d arrays are accepted, bools and text are not."""
    type_name = type(value).__name__
    if isinstance(value, bool) or type_name == "bool_" or isinstance(value, str | bytes):
        raise TypeError(f"metric {key!r} ({where}) is not a number: {value!r}")
    if isinstance(value, numbers.Real):
        return float(value)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as error:
        raise TypeError(f"metric {key!r} ({where}) is not a number: {value!r}") from error


def _metric_row(metrics: object, step: int, where: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(
            f"{where} must be a dict of metric name -> number, got {type(metrics).__name__}"
        )
    row = {_check_key(k, "metric"): _metric_value(k, v, where) for k, v in metrics.items()}
    return {**row, _STEP_KEY: step}


def _string_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a mapping of name -> value, got {type(tags).__name__}")
    return {_check_key(key, "tag"): str(value) for key, value in tags.items()}


def _resolve_context_tags(tags: dict[str, str]) -> dict[str, str]:
    """Add what MLflow's fluent API would record (user, source script, its git commit)."""
    from mlflow.tracking.context.registry import resolve_tags

    return {str(k): str(v) for k, v in resolve_tags(tags).items()}


__all__ = [
    "BATCH_STEP_KEY",
    "DriftMonitor",
    "MLOpsClient",
    "MLOpsClientError",
    "NoActiveRunError",
    "RunHandle",
]
