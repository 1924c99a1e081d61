"""The resources of one project, wired the same way for the code location, tests and the client."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from resources.bentoml.store import BentoMLResource
from resources.dvc.resource import DvcResource
from resources.evidently.resource import EvidentlyResource
from resources.hardware.resource import HardwareResource
from resources.home import DEFAULT_NAMESPACE, EfficientAIHome, validate_namespace
from resources.mlflow.resource import MlflowResource, credentials_in_uri_error

__all__ = ["DEFAULT_NAMESPACE", "build_resources"]


def _secret(name: str) -> dg.EnvVar | None:
    """An optional credential: wired as an EnvVar (resolved at run time) only when it is set."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def _tracking_uri_from_env() -> str | None:
    """``EFFICIENTAI_MLFLOW_TRACKING_URI``, refused when it carries credentials: the resource's
    configuration is stored in every run snapshot (the credentials have variables of their own)."""
    uri = os.environ.get("EFFICIENTAI_MLFLOW_TRACKING_URI")
    problem = credentials_in_uri_error(uri, "EFFICIENTAI_MLFLOW_TRACKING_URI") if uri else None
    if problem is not None:
        raise ValueError(problem)
    return uri


def build_resources(
    namespace: str = DEFAULT_NAMESPACE, home: EfficientAIHome | None = None
) -> dict[str, Any]:
    """Every resource the assets use. ``home=None`` resolves EFFICIENTAI_HOME when a run starts;
    a given home pins every store under it (tests, scripts), the reports in the namespace's own
    folder (:meth:`~resources.home.EfficientAIHome.reports_for`). Remote stores come from the
    environment: ``EFFICIENTAI_MLFLOW_TRACKING_URI``, ``EFFICIENTAI_DVC_REMOTE_URL`` and the
    credentials ``EFFICIENTAI_MLFLOW_USERNAME`` / ``EFFICIENTAI_MLFLOW_PASSWORD``. A namespace
    that is not a plain name (``EFFICIENTAI_PROJECT=../x``) is refused before anything is wired."""
    validate_namespace(namespace, "the project namespace (EFFICIENTAI_PROJECT)")
    tracking_uri = _tracking_uri_from_env() or ""
    # A tracking server (the team stack's) stores artifacts where it decides and serves its UI.
    server = tracking_uri.startswith(("http://", "https://"))
    return {
        "mlflow": MlflowResource(
            tracking_uri=tracking_uri or (home.mlflow_tracking_uri if home else ""),
            artifact_root=str(home.mlflow_artifacts) if home and not server else "",
            ui_url=tracking_uri if server else "http://127.0.0.1:5000",
            project_namespace=namespace,
            username=_secret("EFFICIENTAI_MLFLOW_USERNAME"),
            password=_secret("EFFICIENTAI_MLFLOW_PASSWORD"),
        ),
        "dvc": DvcResource(
            repo_path=str(home.data_registry) if home else "",
            remote_url=os.environ.get("EFFICIENTAI_DVC_REMOTE_URL")
            or (str(home.dvc_remote) if home else ""),
            registry_git_url=os.environ.get("EFFICIENTAI_DVC_REGISTRY_GIT_URL", ""),
            project_namespace=namespace,
        ),
        "bentoml": BentoMLResource(bentoml_home=str(home.bentoml_home) if home else ""),
        # The namespace's own folder of the home, as the code location's monitoring assets
        # resolve it when no home is given: one layout whatever builds the resources.
        "evidently": EvidentlyResource(
            reports_dir=str(home.reports_for(namespace)) if home else ""
        ),
        "hardware": HardwareResource(),
    }
