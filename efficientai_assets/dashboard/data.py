"""Everything a page reads, cached for a few seconds, and which project namespace each Dagster
event belongs to.

Namespaces share one Dagster instance and the same asset keys, so an event's namespace is found
from what it carries: the registered model name in its metadata (candidate, bento, deployment),
else the namespace of another event of the same run, else — for drift reports, which name only
the champion version and its data md5 — the namespace whose registry holds that version with
that md5. An event none of these places is shown as unattributed, never guessed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, TypeVar

from efficientai_assets.dashboard.cache import StoreDown, TTLCache
from efficientai_assets.dashboard.dagster_reader import CheckView, DagsterReader, EventView, RunView
from efficientai_assets.dashboard.files_reader import FilesReader
from efficientai_assets.dashboard.mlflow_reader import MODEL_SUFFIX, MlflowReader, RegistryView
from efficientai_assets.dashboard.settings import DashboardSettings
from efficientai_assets.names import (
    AUDIT_ASSET,
    BENTO_ASSET,
    CANDIDATE_ASSET,
    CHAMPION_ASSET,
    DEPLOYMENT_ASSET,
    DRIFT_ASSET,
)
from resources.bentoml.types import DeploymentRecord

T = TypeVar("T")
# Assets whose events name their registered model (or share a run with one that does).
NAMED_ASSETS = (CANDIDATE_ASSET, CHAMPION_ASSET, BENTO_ASSET, DEPLOYMENT_ASSET)
HEAVY_ASSETS = (CANDIDATE_ASSET, BENTO_ASSET)


def iso(timestamp: float | None) -> str | None:
    """Seconds since the epoch as an ISO-8601 UTC time (what charts and tables show)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities (MLflow stores them) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def down_section(error: StoreDown) -> dict[str, Any]:
    return {"status": "down", "store": error.store, "error": str(error)}


def section(read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``read()`` marked up, or the down store that stopped it: a page never fails for it."""
    try:
        return {"status": "up", **read()}
    except StoreDown as error:
        return down_section(error)


def namespace_of_model(model_name: object) -> str | None:
    name = str(model_name or "")
    return name.removesuffix(MODEL_SUFFIX) if name.endswith(MODEL_SUFFIX) else None


class DashboardData:
    """The readers of one home behind one cache."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.cache = TTLCache(settings.cache_seconds, max_stale_seconds=settings.stale_seconds)
        self.mlflow = MlflowReader(settings.stores, settings.timeout_seconds)
        self.dagster = DagsterReader(settings.stores)
        self.files = FilesReader(settings.stores)

    def cached(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        return self.cache.get(key, compute)

    def page(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """A whole page document: once built, an expired one is served while it is rebuilt in
        the background (see ``cache``), so a request waits for the stores only the first time."""
        return self.cache.get(("page", *key), compute, stale_ok=True)

    # -- the stores, cached ------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        """Configured namespaces, else those found in MLflow and in the deployment records."""
        if self.settings.namespaces:
            return list(self.settings.namespaces)
        found: set[str] = set()
        # With MLflow down, the deployment records still name the namespaces that serve.
        with suppress(StoreDown):
            found |= set(self.cached(("namespaces",), self.mlflow.namespaces))
        folder = self.settings.stores.deployments_dir
        if folder.is_dir():
            found |= {p.name.removesuffix(MODEL_SUFFIX) for p in folder.glob(f"*{MODEL_SUFFIX}")}
        return sorted(found)

    def registry(self, namespace: str) -> RegistryView:
        return self.cached(("registry", namespace), lambda: self.mlflow.registry(namespace))

    def materializations(self, asset: str) -> list[EventView]:
        limit = self.settings.events_per_asset
        return self.cached(("mat", asset), lambda: self.dagster.materializations(asset, limit))

    def observations(self, asset: str) -> list[EventView]:
        limit = self.settings.events_per_asset
        return self.cached(("obs", asset), lambda: self.dagster.observations(asset, limit))

    def checks(self, asset: str, check: str) -> list[CheckView]:
        limit = self.settings.events_per_asset
        return self.cached(
            ("check", asset, check), lambda: self.dagster.checks(asset, check, limit)
        )

    def failed_runs(self) -> list[RunView]:
        return self.cached(("failed-runs",), lambda: self.dagster.runs(50, failed_only=True))

    def recent_runs(self) -> list[RunView]:
        return self.cached(("runs",), lambda: self.dagster.runs(self.settings.events_per_asset))

    def deployments(self, namespace: str) -> list[DeploymentRecord]:
        model = f"{namespace}{MODEL_SUFFIX}"
        return self.cached(("deployments", namespace), lambda: self.files.deployments(model))

    def bentos(self) -> dict[str, dict[str, Any]]:
        return self.cached(("bentos",), self.files.bentos)

    # -- which namespace an event belongs to ------------------------------------------------

    def run_namespaces(self) -> dict[str, str]:
        """``Dagster run id → namespace`` from every event that names its registered model."""

        def compute() -> dict[str, str]:
            found: dict[str, str] = {}
            for asset in (*NAMED_ASSETS, DRIFT_ASSET, AUDIT_ASSET):
                for event in self.materializations(asset):
                    namespace = self._named(event)
                    if namespace is not None and event.run_id:
                        found.setdefault(event.run_id, namespace)
            return found

        return self.cached(("run-namespaces",), compute)

    def _named(self, event: EventView) -> str | None:
        meta = event.metadata
        record = meta.get("record")
        if isinstance(record, dict) and namespace_of_model(record.get("model_name")):
            return namespace_of_model(record.get("model_name"))
        named = namespace_of_model(meta.get("model_name"))
        if named is not None:
            return named
        if event.asset == DRIFT_ASSET:
            return self._drift_namespace(meta)
        return None

    def _drift_namespace(self, meta: dict[str, Any]) -> str | None:
        """The one namespace whose registry holds the report's champion with its data md5."""
        version, md5 = meta.get("champion_version"), meta.get("reference_data_md5")
        if not version or not md5:
            return None
        matches = []
        for namespace in self.namespaces():
            try:
                found = self.registry(namespace).version(str(version))
            except StoreDown:
                return None
            if found is not None and found.tags.get("efficientai.data_md5") == md5:
                matches.append(namespace)
        return matches[0] if len(matches) == 1 else None

    def namespace_of(self, event: EventView) -> str | None:
        return self._named(event) or self.run_namespaces().get(event.run_id)

    def namespace_of_run(self, run_id: str) -> str | None:
        return self.run_namespaces().get(run_id)
