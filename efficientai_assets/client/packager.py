"""The seed guide's BentoML packager: ``package_model(model_path=, model_name=, model_framework=,
build_docker=)`` → a dict naming the bento (``bento_name``, ``bento_tag``, ``path``...).

It packages through the client's one path (``deployment.package_model_source``) into the home's
BentoML store, in the project's namespace: any accepted model form (the MLX folder, an MLflow
model directory, a ``models:/`` URI). ``build_docker=True`` also writes BentoML's Dockerfile
(``resources.bentoml.containers``) and builds the image only where a Docker engine answers; the
result's ``docker`` entry says plainly when no image was built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from efficientai_assets.client.deployment import package_model_source
from efficientai_assets.client.guard import guarded
from efficientai_assets.client.wiring import DEFAULT_NAMESPACE, check_namespace, home_for, wired
from efficientai_assets.names import TAG_SOURCE

DOCKER_DIR = "containerfiles"


@guarded("package a model")
def package_model(
    model_path: str | Path,
    model_name: str,
    model_framework: str | None = None,
    build_docker: bool = False,
    version: str | None = None,
    project_name: str = DEFAULT_NAMESPACE,
    workspace_root: str | Path | None = None,
) -> dict[str, Any]:
    """Build (or reuse) the bento of a model and return ``bento_name``, ``bento_tag`` (also
    ``tag``), ``path``, ``model_tag``, ``serving``, ``labels``, ``size_bytes`` and ``built``.

    ``version`` defaults to the registry version of a ``models:/`` URI, else "unversioned";
    ``model_framework`` (a label) to "mlx" for the MLX folder, else the MLflow model's flavour.
    With ``build_docker`` the result's ``docker`` holds ``dockerfile``, ``image_tag`` (None when
    no image was built), ``engine_available`` and ``message``. Errors raise an
    ``MLOpsClientError`` (a model that cannot be served, a failed build).
    """
    from resources.bentoml.containers import containerize

    namespace = check_namespace(project_name, "project_name")
    resources = wired(namespace, home_for(workspace_root))
    store = resources["bentoml"]
    result = package_model_source(
        store,
        resources["mlflow"],
        model_path,
        model_name,
        version,
        model_framework,
        {TAG_SOURCE: "packager"},
    )
    if build_docker:
        container = containerize(
            store, result["bento_tag"], store.resolved_home() / DOCKER_DIR, build_image=True
        )
        result["docker"] = {
            "dockerfile": str(container.dockerfile),
            "image_tag": container.image_tag,
            "engine_available": container.engine_available,
            "message": container.message,
        }
    return result
