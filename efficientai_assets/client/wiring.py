"""How every entry point of the client finds its stores: one home, one namespace, the project's
resources wired by ``resources.defaults.build_resources`` exactly as the code location wires them.

``MLOpsClient`` and the component entry points (``mlflow_client.create_client``,
``dvc_client.create_client``, ``packager.package_model``, ``EvidentlyMonitor``...) all start here,
so a run, a dataset or a bento made through any of them lands where the assets look.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from efficientai_assets.client.errors import InvalidArgumentError
from resources.defaults import DEFAULT_NAMESPACE, build_resources
from resources.home import EfficientAIHome, namespace_problem

if TYPE_CHECKING:
    from dagster import ConfigurableResource

REMOTE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_Resource = TypeVar("_Resource", bound="ConfigurableResource")

__all__ = ["DEFAULT_NAMESPACE", "check_namespace", "home_for", "resolve_env_vars", "wired"]


def check_namespace(namespace: object, argument: str = "project_namespace") -> str:
    """A namespace the stores accept (``resources.home``'s one validator), or an error saying
    what one looks like."""
    problem = namespace_problem(namespace, argument)
    if problem is not None:
        raise InvalidArgumentError(problem)
    assert isinstance(namespace, str)
    return namespace


def home_for(workspace_root: str | Path | None) -> EfficientAIHome:
    """The given folder as the home, else ``$EFFICIENTAI_HOME`` (default ``./.efficientai``);
    its folders are created."""
    home = (
        EfficientAIHome(Path(workspace_root).expanduser().resolve())
        if workspace_root is not None
        else EfficientAIHome.from_env()
    )
    home.ensure_layout()
    return home


def resolve_env_vars(resource: _Resource) -> _Resource:
    """Dagster resolves ``EnvVar`` fields (credentials) only when it runs; a script reads them from
    the environment here. (Dagster's own initialisation would create a throw-away instance.)"""
    import dagster as dg

    updates = {
        name: value.get_value()
        for name in type(resource).model_fields
        if isinstance(value := getattr(resource, name), dg.EnvVar)
    }
    return resource.model_copy(update=updates) if updates else resource


def wired(
    namespace: str,
    home: EfficientAIHome,
    mlflow_tracking_uri: str | None = None,
    dvc_remote_name: str | None = None,
) -> dict[str, Any]:
    """The project's resources for ``namespace`` under ``home``, credentials resolved; an explicit
    tracking URI or remote name wins over the environment's."""
    if mlflow_tracking_uri is not None and not (
        isinstance(mlflow_tracking_uri, str) and mlflow_tracking_uri.strip()
    ):
        raise InvalidArgumentError("mlflow_tracking_uri, when given, must be a non-empty URI")
    if dvc_remote_name is not None and not (
        isinstance(dvc_remote_name, str) and REMOTE_NAME.match(dvc_remote_name)
    ):
        raise InvalidArgumentError(f"dvc_remote_name {dvc_remote_name!r} is not a DVC remote name")
    resources = build_resources(namespace, home)
    if mlflow_tracking_uri is not None:
        resources["mlflow"] = resources["mlflow"].model_copy(
            update={"tracking_uri": mlflow_tracking_uri.strip()}
        )
    if dvc_remote_name is not None and dvc_remote_name != resources["dvc"].remote_name:
        resources["dvc"] = resources["dvc"].model_copy(update={"remote_name": dvc_remote_name})
    return {key: resolve_env_vars(resource) for key, resource in resources.items()}
