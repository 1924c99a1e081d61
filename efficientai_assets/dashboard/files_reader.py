"""Read-only views of the stores that are plain files: the deployment records and the bentos of
the BentoML store, and the Evidently reports by namespace and day.

Bentos are read from their ``bento.yaml`` in the store's folders rather than through the
``bentoml`` command line: one file read per bento instead of a process per call.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from efficientai_assets.dashboard.cache import StoreDown
from efficientai_assets.operations.stores import StoreLocations
from resources.bentoml.records import DeploymentLog
from resources.bentoml.types import DeploymentRecord, bento_name_for
from resources.home import namespace_problem

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REPORT_FILES = {"drift.html": "text/html; charset=utf-8", "drift.json": "application/json"}


class FilesReader:
    """The BentoML home and the reports folders of one home."""

    def __init__(self, stores: StoreLocations) -> None:
        self.stores = stores

    def deployments(self, model_name: str) -> list[DeploymentRecord]:
        """Every deployment record of ``model_name``, oldest first."""
        folder = self.stores.deployments_dir / bento_name_for(model_name)
        try:
            return DeploymentLog(folder).history()
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise StoreDown(
                "bentoml", f"deployment records in {folder} do not read: {error}"
            ) from error

    def bentos(self) -> dict[str, dict[str, Any]]:
        """``tag → {labels, creation_time, models}`` of every bento in the store."""
        root = self.stores.bentoml_home / "bentos"
        if not self.stores.bentoml_home.is_dir():
            raise StoreDown("bentoml", f"no BentoML store at {self.stores.bentoml_home}")
        out: dict[str, dict[str, Any]] = {}
        for path in sorted(root.glob("*/*/bento.yaml")) if root.is_dir() else []:
            try:
                document = yaml.safe_load(path.read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue  # a bento being written right now
            tag = f"{path.parent.parent.name}:{path.parent.name}"
            out[tag] = {
                "labels": {str(k): str(v) for k, v in (document.get("labels") or {}).items()},
                "creation_time": str(document.get("creation_time", "")),
                "models": [str(m.get("tag", "")) for m in document.get("models") or []],
            }
        return out

    def report_path(self, namespace: str, day: str, name: str) -> Path | None:
        """``<reports of namespace>/<day>/<name>`` when the namespace is a plain name, ``day`` a
        date, ``name`` a report file and it exists, else None (never a path outside)."""
        if namespace_problem(namespace) or not DAY.match(day) or name not in REPORT_FILES:
            return None
        path = self.stores.home.reports_for(namespace) / day / name
        return path if path.is_file() else None
