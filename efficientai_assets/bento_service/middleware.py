"""The HTTP edge of the service, as one pure ASGI middleware (no request object, no extra copies).

In order: bearer-token check (when a token is configured), request-size limit (a declared
``Content-Length`` over the limit is refused before a byte of the body is read; a chunked body is
buffered only up to the limit), JSON-only media type for POST, 503 for POST while the model is not
loaded, back-pressure for POST (503 with ``Retry-After`` while the worker already holds
``max_in_flight`` requests or ``max_in_flight_bytes`` of request bodies, or its prediction queue
is full: refused before a declared body is read or parsed, so a burst costs the worker almost
nothing beyond what it admitted; a request is always admitted when nothing else is in flight),
and provenance headers on every response. Refusals are JSON ``{"error": ...}`` with a 4xx or 503
status; the server keeps serving.
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
        max_in_flight: int | None = None,
        max_in_flight_bytes: int | None = None,
        overloaded: Callable[[], int | None] | None = None,
    ) -> None:
        """``overloaded`` returns the ``Retry-After`` seconds while new work must be refused."""
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
        for name, bound in (
            ("max_in_flight", max_in_flight),
            ("max_in_flight_bytes", max_in_flight_bytes),
        ):
            if bound is not None and bound < 1:
                raise ValueError(f"{name} must be positive, got {bound}")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._expected_auth = f"Bearer {token}".encode() if token else None
        self._extra_headers = provenance_headers(labels or {})
        self._not_ready = not_ready
        self._max_in_flight = max_in_flight
        self._max_in_flight_bytes = max_in_flight_bytes
        self._overloaded = overloaded
        self.in_flight = 0
        self.in_flight_bytes = 0

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
            size = int(declared) if declared is not None else 0
            if await self._refused(send_with_headers, size):
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
                size = len(buffered)
                if await self._refused(send_with_headers, size):
                    return
                receive = _replay(buffered, receive)
            self.in_flight += 1
            self.in_flight_bytes += size
            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                self.in_flight -= 1
                self.in_flight_bytes -= size
            return

        await self.app(scope, receive, send_with_headers)

    async def _refused(self, send: Send, size: int) -> bool:
        """Answer 503 + ``Retry-After`` when a request of ``size`` bytes cannot be taken now."""
        refusal = self._refusal(size)
        if refusal is None:
            return False
        message, retry_after = refusal
        await send_error(send, 503, message, [(b"retry-after", str(retry_after).encode())])
        return True

    def _refusal(self, size: int) -> tuple[str, int] | None:
        """Why new work is refused now, with the ``Retry-After`` seconds; None to admit it."""
        if self._max_in_flight is not None and self.in_flight >= self._max_in_flight:
            return (
                f"overloaded: this worker is already handling {self.in_flight} requests "
                f"(limit {self._max_in_flight}); retry after 1 s",
                1,
            )
        limit = self._max_in_flight_bytes
        if limit is not None and self.in_flight and self.in_flight_bytes + size > limit:
            return (
                f"overloaded: this worker is already handling {self.in_flight_bytes} bytes of "
                f"requests and {size} more would pass the limit of {limit}; retry after 1 s",
                1,
            )
        retry_after = self._overloaded() if self._overloaded is not None else None
        if retry_after is not None:
            return (
                f"overloaded: the prediction queue is full; retry after {retry_after} s",
                retry_after,
            )
        return None

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
