"""The project's Ray Serve application: a gateway and one model deployment per served version.

The gateway is the bento's HTTP surface on Ray: the same edge guard (token, size limit, media
type, not-ready 503, provenance headers), the same strict request schema and 400 body, the same
``/metadata`` and probes, and the router's canary split (``CanarySplitter``) or shadow copy. It
validates a request before any model sees it, then calls the champion's (or canary's) model
deployment, whose replicas load the MLX weights with the project's loader (never pickle) and
merge concurrent calls into one forward pass (``serve.batch``). A replica that dies mid-request
is retried on another; Serve starts a replacement.

Runs inside Ray worker processes; built with ``build_application(spec)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.handle import DeploymentHandle
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from efficientai_assets.bento_service.answers import (
    load_checked,
    metadata_document,
    non_finite_message,
    not_loaded_reason,
    predictions,
    validation_error_body,
)
from efficientai_assets.bento_service.middleware import (
    EdgeGuardMiddleware,
    provenance_headers,
)
from efficientai_assets.bento_service.router import ROUTE_HEADER, ROUTING_KEY_HEADER, CanarySplitter
from efficientai_assets.bento_service.schemas import make_request_model
from efficientai_assets.bento_service.settings import ServingSettings
from efficientai_assets.ray_service.spec import ApplicationSpec, ServedVersion

logger = logging.getLogger("efficientai.serving.ray")

GATEWAY = "gateway"
RETRIES_ON_REPLICA_LOSS = 4
READINESS_POLL_S = 0.5


def deployment_name(role: str) -> str:
    """``model-champion`` / ``model-canary``: one model deployment per served role."""
    return f"model-{role}"


@serve.deployment(max_ongoing_requests=64)
class ModelServer:
    """One served version's replicas: its weights, loaded once per replica."""

    def __init__(
        self, settings_json: str, files: dict[str, bytes], digests: dict[str, str]
    ) -> None:
        import hashlib

        self.settings = ServingSettings.from_mapping(json.loads(settings_json)).with_env(os.environ)
        self.classifier: Any = None
        self.device = "unknown"
        self.error: str | None = None
        self._folder = tempfile.TemporaryDirectory(prefix="efficientai-ray-model-")
        try:
            for name, data in files.items():
                if hashlib.sha256(data).hexdigest() != digests.get(name):
                    raise ValueError(f"{name} does not match the digest it was deployed with")
                (Path(self._folder.name) / name).write_bytes(data)
            self.classifier, self.device = load_checked(self._folder.name, self.settings)
        except Exception as error:  # missing or corrupt weights: up, not ready, no 500s
            self.error = not_loaded_reason(self.settings, error)
            logger.error(self.error)

    def status(self) -> dict[str, Any]:
        return {"ready": self.classifier is not None, "reason": self.error, "device": self.device}

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def _forward(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Concurrent calls on this replica as one forward pass, split back per call."""
        sizes = np.cumsum([len(rows) for rows in batches])[:-1]
        proba = self.classifier.predict_proba(np.concatenate(batches))
        return list(np.split(proba, sizes))

    async def predict(self, instances: list[list[float]]) -> dict[str, Any]:
        """``{"status": 200, "body": [...]}`` or a refusal with its status and message."""
        if self.classifier is None:
            return {"status": 503, "body": {"error": f"not ready: {self.error}"}}
        proba = await self._forward(np.asarray(instances, dtype=np.float32))
        refusal = non_finite_message(proba)
        if refusal is not None:
            return {"status": 400, "body": {"error": refusal}}
        return {"status": 200, "body": predictions(proba, self.settings.classes)}


class _StripRoutePrefix:
    """Serve hands the app the full path (``/<namespace>/predict``) with the prefix as
    ``root_path``; the edge guard and routes see the path below the prefix."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        root = scope.get("root_path", "")
        if scope["type"] == "http" and root and scope.get("path", "").startswith(root):
            scope = {**scope, "path": scope["path"][len(root) :] or "/", "root_path": ""}
        await self.app(scope, receive, send)


@serve.deployment(num_replicas=1, max_ongoing_requests=256)
@serve.ingress()
class Gateway:
    """The HTTP surface of one project namespace's deployment."""

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async constructor
        self,
        spec_json: str,
        champion: DeploymentHandle,
        canary: DeploymentHandle | None = None,
    ) -> None:
        spec = json.loads(spec_json)
        self.spec = spec
        self.settings = {
            "champion": ServingSettings.from_mapping(spec["champion"]).with_env(os.environ),
            **(
                {"canary": ServingSettings.from_mapping(spec["canary"]).with_env(os.environ)}
                if spec["canary"]
                else {}
            ),
        }
        main = self.settings["champion"]
        self.request_model = make_request_model(main.n_features, main.max_rows)
        self.handles = {"champion": champion, **({"canary": canary} if canary else {})}
        self.splitter = CanarySplitter(spec["canary_share"] if spec["mode"] == "canary" else 0.0)
        self.counts = {"champion": 0, "canary": 0, "shadow_copies": 0, "shadow_errors": 0}
        self.status: dict[str, Any] = {"ready": False, "reason": "model not loaded yet"}
        # Known before this replica takes traffic, then kept current in the background.
        await self._refresh_status()
        self._poller = asyncio.get_running_loop().create_task(self._poll_readiness())

    def not_ready(self) -> str | None:
        return None if self.status.get("ready") else str(self.status.get("reason"))

    async def _refresh_status(self) -> None:
        try:
            self.status = await self.handles["champion"].status.remote()
        except Exception as error:  # a replica restarting: keep the last answer
            logger.warning("champion status unavailable: %s", error)

    async def _poll_readiness(self) -> None:
        while True:
            await asyncio.sleep(READINESS_POLL_S if not self.status.get("ready") else 5.0)
            await self._refresh_status()

    async def _call(self, role: str, instances: list[list[float]]) -> dict[str, Any]:
        """The model deployment's answer; a replica lost mid-request is retried on another."""
        for attempt in range(RETRIES_ON_REPLICA_LOSS + 1):
            try:
                result: dict[str, Any] = await self.handles[role].predict.remote(instances)
                return result
            except (RayActorError, ActorUnavailableError) as error:
                if attempt == RETRIES_ON_REPLICA_LOSS:
                    return {"status": 503, "body": {"error": f"the {role} did not answer: {error}"}}
                await asyncio.sleep(0.25 * 2**attempt)  # Serve drops the lost replica meanwhile
        raise AssertionError("unreachable")

    def _headers(self, role: str) -> dict[str, str]:
        """With two versions, each answer names its own (one version: the edge guard does)."""
        if self.spec["mode"] == "single":
            return {}
        headers = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in provenance_headers(self.settings[role].labels())
        }
        headers[ROUTE_HEADER] = role
        return headers

    async def _shadow(self, instances: list[list[float]], answer: dict[str, Any]) -> None:
        entry: dict[str, Any] = {
            "time": time.time(),
            "champion_version": self.settings["champion"].model_version,
            "champion_status": answer["status"],
            "champion_labels": _labels(answer),
        }
        shadow = await self._call("canary", instances)
        entry.update(
            shadow_version=self.settings["canary"].model_version,
            shadow_status=shadow["status"],
            shadow_labels=_labels(shadow),
        )
        self.counts["shadow_copies" if shadow["status"] == 200 else "shadow_errors"] += 1
        labels = (entry["champion_labels"], entry["shadow_labels"])
        entry["agree"] = labels[0] == labels[1] if None not in labels else None
        with open(self.spec["shadow_log"], "a") as log:
            log.write(json.dumps(entry) + "\n")

    async def predict(self, request: Request) -> Response:
        from pydantic import ValidationError

        try:
            parsed = self.request_model.model_validate_json(await request.body())
        except ValidationError as error:
            return JSONResponse(validation_error_body(error), status_code=400)
        instances = parsed.instances  # type: ignore[attr-defined]
        to_canary = self.spec["mode"] == "canary" and self.splitter.to_canary(
            request.headers.get(ROUTING_KEY_HEADER)
        )
        role = "canary" if to_canary else "champion"
        answer = await self._call(role, instances)
        self.counts[role] += 1
        if self.spec["mode"] == "shadow" and answer["status"] == 200:
            asyncio.get_running_loop().create_task(self._shadow(instances, answer))
        return JSONResponse(
            answer["body"], status_code=answer["status"], headers=self._headers(role)
        )

    async def metadata(self, _: Request) -> Response:
        main = self.settings["champion"]
        return JSONResponse(
            metadata_document(
                main,
                device=str(self.status.get("device", "unknown")),
                not_ready_reason=self.not_ready(),
                auth_required=bool(os.environ.get(main.token_env)),
                extra={"backend": "ray", "deployment_id": self.spec["deployment_id"]},
            )
        )

    async def readyz(self, _: Request) -> Response:
        reason = self.not_ready()
        return JSONResponse(
            {"ready": reason is None, "reason": reason}, 200 if reason is None else 503
        )

    async def livez(self, _: Request) -> Response:
        return JSONResponse({"alive": True})

    async def describe(self, _: Request) -> Response:
        return JSONResponse(
            {
                "backend": "ray",
                "deployment_id": self.spec["deployment_id"],
                "mode": self.spec["mode"],
                "canary_share": self.spec["canary_share"],
                "routed": self.counts,
            }
        )

    def __serve_build_asgi_app__(self) -> Any:
        routes = Starlette(
            routes=[
                Route("/predict", self.predict, methods=["POST"]),
                Route("/metadata", self.metadata, methods=["GET"]),
                Route("/readyz", self.readyz),
                Route("/livez", self.livez),
                Route("/healthz", self.livez),
                Route("/deployment", self.describe),
            ]
        )
        main = self.settings["champion"]
        guard = EdgeGuardMiddleware(
            routes,
            max_body_bytes=main.max_body_bytes,
            token=os.environ.get(main.token_env) or None,
            # One version: its provenance on every response, as the bento. Two: the deployment
            # at the edge, each answer's own version on predictions (as the router).
            labels=main.labels()
            if self.spec["mode"] == "single"
            else {"deployment_id": str(self.spec["deployment_id"])},
            not_ready=self.not_ready,
        )
        return _StripRoutePrefix(guard)


def _labels(answer: dict[str, Any]) -> list[Any] | None:
    body = answer.get("body")
    if answer.get("status") != 200 or not isinstance(body, list):
        return None
    return [row["label"] for row in body]


def _model_deployment(role: str, version: ServedVersion, spec: ApplicationSpec) -> Any:
    return ModelServer.options(  # type: ignore[attr-defined]
        name=deployment_name(role),
        autoscaling_config=spec.scaling.to_config(),
        ray_actor_options={"num_cpus": spec.replica_cpus},
    ).bind(version.settings_json(), dict(version.files), dict(version.digests))


def build_application(spec: ApplicationSpec) -> Any:
    """The Serve application of ``spec``: the gateway bound to its model deployments."""
    champion = _model_deployment("champion", spec.champion, spec)
    canary = _model_deployment("canary", spec.canary, spec) if spec.canary is not None else None
    document = {
        "deployment_id": spec.deployment_id,
        "mode": spec.mode,
        "canary_share": spec.canary_share,
        "shadow_log": spec.shadow_log,
        "champion": dict(spec.champion.settings),
        "canary": dict(spec.canary.settings) if spec.canary is not None else None,
    }
    gateway = Gateway.options(  # type: ignore[attr-defined]
        name=GATEWAY, ray_actor_options={"num_cpus": 0.1}
    )
    return gateway.bind(json.dumps(document), champion, canary)
