"""The runtime the app serves, as the route modules reach it (kept apart so they need not import app.py)."""

from __future__ import annotations

from fastapi import Request

from rag.errors import NotReadyError
from rag.factory import Runtime

__all__ = ["current_runtime"]


def current_runtime(request: Request) -> Runtime:
    """The serving runtime; the start-up error, or NotReadyError (503) while it is still being built."""
    runtime: Runtime | None = request.app.state.runtime
    if runtime is None:
        raise request.app.state.startup_error or NotReadyError("the service is still starting; retry shortly")
    return runtime
