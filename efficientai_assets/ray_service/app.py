"""The project's Ray Serve application: a gateway, and per served version one model deployment
per node.

The gateway is the bento's HTTP surface on Ray: the same edge guard (token, size limit, media
type, not-ready 503, provenance headers), the same strict request schema and 400 body, the same
``/metadata`` and probes, and the router's canary split (``CanarySplitter``) or shadow copy. It
validates a request before any model sees it, then calls the champion's (or canary's) model
deployment on one node, whose replicas load the MLX weights with the project's loader (never
pickle) and merge concurrent calls into one forward pass (``serve.batch``).

Each node's model deployment is pinned there by the node's declared resource
(``efficientai_node:<name>``) and scales on its own, up to that node's replica ceiling, so the
hardware gate can lower one hot node's replicas and leave the others'. The gateway spreads
requests over the nodes in proportion to their running replicas (``NodeBalancer``, weights read
from Serve's status every few seconds). A replica that dies mid-request, or a node that does not
answer in time, is retried on another node; Serve starts a replacement.

Runs inside Ray worker processes; built with ``build_application(spec)``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.handle import DeploymentHandle
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from efficientai_assets.bento_service.answers import (
    metadata_document,
    validation_error_body,
)
from efficientai_assets.bento_service.middleware import (
    EdgeGuardMiddleware,
    provenance_headers,
)
from efficientai_assets.bento_service.router import ROUTE_HEADER, ROUTING_KEY_HEADER, CanarySplitter
from efficientai_assets.bento_service.schemas import make_request_model
from efficientai_assets.bento_service.settings import ServingSettings
from efficientai_assets.ray_service.balance import NodeBalancer, routing_weights
from efficientai_assets.ray_service.model import ModelServer
from efficientai_assets.ray_service.spec import ApplicationSpec, ServedVersion
from resources.ray.cluster import node_resource

logger = logging.getLogger("efficientai.serving.ray")

GATEWAY = "gateway"
RETRIES_ON_REPLICA_LOSS = 4
READINESS_POLL_S = 0.5
WEIGHTS_POLL_S = 2.0
CALL_TIMEOUT_S = 20.0  # a node that takes longer is presumed gone; the call goes elsewhere
PIN_AMOUNT = 1  # of a node's declared resource per replica (it declares NODE_CAPACITY)


def deployment_name(role: str, node: str) -> str:
    """``model-champion-<node>`` / ``model-canary-<node>``: one model deployment per served
    role per node."""
    return f"model-{role}-{node}"


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
        champion: dict[str, DeploymentHandle],
        canary: dict[str, DeploymentHandle] | None = None,
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
        self.nodes: list[str] = list(spec["nodes"])
        self.weights = {role: routing_weights({}, self.nodes) for role in self.handles}
        self.balancers = {role: NodeBalancer() for role in self.handles}
        self.splitter = CanarySplitter(spec["canary_share"] if spec["mode"] == "canary" else 0.0)
        self.counts = {"champion": 0, "canary": 0, "shadow_copies": 0, "shadow_errors": 0}
        self.by_node: dict[str, int] = dict.fromkeys(self.nodes, 0)
        self.status: dict[str, Any] = {"ready": False, "reason": "model not loaded yet"}
        # Known before this replica takes traffic, then kept current in the background.
        await self._refresh_status()
        loop = asyncio.get_running_loop()
        self._poller = loop.create_task(self._poll_readiness())
        self._weigher = loop.create_task(self._poll_weights())

    def not_ready(self) -> str | None:
        return None if self.status.get("ready") else str(self.status.get("reason"))

    async def _refresh_status(self) -> None:
        """Ready when any node's champion replicas have loaded the weights (asked in turn,
        heaviest node first, each within a few seconds)."""
        weights = self.weights["champion"]
        last: dict[str, Any] | None = None
        for node in sorted(self.nodes, key=lambda n: -weights.get(n, 0)):
            try:
                answer: dict[str, Any] = await asyncio.wait_for(
                    self.handles["champion"][node].status.remote(), timeout=5.0
                )
            except Exception as error:  # a replica restarting or a node gone: ask the next
                logger.warning("champion status on node %s unavailable: %s", node, error)
                continue
            last = answer
            if answer.get("ready"):
                break
        if last is not None:
            self.status = last

    async def _poll_readiness(self) -> None:
        while True:
            await asyncio.sleep(READINESS_POLL_S if not self.status.get("ready") else 5.0)
            await self._refresh_status()

    def _running(self) -> dict[str, dict[str, int]]:
        """Running replicas per role per node, from Serve's status (blocking: runs in a thread)."""
        from ray.serve import status

        app = status().applications.get(self.spec["app_name"])
        out: dict[str, dict[str, int]] = {role: {} for role in self.handles}
        if app is None:
            return out
        for role in self.handles:
            for node in self.nodes:
                found = app.deployments.get(deployment_name(role, node))
                if found is not None:
                    out[role][node] = sum(
                        n
                        for state, n in found.replica_states.items()
                        if str(state).endswith("RUNNING")
                    )
        return out

    async def _poll_weights(self) -> None:
        while True:
            try:
                running = await asyncio.to_thread(self._running)
                self.weights = {
                    role: routing_weights(running[role], self.nodes) for role in self.handles
                }
            except Exception as error:  # the controller restarting: keep the last weights
                logger.warning("replica counts unavailable: %s", error)
            await asyncio.sleep(WEIGHTS_POLL_S)

    async def _call(self, role: str, instances: list[list[float]]) -> dict[str, Any]:
        """A model deployment's answer, from a node picked by its running replicas; a replica
        lost mid-request, or a node that does not answer in time, is retried on another node."""
        avoid: set[str] = set()
        for attempt in range(RETRIES_ON_REPLICA_LOSS + 1):
            node = self.balancers[role].pick(self.weights[role], avoid)
            if node is None:  # every node failed once: try them all again
                avoid.clear()
                node = self.balancers[role].pick(self.weights[role]) or self.nodes[0]
            try:
                result: dict[str, Any] = await asyncio.wait_for(
                    self.handles[role][node].predict.remote(instances), timeout=CALL_TIMEOUT_S
                )
                self.by_node[node] = self.by_node.get(node, 0) + 1
                return result
            except (RayActorError, ActorUnavailableError, TimeoutError) as error:
                avoid.add(node)
                if attempt == RETRIES_ON_REPLICA_LOSS:
                    return {
                        "status": 503,
                        "body": {"error": f"the {role} did not answer: {type(error).__name__}"},
                    }
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
                "nodes": self.nodes,
                "routed_by_node": self.by_node,
                "weights": self.weights,
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


def _model_deployments(role: str, version: ServedVersion, spec: ApplicationSpec) -> dict[str, Any]:
    """One deployment of ``version`` per node, pinned there, scaling up to that node's ceiling.

    Only the autoscaling differs between a ceiling change and the running application, so
    ``serve.run`` updates it in place (Serve stops the replicas above a lowered maximum)."""
    return {
        node: ModelServer.options(  # type: ignore[attr-defined]
            name=deployment_name(role, node),
            autoscaling_config=spec.scaling_on(node).to_config(),
            ray_actor_options={
                "num_cpus": spec.replica_cpus,
                "resources": {node_resource(node): PIN_AMOUNT},
            },
        ).bind(version.settings_json(), dict(version.files), dict(version.digests))
        for node in spec.nodes
    }


def build_application(spec: ApplicationSpec) -> Any:
    """The Serve application of ``spec``: the gateway bound to its per-node model deployments.

    The gateway's arguments name the nodes but not their ceilings, so a ceiling change leaves
    the gateway running; a node joining or leaving restarts it (Serve rolls it over)."""
    champion = _model_deployments("champion", spec.champion, spec)
    canary = _model_deployments("canary", spec.canary, spec) if spec.canary is not None else None
    document = {
        "app_name": spec.app_name,
        "nodes": list(spec.nodes),
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
