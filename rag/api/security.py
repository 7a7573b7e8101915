"""Who may call which route: an API key with the route's scope, within its rate limit.

Every route but the probes (/health, /ready) and the docs depends on `require(scope)`, and is a
`KeyFirstRoute`, so the key is checked before the body is even read. A key is read from
`Authorization: Bearer <key>` (what OpenAI clients send) or `X-API-Key: <key>`.
Missing or unknown key: 401; a key without the scope: 403; over its rate: 429 with Retry-After.
With auth switched off (`KeyRing.off()`), callers are limited by client address instead.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from rag import metrics
from rag.api.errors import ApiError
from rag.api.keys import ApiKey, KeyRing, Scope
from rag.api.limits import RateLimiter

__all__ = ["AUTH_ERRORS", "KeyFirstRoute", "admit", "require"]

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>` (as OpenAI clients send it)")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <API key>`")
_HOW = "send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' (keys: `rag keys create`)"

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API key, or one the service does not know"},
    403: {"description": "The API key lacks the scope this route needs"},
    429: {"description": "The key's rate limit is reached; the Retry-After header says when to retry"},
}


class _Admit:
    """The dependency `require(scope)` returns: documents the key schemes in OpenAPI, and admits the caller
    unless `KeyFirstRoute` already did (each request is checked, and counted against its rate, once)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    async def __call__(self, request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                       header: Annotated[str | None, Depends(_header)]) -> str:
        caller: str | None = getattr(request.state, "caller", None)
        return caller if caller is not None else admit(request, self.scope)


def require(scope: Scope) -> Any:
    """A dependency admitting callers whose key has `scope` (admin has every scope), within their rate."""
    return Depends(_Admit(scope))


class KeyFirstRoute(APIRoute):
    """A route that checks the key of `require(scope)` among its dependencies before FastAPI reads the body:
    a caller without a key gets 401 whatever it sends, never a word about the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        scope = next((d.dependency.scope for d in self.dependencies if isinstance(d.dependency, _Admit)), None)
        if scope is None:
            return handler

        async def handle(request: Request) -> Response:
            admit(request, scope)
            return await handler(request)

        return handle


def admit(request: Request, scope: Scope) -> str:
    """The caller's name, once its key, its scope and its rate are checked; ApiError 401, 403 or 429 if not."""
    keys: KeyRing = request.app.state.keyring
    limiter: RateLimiter = request.app.state.limiter
    rate = None
    if keys.enabled:
        key = _caller(keys, _presented(request))
        if not key.allows(scope):
            raise _refuse(403, "forbidden", f"the API key {key.name!r} lacks the {scope!r} scope that "
                                            f"{request.url.path} needs: use a key with it (`rag keys create "
                                            f"--scopes {scope}`)")
        caller, rate = key.name, key.rate_per_minute
    else:
        caller = f"address {request.client.host if request.client else 'unknown'}"
    wait = limiter.take(caller, rate)
    if wait is not None:
        per_minute = rate or limiter.rate_per_minute
        raise _refuse(429, "rate_limited", f"rate limit of {per_minute:g} requests per minute reached for "
                                           f"{caller if not keys.enabled else repr(caller)}: retry in "
                                           f"{RateLimiter.retry_after(wait)} s",
                      {"Retry-After": RateLimiter.retry_after(wait)})
    request.state.caller = caller
    return caller


def _presented(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>`, else from `X-API-Key`."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("x-api-key") or None


def _caller(keys: KeyRing, presented: str | None) -> ApiKey:
    if not presented:
        raise _refuse(401, "unauthenticated", f"an API key is required: {_HOW}", {"WWW-Authenticate": "Bearer"})
    key = keys.find(presented)
    if key is None:
        raise _refuse(401, "unauthenticated", f"the API key is not valid (mistyped or revoked): {_HOW}",
                      {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return key


def _refuse(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> ApiError:
    metrics.REJECTED.labels({401: "unauthenticated", 403: "forbidden", 429: "rate_limit"}[status]).inc()
    return ApiError(status, kind, message, headers=headers)
