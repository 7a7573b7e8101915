"""The one place where core errors become HTTP status codes."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rag.errors import (
    ConfigError,
    EmbeddingError,
    IndexFolderError,
    IndexLockedError,
    InputError,
    LLMResponseError,
    LLMTimeoutError,
    LLMUnavailableError,
    NotFoundError,
    NotReadyError,
    RagError,
    StorageError,
)

__all__ = ["ApiError", "error_body", "error_response", "install_error_handlers", "openai_path", "status_for",
           "validation_message"]

log = logging.getLogger("rag.api")

_UNDECODABLE = "There was an error parsing the body"  # FastAPI's 400 for a body json.loads raises other than JSONDecodeError

_STATUS: tuple[tuple[type[RagError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),  # before InputError, its parent
    (InputError, 422, "invalid_request"),
    (NotReadyError, 503, "starting"),
    (IndexLockedError, 409, "index_locked"),  # before IndexFolderError, its parent
    (IndexFolderError, 503, "index_unavailable"),
    (LLMUnavailableError, 503, "llm_unavailable"),
    (LLMTimeoutError, 504, "llm_timeout"),
    (LLMResponseError, 502, "llm_error"),
    (EmbeddingError, 500, "embedding_error"),
    (ConfigError, 500, "config_error"),
    (StorageError, 507, "storage_error"),
)


class ApiError(Exception):
    """A request refused by the service's own rules (auth, limits) before or instead of any work."""

    def __init__(self, status: int, kind: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}


def status_for(exc: RagError) -> tuple[int, str]:
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "internal_error"


def openai_path(path: str) -> bool:
    """Whether errors on this path take OpenAI's shape (the /v1 routes, for OpenAI clients)."""
    return path.startswith("/v1/")


def error_body(status: int, kind: str, message: str, *, openai: bool = False) -> dict[str, Any]:
    """{"error": {"type", "message"}}; in OpenAI's shape (with "param" and "code") for the /v1 routes."""
    body: dict[str, Any] = {"type": kind, "message": message}
    if openai:
        body |= {"param": None, "code": status}
    return {"error": body}


def error_response(status: int, kind: str, message: str, *, headers: Mapping[str, str] | None = None,
                   openai: bool = False) -> JSONResponse:
    return JSONResponse(error_body(status, kind, message, openai=openai), status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """Every problem of a request body as "field.path: what is wrong", one line."""
    return "; ".join(_problem(error) for error in exc.errors())


def _problem(error: Mapping[str, Any]) -> str:
    if error["type"] == "json_invalid":  # its loc is a character offset, not a field
        return (f"the body is not valid JSON (at character {error['loc'][-1]}: {error.get('ctx', {}).get('error')}): "
                "send a JSON object")
    return f"{'.'.join(str(p) for p in error['loc'] if p != 'body') or 'body'}: {error['msg']}"


def _http_refusal(request: Request, exc: HTTPException) -> tuple[int, str, str]:
    """Starlette's and FastAPI's own refusals (no such route, a method the route lacks, a body that is not
    UTF-8 or nests too deep to decode) as status, type and a message that says what to do."""
    if exc.status_code == 400 and exc.detail == _UNDECODABLE:
        status, kind = (400, "invalid_request_error") if openai_path(request.url.path) else (422, "invalid_request")
        return status, kind, ("the body cannot be decoded: send a JSON object encoded as UTF-8 (invalid bytes, "
                              "numbers of thousands of digits and nesting hundreds deep are refused)")
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:  # the router's, not a route's
        return 404, "not_found", f"no route {where}: GET /docs lists the routes"
    if exc.status_code == 405 and exc.detail == HTTPStatus.METHOD_NOT_ALLOWED.phrase:
        allowed = (exc.headers or {}).get("Allow", "another method")
        return 405, "method_not_allowed", f"{where} is not allowed: this route takes {allowed}"
    return exc.status_code, "http_error", str(exc.detail)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _refused(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.kind, exc.message, headers=exc.headers,
                              openai=openai_path(request.url.path))

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError) -> JSONResponse:
        status, kind = status_for(exc)
        log.warning("%s %s -> %d %s: %s", request.method, request.url.path, status, kind, exc)
        return error_response(status, kind, str(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        status, kind, message = _http_refusal(request, exc)
        return error_response(status, kind, message, headers=exc.headers, openai=openai_path(request.url.path))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_message(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; the server log has the details",
                              openai=openai_path(request.url.path))
