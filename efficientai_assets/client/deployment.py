"""Deployment from a script: any accepted model (``model_sources.ACCEPTED_FORMS``: the project's MLX
folder, an MLflow model directory, a ``models:/`` URI) imported into the BentoML store and built
into a bento (``bentos.build_model_bento``), with the client's run recorded on both sides.

``package_model_source`` is the one path from a model to a bento for the client: ``deploy_model``
here and the guide's ``packager.package_model`` both go through it.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from efficientai_assets.client.core import ClientCore
from efficientai_assets.client.errors import BentoBuildError, InvalidArgumentError
from efficientai_assets.client.guard import guarded
from efficientai_assets.names import TAG_BENTO, TAG_SOURCE
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import ModelProvenance
from resources.mlflow.resource import MlflowResource

FRAMEWORK = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
UNVERSIONED = "unversioned"


def _version_text(version: object) -> str | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, str | int) or not str(version).strip():
        raise InvalidArgumentError(f"version must be a non-empty string, got {version!r}")
    return str(version).strip()


def package_model_source(
    store: BentoMLResource,
    mlflow: MlflowResource,
    model_path: str | Path,
    model_name: str,
    version: str | int | None,
    model_framework: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build (or reuse) the bento of ``model_path`` as ``<namespace>-<model_name>``, version
    ``version`` (default: the registry version of a ``models:/`` URI, else "unversioned").
    ``model_framework`` is recorded as a label (default: "mlx" for the MLX folder, else the MLflow
    model's own flavour, "pyfunc" for models-from-code).

    Arguments and models that cannot be served raise (``InvalidArgumentError``,
    ``PathNotFoundError``, ``DeploymentError``, ``PickleModelRefusedError``) before anything is
    written; a failed import or build raises ``BentoBuildError``.
    """
    from efficientai_assets.client.bentos import build_model_bento
    from efficientai_assets.client.model_sources import inspect_mlflow_model, resolve
    from efficientai_assets.provenance import git_sha

    if not isinstance(model_name, str) or not model_name.strip():
        raise InvalidArgumentError(f"model_name must be a non-empty string, got {model_name!r}")
    if model_framework is not None and (
        not isinstance(model_framework, str) or not FRAMEWORK.match(model_framework)
    ):
        raise InvalidArgumentError(
            f"model_framework must be a short lowercase name (mlx, mlflow, sklearn...), "
            f"got {model_framework!r}"
        )
    wanted_version = _version_text(version)
    registered = mlflow.model_name(model_name.strip())
    with tempfile.TemporaryDirectory(prefix="efficientai-package-") as scratch:
        source = resolve(model_path, mlflow, Path(scratch))
        spec = inspect_mlflow_model(source) if source.kind == "mlflow" else None
        framework = model_framework or (spec.framework if spec is not None else "mlx")
        chosen = wanted_version or source.registered_version or UNVERSIONED
        provenance = ModelProvenance(
            model_name=registered,
            model_version=chosen,
            data_md5=source.data_md5,
            git_sha=source.git_sha or git_sha(),
        )
        metadata = {"source": source.given, "model_framework": framework}
        try:
            built = build_model_bento(
                store, source, spec, provenance, framework, dict(labels or {}), metadata
            )
        except Exception as error:
            raise BentoBuildError(
                f"could not build the bento of {source.given} ({registered} {chosen}): {error}"
            ) from error
    bento = built.bento
    return {
        "model_name": registered,
        "version": chosen,
        "model_path": source.given,
        "model_framework": framework,
        "serving": built.serving,
        "bento_name": bento.name,
        "bento_tag": bento.tag,
        "tag": bento.tag,
        "model_tag": built.imported.tag,
        "bento_path": str(bento.path),
        "path": str(bento.path),
        "size_bytes": bento.size_bytes,
        "built": bento.built,
        "labels": dict(bento.labels),
    }


class DeploymentMixin(ClientCore):
    """``deploy_model`` on the client's ``BentoMLResource``."""

    @guarded("deploy a model")
    def deploy_model(
        self,
        model_path: str | Path,
        model_name: str,
        version: str,
        model_framework: str | None = None,
    ) -> dict[str, Any]:
        """Build the bento ``<namespace>-<model_name>:v<version>-<digest>`` of a model in any
        accepted form (an identical existing bento is reused). Returns ``status`` ("success" or
        "failed"), ``bento_tag``, ``serving`` (which service) and, on failure, ``error``.
        Arguments and models that cannot be right raise an ``MLOpsClientError`` instead."""
        if _version_text(version) is None:
            raise InvalidArgumentError("version must be a non-empty string, got None")
        run = self.active_run
        labels = {TAG_SOURCE: "client", **({"mlflow_run_id": run.run_id} if run else {})}
        try:
            result = package_model_source(
                self.bentoml_store,
                self.mlflow_client,
                model_path,
                model_name,
                version,
                model_framework,
                labels,
            )
        except BentoBuildError as error:  # reported, not raised (see docstring)
            self._log("deploy of %s v%s failed: %s", model_name, version, error)
            return {
                "model_name": self.mlflow_client.model_name(str(model_name).strip()),
                "version": str(version),
                "model_path": str(model_path),
                "status": "failed",
                "bento_tag": None,
                "error": str(error),
            }
        if run is not None:
            self._mlflow().set_tag(run.run_id, TAG_BENTO, result["bento_tag"])
        self._log("bento %s %s", result["bento_tag"], "built" if result["built"] else "reused")
        return {**result, "status": "success"}
