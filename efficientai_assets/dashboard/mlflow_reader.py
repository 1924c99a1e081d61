"""Read-only views of the MLflow store: namespaces, registered versions with their tags and
aliases, runs page by page with their per-epoch curves, and run metrics by id.

Every call goes through ``MlflowClient`` against the tracking URI the pipeline uses. A SQLite
store that does not exist is reported down, never created; a server is asked with no retries
and a short timeout, so a dead one costs seconds, not minutes. Failures become ``StoreDown``
with the URI's password redacted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from efficientai_assets.dashboard.cache import StoreDown
from efficientai_assets.names import (
    MODEL_NAME,
    TAG_BENTO,
    TAG_DAGSTER_RUN_ID,
    TAG_DATA_MD5,
    TAG_GIT_SHA,
    TAG_PROMOTED_BY,
    TAG_PROMOTION_REASON,
    TAG_QUALITY,
    TAG_ROLLED_BACK,
    TAG_VAL_ACCURACY,
    TAG_VAL_LOSS,
)
from efficientai_assets.operations.stores import (
    MLFLOW_PASSWORD_ENV,
    MLFLOW_USERNAME_ENV,
    StoreLocations,
    redacted,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

MODEL_SUFFIX = f"-{MODEL_NAME}"
CURVE_METRICS = ("val_accuracy", "train_loss", "val_loss", "samples_per_second")
TAG_DEPLOYMENT_ROLE = "efficientai.deployment.role"


@dataclass(frozen=True)
class VersionView:
    """One registered version as the dashboard shows it."""

    version: str
    aliases: tuple[str, ...]
    status: str
    created_ms: int
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def val_accuracy(self) -> float | None:
        return _float(self.tags.get(TAG_VAL_ACCURACY))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "aliases": list(self.aliases),
            "status": self.status,
            "created_ms": self.created_ms,
            "run_id": self.run_id,
            "quality": self.tags.get(TAG_QUALITY, ""),
            "val_accuracy": self.val_accuracy,
            "val_loss": _float(self.tags.get(TAG_VAL_LOSS)),
            "data_md5": self.tags.get(TAG_DATA_MD5, ""),
            "git_sha": self.tags.get(TAG_GIT_SHA, ""),
            "dagster_run_id": self.tags.get(TAG_DAGSTER_RUN_ID, ""),
            "bento_tag": self.tags.get(TAG_BENTO, ""),
            "rolled_back": self.tags.get(TAG_ROLLED_BACK, ""),
            "promoted_by": self.tags.get(TAG_PROMOTED_BY, ""),
            "promotion_reason": self.tags.get(TAG_PROMOTION_REASON, ""),
            "deployment_role": self.tags.get(TAG_DEPLOYMENT_ROLE, ""),
        }


@dataclass(frozen=True)
class RegistryView:
    """A namespace's registered model: its versions (newest first) and aliases."""

    model_name: str
    exists: bool
    aliases: dict[str, str]
    versions: tuple[VersionView, ...]

    def version(self, number: str | None) -> VersionView | None:
        return next((v for v in self.versions if v.version == number), None)

    def by_alias(self, alias: str) -> VersionView | None:
        return self.version(self.aliases.get(alias))


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


class MlflowReader:
    """The MLflow store of one home (or the team's server), read only."""

    def __init__(self, stores: StoreLocations, timeout_seconds: float = 5.0) -> None:
        self.stores = stores
        self.timeout_seconds = timeout_seconds

    def _down(self, error: Exception) -> StoreDown:
        uri = self.stores.tracking_uri
        text = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        from urllib.parse import urlsplit

        password = urlsplit(uri).password
        if password:
            text = text.replace(password, "***")
        return StoreDown("mlflow", f"MLflow at {redacted(uri)} did not answer: {text}")

    def client(self) -> MlflowClient:
        """A client on the tracking URI; a missing SQLite store is down (never created)."""
        path = self.stores.mlflow_sqlite_path
        if path is not None and not path.is_file():
            raise StoreDown("mlflow", f"no MLflow store at {path}: run `make run` first")
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(int(self.timeout_seconds))
        user, password = os.environ.get(MLFLOW_USERNAME_ENV), os.environ.get(MLFLOW_PASSWORD_ENV)
        if user and password:
            os.environ["MLFLOW_TRACKING_USERNAME"] = user
            os.environ["MLFLOW_TRACKING_PASSWORD"] = password
        try:
            from mlflow import MlflowClient

            uri = self.stores.tracking_uri
            return MlflowClient(tracking_uri=uri, registry_uri=uri)
        except Exception as error:
            raise self._down(error) from error

    def namespaces(self) -> list[str]:
        """Namespaces with an experiment (``<ns>/...``) or a registered model (``<ns>-...``)."""
        client = self.client()
        try:
            experiments = client.search_experiments(max_results=1000)
            models = client.search_registered_models(max_results=1000)
        except Exception as error:
            raise self._down(error) from error
        found = {e.name.split("/", 1)[0] for e in experiments if "/" in e.name}
        found |= {
            m.name.removesuffix(MODEL_SUFFIX) for m in models if m.name.endswith(MODEL_SUFFIX)
        }
        return sorted(found)

    def registry(self, namespace: str, limit: int = 200) -> RegistryView:
        """The namespace's model: its newest ``limit`` versions and its aliases."""
        from mlflow.exceptions import MlflowException

        name = f"{namespace}{MODEL_SUFFIX}"
        client = self.client()
        try:
            try:
                model = client.get_registered_model(name)
            except MlflowException as error:
                if "RESOURCE_DOES_NOT_EXIST" in str(getattr(error, "error_code", "")):
                    return RegistryView(name, False, {}, ())
                raise
            found = client.search_model_versions(
                f"name = '{name}'", max_results=limit, order_by=["version_number DESC"]
            )
        except Exception as error:
            raise self._down(error) from error
        aliases = {str(alias): str(version) for alias, version in (model.aliases or {}).items()}
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        versions = tuple(
            VersionView(
                version=str(v.version),
                aliases=tuple(sorted(by_version.get(str(v.version), []))),
                status=str(v.status),
                created_ms=int(v.creation_timestamp or 0),
                run_id=str(v.run_id or ""),
                tags={str(k): str(val) for k, val in (v.tags or {}).items()},
            )
            for v in sorted(found, key=lambda v: int(v.version), reverse=True)
        )
        return RegistryView(name, True, aliases, versions)

    def experiment_ids(self, namespace: str) -> dict[str, str]:
        """``id → name`` of the namespace's experiments."""
        client = self.client()
        try:
            experiments = client.search_experiments(
                filter_string=f"name LIKE '{namespace}/%'", max_results=1000
            )
        except Exception as error:
            raise self._down(error) from error
        return {str(e.experiment_id): str(e.name) for e in experiments}

    def runs_page(
        self, namespace: str, page_token: str | None, page_size: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the namespace's runs, newest first, with the next page's token."""
        experiments = self.experiment_ids(namespace)
        if not experiments:
            return [], None
        client = self.client()
        try:
            page = client.search_runs(
                list(experiments),
                max_results=page_size,
                order_by=["attributes.start_time DESC"],
                page_token=page_token or None,
            )
        except Exception as error:
            raise self._down(error) from error
        runs = [
            {
                "run_id": run.info.run_id,
                "name": run.info.run_name or "",
                "experiment_id": str(run.info.experiment_id),
                "experiment": experiments.get(str(run.info.experiment_id), ""),
                "status": run.info.status,
                "start_ms": run.info.start_time,
                "end_ms": run.info.end_time,
                "metrics": dict(run.data.metrics),
                "params": dict(run.data.params),
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            }
            for run in page
        ]
        token = page.token.decode() if isinstance(page.token, bytes) else page.token
        return runs, token or None

    def curves(self, run_id: str, keys: tuple[str, ...] = CURVE_METRICS) -> dict[str, Any]:
        """``{metric: {"steps": [...], "values": [...]}}`` for the per-epoch metrics of a run."""
        client = self.client()
        out: dict[str, Any] = {}
        try:
            for key in keys:
                history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
                if history:
                    out[key] = {
                        "steps": [m.step for m in history],
                        "values": [m.value for m in history],
                    }
        except Exception as error:
            raise self._down(error) from error
        return out

    def run_metrics(self, namespace: str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``run id → {metrics, tags}`` for the given runs of the namespace (one search)."""
        experiments = self.experiment_ids(namespace)
        wanted = sorted({r for r in run_ids if r and r.isalnum()})
        if not experiments or not wanted:
            return {}
        quoted = ", ".join(f"'{r}'" for r in wanted)
        client = self.client()
        try:
            runs = client.search_runs(
                list(experiments),
                filter_string=f"attributes.run_id IN ({quoted})",
                max_results=len(wanted),
            )
        except Exception as error:
            raise self._down(error) from error
        return {
            run.info.run_id: {"metrics": dict(run.data.metrics), "tags": dict(run.data.tags)}
            for run in runs
        }
