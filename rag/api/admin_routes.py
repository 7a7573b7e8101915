"""The operators' routes, behind the `admin` scope: index versions (list, reload now, roll back) and the
feedback export."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.params import Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from rag.api.schemas import Day, ErrorOut
from rag.api.security import KeyFirstRoute
from rag.api.state import current_runtime
from rag.errors import IndexNotFoundError, NotFoundError
from rag.feedback import Rating

__all__ = ["install_admin_routes"]


class VersionOut(BaseModel):
    id: str
    created_at: str
    chunks: int
    documents: int
    parent: str | None
    current: bool


class IndexOut(BaseModel):
    served: str = Field(description="The version this process answers from")
    current: str | None = Field(description="The version the folder's CURRENT pointer names")
    versions: list[VersionOut] = Field(description="Kept versions, oldest first")
    reload_error: str | None = None


class SwitchOut(BaseModel):
    before: str | None
    served: str
    changed: bool


class RollbackIn(BaseModel):
    version: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$",
                                description="The version to make current; leave it out for the previous one")


_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such version, or nothing older to roll back to"},
    409: {"model": ErrorOut, "description": "An ingestion or rollback holds the index folder"},
    503: {"model": ErrorOut, "description": "The service is still starting, or the version cannot be opened"},
}


def install_admin_routes(app: FastAPI, *, dependencies: Sequence[Depends] = (),
                         responses: dict[int | str, dict[str, Any]] | None = None) -> None:
    router = APIRouter(prefix="/admin", tags=["admin"], route_class=KeyFirstRoute,
                       responses={**(responses or {}), **_ERRORS})
    deps = list(dependencies)  # on each route, where KeyFirstRoute finds them

    @router.get("/index", response_model=IndexOut, dependencies=deps)
    async def index(request: Request) -> IndexOut:
        """The versions kept, the one served and the folder's current one."""
        runtime = current_runtime(request)
        versions = await anyio.to_thread.run_sync(runtime.folder.versions)
        return IndexOut(served=runtime.index.version, current=runtime.folder.current(), reload_error=runtime.reload_error,
                        versions=[VersionOut(**asdict(v)) for v in versions])

    @router.post("/index/reload", response_model=SwitchOut, dependencies=deps)
    async def reload(request: Request) -> SwitchOut:
        """Serve the folder's current version now, without waiting for the watcher; requests in flight finish
        on the version they started with."""
        runtime = current_runtime(request)
        before = runtime.index.version
        changed = await anyio.to_thread.run_sync(runtime.reload_if_changed)
        return SwitchOut(before=before, served=runtime.index.version, changed=changed)

    @router.post("/index/rollback", response_model=SwitchOut, dependencies=deps)
    async def rollback(body: RollbackIn, request: Request) -> SwitchOut:
        """Make an older version current (the previous one by default) and serve it at once."""
        runtime = current_runtime(request)
        before = runtime.index.version
        try:
            await anyio.to_thread.run_sync(lambda: runtime.folder.rollback(body.version))
        except IndexNotFoundError as exc:
            raise NotFoundError(str(exc)) from exc
        changed = await anyio.to_thread.run_sync(runtime.reload_if_changed)
        return SwitchOut(before=before, served=runtime.index.version, changed=changed)

    @router.get("/feedback", response_class=StreamingResponse, dependencies=deps, responses={200: {
        "content": {"application/x-ndjson": {}}, "description": "One feedback record per line, oldest first"}})
    async def feedback(request: Request, rating: Rating | None = None, since: Day | None = None) -> StreamingResponse:
        """Export ratings as JSON lines (question, answer, decision, cited sources, earlier turns, comment,
        correction), optionally only `up` or `down` ones, or those since a day (UTC)."""
        runtime = current_runtime(request)
        records = await anyio.to_thread.run_sync(lambda: runtime.feedback.list(rating=rating, since=since))

        def lines() -> Iterator[str]:
            for record in records:
                yield json.dumps(asdict(record), ensure_ascii=False) + "\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson",
                                 headers={"Content-Disposition": 'attachment; filename="feedback.jsonl"'})

    app.include_router(router)
