"""The FastAPI app factory: POST /ask, POST /feedback, GET /health, OpenAPI docs at /docs."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rag.api.errors import install_error_handlers, status_for
from rag.api.feedback_routes import install_feedback_routes
from rag.api.openai_routes import install_openai_routes
from rag.api.schemas import AskRequest, AskResponse, ErrorOut, HealthOut
from rag.api.state import current_runtime
from rag.conversations import new_conversation_id
from rag.errors import LLMError, RagError
from rag.factory import Runtime
from rag.pipeline import StreamEvent
from rag.types import Turn

__all__ = ["create_app"]

log = logging.getLogger("rag.api")

RuntimeFactory = Callable[[], Runtime | Awaitable[Runtime]]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in ((422, "Invalid question, top_k or filters"), (502, "The LLM server answered with an error"),
                         (503, "Index or LLM server unavailable"), (504, "The LLM server timed out"))
}


def create_app(runtime_factory: RuntimeFactory, *, reload_interval_s: float = 0.0,
               served_model_name: str = "rag") -> FastAPI:
    """The app builds its runtime at start-up; if that fails, /ask and /health say why (503).

    With `reload_interval_s` > 0 it also watches the index folder: a new version published by
    `rag ingest` or `rag index rollback` is served without a restart, and an index that did
    not exist at start-up is picked up as soon as it appears.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime, app.state.startup_error = None, None
        await _start(app, runtime_factory)
        watcher = asyncio.create_task(_watch(app, runtime_factory, reload_interval_s)) if reload_interval_s else None
        yield
        if watcher is not None:
            watcher.cancel()
        if app.state.runtime is not None:
            await app.state.runtime.aclose()

    app = FastAPI(title="Support answers (RAG)", version="0.1.0", lifespan=lifespan,
                  description="Grounded, cited answers from the company's own knowledge.")
    install_error_handlers(app)
    install_openai_routes(app, served_model_name=served_model_name)  # /v1: the service as an OpenAI model
    install_feedback_routes(app)  # /feedback: thumbs up/down on an answer of a conversation

    @app.post("/ask", response_model=AskResponse, responses=_ERRORS)
    async def ask(body: AskRequest, request: Request) -> Any:
        """Answer a question from the index, with numbered citations; `stream: true` for SSE."""
        if body.stream:
            return await _stream(body, request)
        runtime = current_runtime(request)
        conversation, history = await _conversation(runtime, body)
        filters = body.filters.to_filters() if body.filters else None
        answer = asdict(await runtime.pipeline.ask(body.question, top_k=body.top_k, filters=filters, history=history))
        await _remember(runtime, conversation, body.question, answer)
        return AskResponse.model_validate({**answer, "conversation_id": conversation})

    @app.post("/ask/stream", responses={**_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": (
        "Server-sent events: `citations`, then `delta` (text as the model writes it), then `done` (the verified "
        "answer, decision, reason, confidence, removed sentences, citations with spans, timings), or `error`.")}})
    async def ask_stream(body: AskRequest, request: Request) -> StreamingResponse:
        """Stream the answer as it is written; a client that hangs up cancels the LLM request."""
        return await _stream(body, request)

    @app.get("/health", response_model=HealthOut, responses={503: {"model": HealthOut}})
    async def health(request: Request, llm: bool = False) -> Any:
        """Index status; `?llm=true` also probes the LLM server."""
        runtime: Runtime | None = request.app.state.runtime
        if runtime is None:
            reason = str(request.app.state.startup_error or "starting")
            return JSONResponse(HealthOut(status="unavailable", reason=reason).model_dump(), status_code=503)
        out = HealthOut(
            status="ok", index_version=runtime.index.version, chunks=len(runtime.index.vectors),
            embedding_model=runtime.index.embedding_model, llm_model=runtime.llm.model,
            llm_base_url=runtime.llm.base_url, reload_error=runtime.reload_error,
        )
        if llm:
            out.llm_reachable = await _llm_reachable(runtime)
        return out

    return app


async def _stream(body: AskRequest, request: Request) -> StreamingResponse:
    runtime = current_runtime(request)
    conversation, history = await _conversation(runtime, body)
    filters = body.filters.to_filters() if body.filters else None
    events = _remembered(runtime, conversation, body.question, runtime.pipeline.stream(
        body.question, top_k=body.top_k, filters=filters, history=history, unit=body.stream_unit))
    first = await anext(events)  # retrieval errors surface here, as a proper status code
    return StreamingResponse(_sse(first, events), media_type="text/event-stream")


async def _conversation(runtime: Runtime, body: AskRequest) -> tuple[str, list[Turn]]:
    """The request's conversation id (a new one when it has none) and the history stored under it."""
    conversation = body.conversation_id or new_conversation_id()
    return conversation, await anyio.to_thread.run_sync(runtime.conversations.history, conversation)


async def _remembered(runtime: Runtime, conversation: str, question: str,
                      events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The events, with the conversation id in 'done' and the turn stored once it is done."""
    try:
        async for event in events:
            if event.type == "done":
                await _remember(runtime, conversation, question, event.data)
                event = StreamEvent("done", {**event.data, "conversation_id": conversation})
            yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def _remember(runtime: Runtime, conversation: str, question: str, answer: Mapping[str, Any]) -> None:
    """Store the turn (an answer as /ask gives it, or a stream's 'done' data) with what feedback on it will
    need later: the rewrite, the decision, the sources it cited and the index version."""
    turn = Turn(question, answer["answer"])
    sources = list(dict.fromkeys(c["source"] for c in answer["citations"] if c["cited"]))
    await anyio.to_thread.run_sync(lambda: runtime.conversations.append(
        conversation, turn, standalone=answer["standalone_question"], decision=answer["decision"], sources=sources,
        index_version=answer["index_version"]))


async def _start(app: FastAPI, runtime_factory: RuntimeFactory) -> None:
    try:
        built = await anyio.to_thread.run_sync(runtime_factory)  # loading models must not block the loop
        app.state.runtime = await built if isinstance(built, Awaitable) else built
        app.state.startup_error = None
    except RagError as exc:
        if str(exc) != str(app.state.startup_error):
            log.error("service not ready: %s", exc)
        app.state.startup_error = exc


async def _watch(app: FastAPI, runtime_factory: RuntimeFactory, interval_s: float) -> None:
    """Poll the index folder; switch versions off the event loop so requests keep flowing."""
    reported: str | None = None
    while True:
        await asyncio.sleep(interval_s)
        runtime: Runtime | None = app.state.runtime
        if runtime is None:
            await _start(app, runtime_factory)
            continue
        before = runtime.index.version
        try:
            if await anyio.to_thread.run_sync(runtime.reload_if_changed):
                log.info("index version %s -> %s", before, runtime.index.version)
        except RagError as exc:
            if str(exc) != reported:
                log.error("keeping index version %s: %s", before, runtime.reload_error)
            reported = str(exc)


async def _llm_reachable(runtime: Runtime) -> bool:
    try:
        await runtime.llm.models()
    except LLMError:
        return False
    return True


async def _sse(first: StreamEvent, rest: AsyncIterator[StreamEvent]) -> AsyncIterator[str]:
    """The events as SSE; closing `rest` on the way out (a client hung up) closes the LLM stream."""
    try:
        yield _event(first)
        async for event in rest:
            yield _event(event)
    except RagError as exc:
        status, kind = status_for(exc)
        yield _event(StreamEvent("error", {"type": kind, "status": status, "message": str(exc)}))
    finally:
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()


def _event(event: StreamEvent) -> str:
    return f"event: {event.type}\ndata: {json.dumps(event.data, ensure_ascii=False)}\n\n"

