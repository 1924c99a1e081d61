"""The HTTP edge of the service, as one pure ASGI middleware (no request object, no extra copies).

In order: bearer-token check (when a token is configured), request-size limit (a declared
``Content-Length`` over the limit is refused before a byte of the body is read; a chunked body is
buffered only up to the limit), JSON-only media type for POST, 503 for POST while the model is not
loaded, and provenance headers on every response. Refusals are JSON ``{"error": ...}`` with a 4xx status; the server keeps serving.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Probes stay open so an orchestrator can check the server without the token.
OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz"})
JSON_MEDIA_TYPES = frozenset({"application/json"})
HEADER_PREFIX = "x-efficientai-"


async def send_error(
    send: Send, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def provenance_headers(
    labels: MutableMapping[str, str] | dict[str, str],
) -> list[tuple[bytes, bytes]]:
    """``X-EfficientAI-Model-Version: 3`` and friends, from the bento's labels."""
    return [
        (f"{HEADER_PREFIX}{key.replace('_', '-')}".encode("latin-1"), value.encode("latin-1"))
        for key, value in labels.items()
    ]


class EdgeGuardMiddleware:
    """Auth, size limit, media type and provenance headers in front of the BentoML app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        token: str | None = None,
        labels: dict[str, str] | None = None,
        not_ready: Callable[[], str | None] | None = None,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._expected_auth = f"Bearer {token}".encode() if token else None
        self._extra_headers = provenance_headers(labels or {})
        self._not_ready = not_ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *self._extra_headers]
            await send(message)

        path = scope.get("path", "")
        if self._expected_auth is not None and path not in OPEN_PATHS:
            given = _header(scope, b"authorization") or b""
            if not hmac.compare_digest(given, self._expected_auth):
                await send_error(
                    send_with_headers,
                    401,
                    "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                    [(b"www-authenticate", b"Bearer")],
                )
                return

        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await send_error(send_with_headers, 400, f"invalid Content-Length {declared!r}")
                return
            if length > self.max_body_bytes:
                await send_error(
                    send_with_headers,
                    413,
                    f"request body of {length} bytes exceeds the limit of {self.max_body_bytes} bytes",
                )
                return

        if scope.get("method") == "POST":
            media_type = (_header(scope, b"content-type") or b"application/json").split(b";")[0]
            if media_type.strip().decode("latin-1").lower() not in JSON_MEDIA_TYPES:
                await send_error(
                    send_with_headers,
                    415,
                    f"unsupported media type {media_type.decode('latin-1')!r}: send application/json",
                )
                return
            reason = self._not_ready() if self._not_ready is not None else None
            if reason is not None:
                await send_error(send_with_headers, 503, f"not ready: {reason}")
                return
            if declared is None:
                buffered = await self._read_capped(receive)
                if buffered is None:
                    await send_error(
                        send_with_headers,
                        413,
                        f"request body exceeds the limit of {self.max_body_bytes} bytes",
                    )
                    return
                receive = _replay(buffered, receive)

        await self.app(scope, receive, send_with_headers)

    async def _read_capped(self, receive: Receive) -> bytes | None:
        """The whole body of a request without a declared length, or None past the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
