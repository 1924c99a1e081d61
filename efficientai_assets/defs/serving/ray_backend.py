"""The Ray backend of a deployment: a deployment record served by the project's Ray Serve
application, one application per project namespace under ``/<namespace>``.

A record names bentos whichever backend serves it; the Ray application serves each bento's model
exactly as the bento does — the bento's own ``serving.json`` and the model files of its BentoML
model — so promote, rollback, canary and shadow are the same moves on both backends. Where the
cluster is and how replicas scale comes from ``EFFICIENTAI_RAY_*`` variables
(``RayServeSettings``). Every node that declares an ``efficientai_node:<name>`` resource holds
its own model deployment per served version; the hardware gate lowers a hot node's replica
ceiling there only (``ray_scaling``).

Dagster loads this module in every process: Ray and the application module are imported only
inside the functions that deploy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from efficientai_assets.bento_service.settings import SETTINGS_FILENAME
from efficientai_assets.defs.serving.packaging import MODEL_FILES, PACKAGE
from efficientai_assets.ray_service.spec import ApplicationSpec, ServedVersion
from resources.bentoml.store import BentoMLResource
from resources.bentoml.types import BentoStoreError, DeploymentRecord
from resources.ray.cluster import DEFAULT_ADDRESS, check_reachable, split_address
from resources.ray.serve import Autoscaling

BACKENDS = ("bentoml", "ray")
ENV_PREFIX = "EFFICIENTAI_RAY_"


class RayBackendError(ValueError):
    """A setting, a bento or the cluster is not what a Ray deployment needs; says what to fix."""


@dataclass(frozen=True)
class RayServeSettings:
    """Where the cluster is, where Serve listens, and how the model replicas scale."""

    address: str = DEFAULT_ADDRESS
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing_requests: float = 4.0
    replica_cpus: float = 0.25
    held_replicas: int = 1  # a node's ceiling while the hardware gate holds there
    downscale_delay_s: float = 30.0

    def __post_init__(self) -> None:
        split_address(self.address)
        self.autoscaling()  # refuse inconsistent replica bounds now, with Serve's checks
        if not 0 < self.replica_cpus <= 64:
            raise RayBackendError(f"replica_cpus must be in (0, 64], got {self.replica_cpus}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RayServeSettings:
        """Defaults overridden by ``EFFICIENTAI_RAY_<FIELD>`` (e.g. ``EFFICIENTAI_RAY_ADDRESS``,
        ``EFFICIENTAI_RAY_MAX_REPLICAS``)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = environ.get(ENV_PREFIX + name.upper())
            if raw in (None, ""):
                continue
            kind: type = type(field.default)
            try:
                values[name] = kind(raw) if kind is not str else raw
            except ValueError as error:
                raise RayBackendError(
                    f"{ENV_PREFIX}{name.upper()} must be a {kind.__name__}, got {raw!r}"
                ) from error
        try:
            return cls(**values)  # type: ignore[arg-type]
        except ValueError as error:
            raise RayBackendError(f"Ray Serve settings: {error}") from error

    def autoscaling(self) -> Autoscaling:
        try:
            return Autoscaling(
                min_replicas=self.min_replicas,
                max_replicas=self.max_replicas,
                target_ongoing_requests=self.target_ongoing_requests,
                downscale_delay_s=self.downscale_delay_s,
            )
        except ValueError as error:
            raise RayBackendError(f"Ray Serve autoscaling: {error}") from error


def served_version(bentoml: BentoMLResource, bento_tag: str) -> ServedVersion:
    """A bento's settings and model files, read from the BentoML home."""
    info = bentoml.get_bento(bento_tag)
    if info is None:
        raise RayBackendError(f"bento {bento_tag} is not in {bentoml.resolved_home()}")
    settings_path = info.path / "src" / PACKAGE / "bento_service" / SETTINGS_FILENAME
    try:
        settings = json.loads(settings_path.read_text())
    except (OSError, ValueError) as error:
        raise RayBackendError(
            f"bento {bento_tag} has no readable {settings_path}: {error}"
        ) from error
    model_dir = (
        bentoml.resolved_home() / "models" / Path(*str(settings["bento_model_tag"]).split(":"))
    )
    # A missing file is sent as nothing: the replica then reports the model not ready, as the
    # bento does, instead of the deployment failing half-way.
    files = {
        name: (model_dir / name).read_bytes() for name in MODEL_FILES if (model_dir / name).exists()
    }
    return ServedVersion(settings=settings, files=files)


def application_spec(
    bentoml: BentoMLResource,
    record: DeploymentRecord,
    namespace: str,
    settings: RayServeSettings,
    ceilings: Mapping[str, int] | None = None,
    nodes: Sequence[str] | None = None,
) -> ApplicationSpec:
    """The application that serves ``record`` on ``nodes`` (default: every live node that
    declares a name, read from the cluster), each node under its replica ceiling when given."""
    if nodes is None:
        nodes = live_nodes(settings, namespace)
    ceilings = dict(ceilings or {})
    return ApplicationSpec(
        namespace=namespace,
        deployment_id=record.deployment_id,
        mode=record.mode,
        champion=served_version(bentoml, record.champion.bento_tag),
        canary=served_version(bentoml, record.canary.bento_tag) if record.canary else None,
        canary_share=record.canary_share,
        scaling=settings.autoscaling(),
        replica_cpus=settings.replica_cpus,
        shadow_log=str(bentoml.shadow_log_path(record)) if record.mode == "shadow" else "",
        nodes=tuple(sorted(nodes)),
        ceilings={node: ceilings[node] for node in nodes if node in ceilings},
    )


def live_nodes(settings: RayServeSettings, namespace: str) -> list[str]:
    """The names the cluster's live nodes declare (connecting first, failing within seconds)."""
    from resources.ray.cluster import RayUnavailableError, connect, declared_nodes

    check_cluster(settings)
    try:
        connect(settings.address, namespace=namespace)
        return list(declared_nodes())
    except RayUnavailableError as error:
        raise RayBackendError(str(error)) from error


def check_cluster(settings: RayServeSettings) -> None:
    """Fail within seconds, naming the address, when no Ray cluster answers there."""
    from resources.ray.cluster import RayUnavailableError

    try:
        check_reachable(settings.address)
    except RayUnavailableError as error:
        raise RayBackendError(str(error)) from error


def deploy_spec(spec: ApplicationSpec, settings: RayServeSettings) -> str:
    """Run (or update in place) the namespace's application; returns its URL."""
    from efficientai_assets.ray_service.app import build_application
    from resources.ray import serve as ray_serve
    from resources.ray.cluster import connect

    check_cluster(settings)
    connect(settings.address, namespace=spec.namespace)
    ray_serve.start_http(settings.http_host, settings.http_port)
    ray_serve.run_application(build_application(spec), spec.app_name, spec.route_prefix)
    return f"{ray_serve.http_url()}{spec.route_prefix}"


def deploy_record(
    bentoml: BentoMLResource,
    record: DeploymentRecord,
    namespace: str,
    settings: RayServeSettings,
    ceilings: Mapping[str, int] | None = None,
    nodes: Sequence[str] | None = None,
) -> str:
    """Serve ``record`` on the cluster's declared nodes (or ``nodes``), each under its replica
    ceiling in ``ceilings`` (default: the configured maximum); returns the application's URL."""
    try:
        spec = application_spec(bentoml, record, namespace, settings, ceilings, nodes)
    except (BentoStoreError, ValueError) as error:
        raise RayBackendError(f"deployment {record.summary()}: {error}") from error
    return deploy_spec(spec, settings)


def with_ceilings(spec: ApplicationSpec, ceilings: Mapping[str, int]) -> ApplicationSpec:
    """The same application on the nodes of ``ceilings``, each at most at its ceiling."""
    return replace(spec, nodes=tuple(sorted(ceilings)), ceilings=dict(ceilings))


def undeploy(namespace: str, settings: RayServeSettings) -> None:
    """Remove the namespace's application from the cluster (other namespaces keep serving)."""
    from resources.ray import serve as ray_serve
    from resources.ray.cluster import connect

    check_cluster(settings)
    connect(settings.address, namespace=namespace)
    ray_serve.delete_application(namespace)
