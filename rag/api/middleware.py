"""What every HTTP request goes through, outside the routes: its id, its size, the bound on answers
in flight, security headers, the access log line and the request metrics.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, so that a streamed answer keeps its slot
until its last byte and a client hanging up still reaches the route (it cancels the LLM call).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag import metrics
from rag.api.errors import error_body, openai_path
from rag.api.limits import InFlight
from rag.api.logs import REQUEST_ID, request_id_from

__all__ = ["SECURITY_HEADERS", "ServiceMiddleware"]

access = logging.getLogger("rag.access")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
# The API answers JSON and SSE only; the docs pages load Swagger UI's scripts, so they get no CSP.
_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS = ("/docs", "/redoc")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ServiceMiddleware:
    """Request id, body size limit (413), in-flight bound (503 at once) for `work_paths`, headers, log, metrics."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, in_flight: InFlight, work_paths: Collection[str]) -> None:
        self.app, self.max_body_bytes, self.in_flight, self.work_paths = app, max_body_bytes, in_flight, work_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = request_id_from(headers.get(b"x-request-id"))
        token = REQUEST_ID.set(request_id)
        started, status = time.perf_counter(), [499]  # 499: the client left before a response began
        path, method = scope["path"], scope["method"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                extra = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
                if not path.startswith(_DOCS):
                    extra.append(_CSP)
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            if method in _BODY_METHODS:
                bounded = await self._bounded_body(headers, receive)
                if bounded is None:
                    metrics.REJECTED.labels("too_large").inc()
                    await _refuse(send_with_headers, path, 413, "too_large",
                                  f"the request body is over the limit of {self.max_body_bytes} bytes "
                                  "(RAG_API__MAX_BODY_BYTES): send a shorter question or fewer messages")
                    return
                receive = bounded
            if method == "POST" and path in self.work_paths:
                await self._admitted(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", None) or (path if path in self.work_paths else "unmatched")
            elapsed = time.perf_counter() - started
            metrics.REQUESTS.labels(route, method, str(status[0])).inc()
            metrics.REQUEST_SECONDS.labels(route).observe(elapsed)
            access.info("request", extra={"request_id": request_id, "method": method, "route": route, "status": status[0],
                                          "duration_ms": round(elapsed * 1000, 2),
                                          "caller": scope.get("state", {}).get("caller")})
            REQUEST_ID.reset(token)

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.in_flight.enter():
            metrics.REJECTED.labels("overload").inc()
            await _refuse(send, scope["path"], 503, "overloaded",
                          f"the service is answering {self.in_flight.limit} questions already "
                          "(RAG_API__MAX_IN_FLIGHT): retry in a second", retry_after="1")
            return
        metrics.IN_FLIGHT.set(self.in_flight.count)
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.leave()
            metrics.IN_FLIGHT.set(self.in_flight.count)

    async def _bounded_body(self, headers: dict[bytes, bytes], receive: Receive) -> Receive | None:
        """A receive that replays the body read here, or None when it is over the limit (read no further)."""
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left while sending
                return _replay([message], receive)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return None
            more = message.get("more_body", False)
        return _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}], receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """`messages` first, then the real receive (which later tells a streaming route the client hung up)."""

    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


async def _refuse(send: Send, path: str, status: int, kind: str, message: str, *, retry_after: str | None = None) -> None:
    body = json.dumps(error_body(status, kind, message, openai=openai_path(path))).encode()
    headers: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]
    if retry_after:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


