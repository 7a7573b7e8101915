"""The one place where core errors become HTTP status codes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rag.errors import (
    ConfigError,
    EmbeddingError,
    IndexFolderError,
    InputError,
    LLMResponseError,
    LLMTimeoutError,
    LLMUnavailableError,
    NotFoundError,
    NotReadyError,
    RagError,
)

__all__ = ["error_response", "install_error_handlers", "status_for", "validation_message"]

log = logging.getLogger("rag.api")

_STATUS: tuple[tuple[type[RagError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),  # before InputError, its parent
    (InputError, 422, "invalid_request"),
    (NotReadyError, 503, "starting"),
    (IndexFolderError, 503, "index_unavailable"),
    (LLMUnavailableError, 503, "llm_unavailable"),
    (LLMTimeoutError, 504, "llm_timeout"),
    (LLMResponseError, 502, "llm_error"),
    (EmbeddingError, 500, "embedding_error"),
    (ConfigError, 500, "config_error"),
)


def status_for(exc: RagError) -> tuple[int, str]:
    for kind, status, name in _STATUS:
        if isinstance(exc, kind):
            return status, name
    return 500, "internal_error"


def error_response(status: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)


def validation_message(exc: RequestValidationError) -> str:
    """Every problem of a request body as "field.path: what is wrong", one line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc'] if p != 'body') or 'body'}: {error['msg']}" for error in exc.errors()
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError) -> JSONResponse:
        status, kind = status_for(exc)
        log.warning("%s %s -> %d %s: %s", request.method, request.url.path, status, kind, exc)
        return error_response(status, kind, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", validation_message(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; the server log has the details")
