"""The traffic splitter of a canary or shadow deployment, in front of two bento servers.

``python -m efficientai_assets.bento_service.router SPEC.json`` (started by
``BentoMLResource.serve_deployment``). In canary mode a share of ``POST`` requests goes to the
challenger's bento: requests carrying ``X-Routing-Key`` are split by a hash of the key (a user
sticks to one version), others by a smooth weighted counter (exactly ``share`` of every
``1/share`` requests). In shadow mode the champion answers every request and a copy goes to the
challenger in the background; both answers are appended to a JSON-lines log for comparison.
Responses carry ``X-EfficientAI-Route`` (champion, canary) next to the bento's own provenance
headers. The same edge guard as the bentos applies (token, size limit, media type).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efficientai_assets.bento_service.middleware import EdgeGuardMiddleware

if TYPE_CHECKING:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

ROUTE_HEADER = "x-efficientai-route"
ROUTING_KEY_HEADER = "x-routing-key"
# Hop-by-hop and recomputed headers are never forwarded.
_DROPPED_HEADERS = frozenset(
    {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "content-encoding"}
)


class CanarySplitter:
    """Decides, per request, whether the canary answers.

    Without a routing key: a smooth weighted counter, so after ``n`` requests the canary has had
    ``floor(n * share)`` of them (never off by more than one). With a key: a hash of it, so one
    user always sees the same version and the share holds over many users.
    """

    def __init__(self, share: float) -> None:
        if not 0.0 <= share < 1.0:
            raise ValueError(f"canary share must be in [0, 1), got {share}")
        self.share = share
        self._seen = 0

    def to_canary(self, routing_key: str | None = None) -> bool:
        if routing_key:
            digest = hashlib.sha256(routing_key.encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2**64 < self.share
        self._seen += 1
        return math.floor(self._seen * self.share) > math.floor((self._seen - 1) * self.share)


@dataclass(frozen=True)
class RouterSpec:
    champion_url: str
    canary_url: str
    mode: str  # "canary" | "shadow"
    share: float
    host: str
    port: int
    max_body_bytes: int
    token_env: str
    deployment_id: int
    shadow_log: str = ""

    @classmethod
    def from_json(cls, text: str) -> RouterSpec:
        spec = cls(**json.loads(text))
        if spec.mode not in ("canary", "shadow"):
            raise ValueError(f"router mode must be canary or shadow, got {spec.mode!r}")
        if spec.mode == "shadow" and not spec.shadow_log:
            raise ValueError("shadow mode needs a shadow_log path")
        return spec


def _labels_of(body: bytes) -> list[Any] | None:
    try:
        return [row["label"] for row in json.loads(body)]
    except (ValueError, TypeError, KeyError):
        return None


def create_app(spec: RouterSpec) -> Starlette:
    import httpx
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    splitter = CanarySplitter(spec.share if spec.mode == "canary" else 0.0)
    counts = {"champion": 0, "canary": 0, "shadow_copies": 0, "shadow_errors": 0}
    log_lock = asyncio.Lock()
    state: dict[str, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        if "client" not in state:
            state["client"] = httpx.AsyncClient(
                timeout=30.0, limits=httpx.Limits(max_connections=128, max_keepalive_connections=64)
            )
        return state["client"]

    def forward_headers(request: Request) -> dict[str, str]:
        return {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}

    async def call(base: str, request: Request, body: bytes) -> httpx.Response:
        return await client().request(
            request.method,
            base + request.url.path,
            params=request.query_params,
            content=body,
            headers=forward_headers(request),
        )

    def relay(upstream: httpx.Response, route: str) -> Response:
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROPPED_HEADERS}
        headers[ROUTE_HEADER] = route
        return Response(upstream.content, status_code=upstream.status_code, headers=headers)

    async def shadow_copy(request: Request, body: bytes, answer: httpx.Response) -> None:
        started = time.perf_counter()
        entry: dict[str, Any] = {
            "time": time.time(),
            "path": request.url.path,
            "champion_version": answer.headers.get("x-efficientai-model-version"),
            "champion_status": answer.status_code,
            "champion_labels": _labels_of(answer.content),
        }
        try:
            shadow = await call(spec.canary_url, request, body)
            entry.update(
                shadow_version=shadow.headers.get("x-efficientai-model-version"),
                shadow_status=shadow.status_code,
                shadow_labels=_labels_of(shadow.content),
            )
            counts["shadow_copies"] += 1
        except httpx.HTTPError as error:
            entry.update(shadow_error=str(error) or type(error).__name__)
            counts["shadow_errors"] += 1
        entry["shadow_ms"] = round((time.perf_counter() - started) * 1000, 2)
        labels = (entry.get("champion_labels"), entry.get("shadow_labels"))
        entry["agree"] = labels[0] == labels[1] if None not in labels else None
        async with log_lock:
            with open(spec.shadow_log, "a") as log:
                log.write(json.dumps(entry) + "\n")

    async def proxy(request: Request) -> Response:
        body = await request.body()
        to_canary = (
            request.method == "POST"
            and spec.mode == "canary"
            and splitter.to_canary(request.headers.get(ROUTING_KEY_HEADER))
        )
        route = "canary" if to_canary else "champion"
        try:
            upstream = await call(
                spec.canary_url if to_canary else spec.champion_url, request, body
            )
        except httpx.HTTPError as error:
            return JSONResponse({"error": f"the {route} server did not answer: {error}"}, 502)
        counts[route] += 1
        response = relay(upstream, route)
        if spec.mode == "shadow" and request.method == "POST":
            response.background = BackgroundTask(shadow_copy, request, body, upstream)
        return response

    async def readyz(_: Request) -> Response:
        targets = [spec.champion_url, spec.canary_url]
        try:
            statuses = [(await client().get(url + "/readyz")).status_code for url in targets]
        except httpx.HTTPError as error:
            return JSONResponse({"ready": False, "error": str(error)}, 503)
        ready = all(status == 200 for status in statuses)
        return JSONResponse({"ready": ready, "upstreams": statuses}, 200 if ready else 503)

    async def livez(_: Request) -> Response:
        return JSONResponse({"alive": True})

    async def describe(_: Request) -> Response:
        return JSONResponse(
            {
                "deployment_id": spec.deployment_id,
                "mode": spec.mode,
                "canary_share": spec.share,
                "routed": counts,
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if "client" in state:
            await state.pop("client").aclose()

    return Starlette(
        routes=[
            Route("/livez", livez),
            Route("/healthz", livez),
            Route("/readyz", readyz),
            Route("/deployment", describe),
            Route("/{path:path}", proxy, methods=["GET", "POST"]),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m efficientai_assets.bento_service.router SPEC.json")
    spec = RouterSpec.from_json(Path(args[0]).read_text())
    app = EdgeGuardMiddleware(
        create_app(spec),
        max_body_bytes=spec.max_body_bytes,
        token=os.environ.get(spec.token_env) or None,
        labels={"deployment_id": str(spec.deployment_id)},
    )
    uvicorn.run(app, host=spec.host, port=spec.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
