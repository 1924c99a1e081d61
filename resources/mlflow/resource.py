"""MLflow tracking and registry as a Dagster resource, with explicit run ids.

dagster-mlflow's ``mlflow_tracking`` opens one run per Dagster run and leaves it RUNNING unless a hook
ends it; here every asset materialization owns exactly one run, created and ended through
``MlflowClient`` so its final status is always FINISHED or FAILED. MLflow is imported lazily.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import dagster as dg
from pydantic import ConfigDict, Field, field_validator

from resources.home import default_home, validate_namespace
from resources.mlflow.bootstrap import prepare_sqlite_store

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# Credential variables this process exported from a resource (not ones the user set).
_EXPORTED_CREDENTIALS: set[str] = set()

# MLflow's log_batch accepts at most 1000 metrics per request.
_MAX_METRICS_PER_BATCH = 1000


# Where the credentials of a tracking URI belong instead of inside it.
USERNAME_ENV = "EFFICIENTAI_MLFLOW_USERNAME"
PASSWORD_ENV = "EFFICIENTAI_MLFLOW_PASSWORD"


class MlflowRunFailed(RuntimeError):
    """Raised when a run cannot be created; the message names the tracking URI."""


def credentials_in_uri_error(uri: str, source: str = "the MLflow tracking URI") -> str | None:
    """Why ``uri`` may not be used, or None. A resource's configuration is stored in every run's
    snapshot, so a URI must not carry a password (any scheme) nor, for a tracking server, a user
    (often a token). The message shows the URI with its credentials masked."""
    parts = urlsplit(uri)
    server = parts.scheme in ("http", "https")
    if parts.password is None and not (server and parts.username):
        return None
    masked = urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
    where = (
        f"{USERNAME_ENV} and {PASSWORD_ENV}"
        if server
        else "the database driver's own variables (PGPASSWORD or ~/.pgpass for PostgreSQL)"
    )
    return (
        f"{source} carries credentials ({masked}); they would be stored in Dagster's run records. "
        f"Give the URI without them and set {where} instead."
    )


class MlflowResource(dg.ConfigurableResource):
    """Where runs, models and aliases live. Defaults: SQLite + local artifacts under the home."""

    # A refused tracking URI must not reappear in the validation error's text.
    model_config = ConfigDict(hide_input_in_errors=True)

    tracking_uri: str = Field(
        default="",
        description="MLflow tracking URI; empty means sqlite:///<EFFICIENTAI_HOME>/mlflow/mlflow.db.",
    )
    artifact_root: str = Field(
        default="",
        description="Artifact location for new experiments; empty means <home>/mlflow/artifacts "
        "for a database backend (SQLite, PostgreSQL); a tracking server decides its own.",
    )
    project_namespace: str = Field(
        default="efficientai",
        description="Prefix of experiment and registered-model names, keeping projects apart.",
    )
    ui_url: str = Field(
        default="http://127.0.0.1:5000",
        description="Where the MLflow UI for this store is served, for run links in metadata.",
    )
    username: str | None = Field(default=None, description="Basic-auth user (set via EnvVar).")
    password: str | None = Field(default=None, description="Basic-auth password (set via EnvVar).")
    http_max_retries: int = Field(
        default=2, description="Retries against a tracking server before failing (MLflow's: 7)."
    )
    http_timeout_seconds: int = Field(default=30, description="Per-request timeout.")

    @field_validator("tracking_uri")
    @classmethod
    def _no_credentials_in_uri(cls, uri: str) -> str:
        problem = credentials_in_uri_error(uri)
        if problem is not None:
            raise ValueError(problem)
        return uri

    @field_validator("project_namespace")
    @classmethod
    def _plain_namespace(cls, namespace: str) -> str:
        return validate_namespace(namespace)

    # -- configuration -------------------------------------------------------------------

    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or default_home().mlflow_tracking_uri

    def display_uri(self) -> str:
        """The tracking URI for messages and logs: any password in it replaced by ``***``."""
        return redact_uri(self.resolved_tracking_uri())

    def resolved_artifact_root(self) -> str | None:
        """A tracking server chooses its own artifact store; a database backend gets the home's."""
        uri = self.resolved_tracking_uri()
        if uri.startswith(("http://", "https://", "databricks")):
            return self.artifact_root or None
        root = self.artifact_root or str(default_home().mlflow_artifacts)
        return root if "://" in root else f"file://{os.path.abspath(root)}"

    def _export_environment(self) -> None:
        """MLflow reads credentials and retry policy only from the process environment."""
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(self.http_max_retries)
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(self.http_timeout_seconds)
        os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
        # Logged models declare their own small requirements; without these MLflow would copy the
        # whole project's uv.lock and pyproject.toml (found in the working directory) into every
        # model as its environment.
        os.environ.setdefault("MLFLOW_UV_AUTO_DETECT", "false")
        os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
        for variable, value in (
            ("MLFLOW_TRACKING_USERNAME", self.username),
            ("MLFLOW_TRACKING_PASSWORD", self.password),
        ):
            # Outside Dagster an EnvVar field is still the variable's name: resolve it here.
            resolved = value.get_value() if isinstance(value, dg.EnvVar) else value
            if resolved is not None:
                os.environ[variable] = resolved
                _EXPORTED_CREDENTIALS.add(variable)
            elif variable in _EXPORTED_CREDENTIALS:
                # Set by another resource in this process, for another server: never reuse it.
                os.environ.pop(variable, None)
                _EXPORTED_CREDENTIALS.discard(variable)

    def _ensure_local_store(self) -> None:
        """A SQLite store is created and migrated once, under a file lock (``bootstrap``)."""
        prepare_sqlite_store(self.resolved_tracking_uri(), self.resolved_artifact_root())

    def client(self) -> MlflowClient:
        """An ``MlflowClient`` bound to this store (and the fluent API pointed at it too)."""
        import mlflow

        self._export_environment()
        self._ensure_local_store()
        uri = self.resolved_tracking_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)

    # -- naming ----------------------------------------------------------------------------

    def experiment_name(self, name: str) -> str:
        return f"{self.project_namespace}/{name}"

    def model_name(self, name: str) -> str:
        return f"{self.project_namespace}-{name}"

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_version_url(self, model_name: str, version: str) -> str:
        return f"{self.ui_url.rstrip('/')}/#/models/{quote(model_name, safe='')}/versions/{version}"

    # -- experiments and runs -------------------------------------------------------------

    def ensure_experiment(self, name: str, tags: Mapping[str, str] | None = None) -> str:
        """The id of the namespaced experiment, created on first use (idempotent, race-safe)."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        full_name = self.experiment_name(name)
        existing = client.get_experiment_by_name(full_name)
        if existing is not None:
            if existing.lifecycle_stage == "deleted":
                client.restore_experiment(existing.experiment_id)
            return str(existing.experiment_id)
        try:
            return str(
                client.create_experiment(
                    full_name,
                    artifact_location=self.resolved_artifact_root_for(full_name),
                    tags=dict(tags or {}),
                )
            )
        except MlflowException:
            again = client.get_experiment_by_name(full_name)
            if again is None:
                raise
            return str(again.experiment_id)

    def resolved_artifact_root_for(self, experiment_name: str) -> str | None:
        root = self.resolved_artifact_root()
        if root is None:
            return None
        return f"{root.rstrip('/')}/{quote(experiment_name, safe='')}"

    @contextmanager
    def run(
        self,
        experiment: str,
        run_name: str,
        tags: Mapping[str, str] | None = None,
    ) -> Iterator[str]:
        """Create a run, yield its id, end it FINISHED — or FAILED if the body raises.

        The run is also made the fluent API's active run, so ``mlflow.pyfunc.log_model`` inside
        the body logs into it; it is never left RUNNING.
        """
        import mlflow

        from resources.mlflow.unfinished import (
            end_earlier_attempts,
            end_unfinished_runs,
            remember_unfinished_run,
        )

        client = self.client()
        try:
            end_unfinished_runs(client)
            experiment_id = self.ensure_experiment(experiment)
            end_earlier_attempts(client, experiment_id, tags or {})
            created = client.create_run(experiment_id, run_name=run_name, tags=dict(tags or {}))
        except Exception as error:  # the store is unreachable or refuses the run
            raise MlflowRunFailed(self.explain(error, "could not create an MLflow run")) from error
        run_id = created.info.run_id
        status = "FAILED"
        try:
            with mlflow.start_run(run_id=run_id, nested=mlflow.active_run() is not None):
                yield run_id
                status = "FINISHED"
        finally:
            try:
                client.set_terminated(run_id, status=status)
            except Exception as error:
                # The server went away mid-run: remember the run, end it FAILED at the next start.
                remember_unfinished_run(self.resolved_tracking_uri(), run_id)
                if status == "FINISHED":
                    raise MlflowRunFailed(
                        self.explain(error, f"could not end run {run_id}")
                    ) from error
                # else the body's own error propagates

    def explain(self, error: BaseException, what: str) -> str:
        """``what`` failed, in words: a refused login names the user and the URI (never the
        password), a refused write the missing permission; anything else MLflow's own error."""
        detail = redact_secrets(str(error), self.resolved_tracking_uri())
        code = str(getattr(error, "error_code", ""))
        user = os.environ.get("MLFLOW_TRACKING_USERNAME") or "(none)"
        if code == "UNAUTHENTICATED" or " 401 " in detail:
            return (
                f"{what}: the MLflow server at {self.display_uri()} refused user {user!r} "
                "(HTTP 401: missing or wrong credentials); check EFFICIENTAI_MLFLOW_USERNAME and "
                "EFFICIENTAI_MLFLOW_PASSWORD"
            )
        if code == "PERMISSION_DENIED" or " 403 " in detail:
            return (
                f"{what}: user {user!r} may not write to the MLflow server at "
                f"{self.display_uri()} (HTTP 403: its permission is READ); ask an MLflow admin "
                "for EDIT on the experiment or model, or use the pipeline's user"
            )
        return f"{what} at {self.display_uri()}: {detail}"

    def log_metrics_batch(
        self,
        run_id: str,
        rows: Sequence[Mapping[str, float]],
        step_key: str | None = None,
    ) -> int:
        """Log many metric rows in as few round-trips as MLflow allows; returns values logged.

        Each row is one step (``row[step_key]`` or its index). NaN and infinite values are logged
        as MLflow stores them (the quality check refuses to promote them).
        """
        from mlflow.entities import Metric
        from mlflow.utils.time import get_current_time_millis

        now = get_current_time_millis()
        metrics: list[Metric] = []
        for index, row in enumerate(rows):
            step = int(row[step_key]) if step_key is not None else index
            for key, value in row.items():
                if key == step_key:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise TypeError(f"metric {key!r} at step {step} is not a number: {value!r}")
                metrics.append(Metric(key=key, value=float(value), timestamp=now, step=step))
        client = self.client()
        for start in range(0, len(metrics), _MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + _MAX_METRICS_PER_BATCH])
        return len(metrics)

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set many run tags in one request."""
        from mlflow.entities import RunTag

        self.client().log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        from mlflow.entities import Param

        self.client().log_batch(
            run_id, params=[Param(key, str(value)) for key, value in params.items()]
        )

    # -- registry -------------------------------------------------------------------------

    def find_model_version(self, model_name: str, tags: Mapping[str, str]) -> ModelVersion | None:
        """The newest READY version of ``model_name`` carrying every tag in ``tags``. A registry
        error propagates: it must not pass for "no such version" (and cause a needless retrain)."""
        versions = self.client().search_model_versions(f"name = '{model_name}'")
        matching = [
            version
            for version in versions
            if version.status == "READY"
            and all(version.tags.get(key) == value for key, value in tags.items())
        ]
        return max(matching, key=lambda v: int(v.version), default=None)

    def version_for_alias(self, model_name: str, alias: str) -> ModelVersion | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(model_name, alias)
        except MlflowException:
            return None


def redact_uri(uri: str) -> str:
    """``scheme://user:***@host/...``: URIs may embed a password (``postgresql://u:pw@h/db``)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def redact_secrets(text: str, uri: str) -> str:
    """``text`` (an error from MLflow or a driver) with the URI's password replaced by ``***``."""
    password = urlsplit(uri).password
    return text.replace(password, "***") if password else text
