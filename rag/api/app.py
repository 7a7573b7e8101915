"""The FastAPI app factory: POST /ask, POST /feedback, the /v1 OpenAI routes, /admin, and the probes
GET /health, GET /ready and GET /metrics; OpenAPI docs at /docs.

Around every route (see rag/api/middleware.py and rag/api/security.py): an API key with the route's
scope, a rate limit per key, a body size limit, a bound on answers in flight, a request id, security
headers, an access log line and request metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute

from rag import metrics
from rag.api.admin_routes import install_admin_routes
from rag.api.errors import install_error_handlers, status_for
from rag.api.feedback_routes import install_feedback_routes
from rag.api.keys import KeyRing
from rag.api.limits import InFlight, RateLimiter
from rag.api.middleware import ServiceMiddleware
from rag.api.openai_routes import install_openai_routes
from rag.api.schemas import AskRequest, AskResponse, ErrorOut, HealthOut, ReadyOut
from rag.api.security import AUTH_ERRORS, KeyFirstRoute, require
from rag.api.state import current_runtime
from rag.conversations import new_conversation_id
from rag.errors import LLMError, RagError
from rag.factory import Runtime
from rag.pipeline import StreamEvent
from rag.settings import ApiSettings, AuthSettings
from rag.types import Turn

__all__ = ["WORK_PATHS", "create_app"]

log = logging.getLogger("rag.api")

RuntimeFactory = Callable[[], Runtime | Awaitable[Runtime]]
WORK_PATHS = frozenset({"/ask", "/ask/stream", "/v1/chat/completions"})  # what the in-flight bound counts
_VERSION = "0.1.0"
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in ((422, "Invalid question, top_k or filters, or a question over its length limit"),
                         (502, "The LLM server answered with an error"),
                         (503, "Index or LLM server unavailable, or too many answers in flight (Retry-After)"),
                         (504, "The LLM server timed out"))
}
_COMMON: dict[int | str, dict[str, Any]] = {
    **{status: {**doc, "model": ErrorOut} for status, doc in AUTH_ERRORS.items()},
    413: {"model": ErrorOut, "description": "The request body is over RAG_API__MAX_BODY_BYTES"},
}
_AUTH_OFF_WARNING = ("AUTHENTICATION IS OFF: anyone who can reach this port can ask, rate answers, read metrics "
                     "and roll the index back. For local use only; set RAG_AUTH__ENABLED=true and create keys "
                     "with `rag keys create` before exposing it.")


def create_app(runtime_factory: RuntimeFactory, *, keys: KeyRing, api: ApiSettings | None = None,
               limiter: RateLimiter | None = None, reload_interval_s: float = 0.0,
               served_model_name: str | None = None) -> FastAPI:
    """The app builds its runtime at start-up; if that fails, /ask and /ready say why (503).

    `keys` says who may call: `KeyRing.off()` lets anyone in (and the app warns loudly at start).
    With `reload_interval_s` > 0 it also watches the index folder: a new version published by
    `rag ingest` or `rag index rollback` is served without a restart, and an index that did
    not exist at start-up is picked up as soon as it appears.
    """
    api = api or ApiSettings()
    if limiter is None:
        defaults = AuthSettings()
        limiter = RateLimiter(defaults.rate_per_minute, defaults.burst)
    in_flight = InFlight(api.max_in_flight)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime, app.state.startup_error = None, None
        if not keys.enabled:
            log.warning(_AUTH_OFF_WARNING)
        await _start(app, runtime_factory)
        watcher = asyncio.create_task(_watch(app, runtime_factory, reload_interval_s)) if reload_interval_s else None
        yield
        if watcher is not None:
            watcher.cancel()
        if app.state.runtime is not None:
            await app.state.runtime.aclose()

    app = FastAPI(title="Support answers (RAG)", version=_VERSION, lifespan=lifespan,
                  description="Grounded, cited answers from the company's own knowledge.")
    app.state.keyring, app.state.limiter, app.state.api, app.state.in_flight = keys, limiter, api, in_flight
    app.state.started, app.state.ready_probe = time.monotonic(), None
    app.router.route_class = KeyFirstRoute  # routes below with require(scope) check the key before the body
    install_error_handlers(app)
    ask_scope, metrics_scope = [require("ask")], [require("metrics")]
    install_openai_routes(app, served_model_name=served_model_name or api.served_model_name,
                          dependencies=ask_scope, responses=_COMMON, max_messages=api.max_messages)
    install_feedback_routes(app, dependencies=[require("feedback")])
    install_admin_routes(app, dependencies=[require("admin")], responses=_COMMON)
    if api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=api.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"], max_age=600)
    app.add_middleware(ServiceMiddleware, max_body_bytes=api.max_body_bytes, in_flight=in_flight,
                       work_paths=WORK_PATHS)

    @app.post("/ask", response_model=AskResponse, dependencies=ask_scope, responses={**_ERRORS, 200: {
        "content": {"text/event-stream": {}}, "description": "The answer; with `stream: true`, server-sent events "
                                                             "as from /ask/stream"}})
    async def ask(body: AskRequest, request: Request) -> Any:
        """Answer a question from the index, with numbered citations; `stream: true` for SSE."""
        if body.stream:
            return await _stream(body, request)
        runtime = current_runtime(request)
        conversation, history = await _conversation(runtime, body)
        filters = body.filters.to_filters() if body.filters else None
        answer = asdict(await runtime.pipeline.ask(body.question, top_k=body.top_k, filters=filters, history=history))
        answer_id = await _remember(runtime, conversation, body.question, answer)
        return AskResponse.model_validate({**answer, "conversation_id": conversation, "answer_id": answer_id})

    @app.post("/ask/stream", dependencies=ask_scope, responses={**_ERRORS, 200: {
        "content": {"text/event-stream": {}}, "description": (
            "Server-sent events: `citations`, then `delta` (text as the model writes it), then `done` (the verified "
            "answer, decision, reason, confidence, removed sentences, citations with spans, timings, answer_id), "
            "or `error`.")}})
    async def ask_stream(body: AskRequest, request: Request) -> StreamingResponse:
        """Stream the answer as it is written; a client that hangs up cancels the LLM request."""
        return await _stream(body, request)

    @app.get("/health", response_model=HealthOut, tags=["probes"])
    async def health(request: Request) -> HealthOut:
        """Liveness: 200 while the process serves HTTP, whatever the index or the LLM server do."""
        return HealthOut(version=_VERSION, uptime_s=round(time.monotonic() - request.app.state.started, 1))

    @app.get("/ready", response_model=ReadyOut, tags=["probes"], responses={503: {"model": ReadyOut}})
    async def ready(request: Request) -> Any:
        """Readiness: 200 when the index is loaded and the LLM server answers (or, with extractive answers
        configured, while it is down: `degraded`); 503 with the reasons otherwise."""
        out = await _readiness(request.app)
        return JSONResponse(out.model_dump(), status_code=200 if out.status == "ready" else 503)

    @app.get("/metrics", tags=["probes"], dependencies=metrics_scope, response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def prometheus(request: Request) -> Response:
        """Requests by route and status, latency by stage, LLM tokens and failures, decisions, verification
        removals, answers in flight, rejected requests, the index version served."""
        runtime: Runtime | None = request.app.state.runtime
        if runtime is not None:
            metrics.set_index(runtime.index.version, len(runtime.index.vectors))
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    for route in app.routes:  # the routes behind a key document its refusals (and 413) too; routers got them above
        if isinstance(route, APIRoute) and route.dependencies:
            route.responses = {**_COMMON, **route.responses}
    return app


async def _readiness(app: FastAPI) -> ReadyOut:
    runtime: Runtime | None = app.state.runtime
    if runtime is None:
        return ReadyOut(status="not_ready", reasons=[str(app.state.startup_error or "starting: loading the index")])
    reachable, why = await _llm_probe(app, runtime)
    circuit, extractive = runtime.llm.state, runtime.pipeline.on_llm_failure == "extractive"
    reasons = [] if reachable else [f"the LLM server is not answering: {why}"]
    if circuit != "closed":
        reasons.append(f"the LLM circuit breaker is {circuit.replace('_', '-')}")
    degraded = bool(reasons) and extractive
    if degraded:
        reasons.append("answers are extractive (best passages, escalated) until it is back")
    return ReadyOut(
        status="ready" if not reasons or degraded else "not_ready", reasons=reasons,
        index_version=runtime.index.version, chunks=len(runtime.index.vectors),
        embedding_model=runtime.index.embedding_model, llm_model=runtime.llm.model, llm_base_url=runtime.llm.base_url,
        llm_reachable=reachable, llm_circuit=circuit, degraded=degraded, in_flight=app.state.in_flight.count,
        reload_error=runtime.reload_error)


async def _llm_probe(app: FastAPI, runtime: Runtime) -> tuple[bool, str]:
    """Whether the LLM server lists its models, probed at most every `ready_cache_s` (probes must stay cheap)."""
    cached = app.state.ready_probe
    if cached is not None and time.monotonic() - cached[0] < app.state.api.ready_cache_s:
        return cached[1], cached[2]
    try:
        await runtime.llm.models()
        result = (True, "")
    except LLMError as exc:
        result = (False, str(exc))
    app.state.ready_probe = (time.monotonic(), *result)
    return result


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
                answer_id = await _remember(runtime, conversation, question, event.data)
                event = StreamEvent("done", {**event.data, "conversation_id": conversation, "answer_id": answer_id})
            yield event
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def _remember(runtime: Runtime, conversation: str, question: str, answer: Mapping[str, Any]) -> str:
    """Store the turn (an answer as /ask gives it, or a stream's 'done' data) with what feedback on it will
    need later: the rewrite, the decision, the sources it cited and the index version; its answer id."""
    turn = Turn(question, answer["answer"])
    sources = list(dict.fromkeys(c["source"] for c in answer["citations"] if c["cited"]))
    stored = await anyio.to_thread.run_sync(lambda: runtime.conversations.append(
        conversation, turn, standalone=answer["standalone_question"], decision=answer["decision"], sources=sources,
        index_version=answer["index_version"]))
    return stored.answer_id


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

