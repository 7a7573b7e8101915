"""The service as an OpenAI-compatible "model", for the openai SDK, LangChain's `ChatOpenAI` and chat UIs.

**POST /v1/chat/completions** takes OpenAI's chat-completions body.

- `model` must be the name GET /v1/models lists (the served model name, `rag` unless the service was
  started with another); any other name is a 404.
- `messages`: the last user message is the question. Earlier user messages, each with the assistant
  message that follows it, are the conversation: a follow-up ("and how long does it charge?") is rewritten
  to stand alone before retrieval. The service keeps no history here; send the whole chat each time.
  **System and developer messages are ignored**, so a client cannot override the grounding instructions;
  tool messages too. Content is a string or a list of `{"type": "text", "text": ...}` parts; a question
  with image, audio or file parts is refused (400). A "Sources:" list at the end of an assistant message
  (as this service writes it) is left out of the history.
- A request without a user message, or whose last message is not the user's, is a 400.
- `stream` and `stream_options.include_usage` work as in OpenAI's API. `n` must be 1. The sampling
  parameters (temperature, top_p, max_tokens, stop, seed, user, ...) are accepted and ignored: the
  service's own settings apply. Unknown fields are ignored.
- Optional RAG fields: `filters` (as in POST /ask: doc_type, product, language, source, effective_on)
  and `top_k` (passages given to the model).

**The answer** is a `chat.completion`: `choices[0].message.content` is the answer followed, when it cites
passages, by a sources list, one line per cited passage:

    <answer> [1]

    Sources:
    [1] Returns policy — policies/returns.md (Return window)

Escalations and clarifying questions carry no sources list. `usage` is an **estimate** (the service's
`estimate_tokens`, not the LLM server's count): prompt tokens are the question and conversation plus,
when the model was asked, the passages given to it; completion tokens are the content. An extra top-level
field `rag` carries what POST /ask returns beside the answer: `citations` (every passage shown to the model,
`cited` flagging those the answer refers to), `decision` (answer | clarify | escalate), `reason`,
`confidence`, `removed`, `options`, `standalone_question`, `prompt`, `index_version` and `timings_ms`.
The openai SDK gives it as `completion.model_extra["rag"]`.

**Streamed** (`stream: true`): server-sent events in OpenAI's chunk format. A first chunk with
`delta: {"role": "assistant", "content": ""}`, then one chunk per verified sentence (text is never taken
back), then one with the sources list (if any), then a chunk with `finish_reason: "stop"` and the `rag`
field, then (with `include_usage`) a chunk with `usage` and empty `choices`, then `data: [DONE]`. The
response starts once the first sentence is ready, so retrieval errors and an LLM server that is down still
get a proper status code; an error after that is a `data: {"error": {...}}` event, then `data: [DONE]`.
A client that hangs up cancels the LLM request.

**Errors** have OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, `code` being the HTTP
status: 400 `invalid_request_error` (a malformed body, a bad question, `n`, `top_k` or `filters`), 404
`not_found_error` (an unknown model), 502 `llm_error`, 503 `llm_unavailable` or `index_unavailable`,
504 `llm_timeout`.

**GET /v1/models** lists the one model: `{"object": "list", "data": [{"id": "rag", "object": "model", ...}]}`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from rag.api.errors import ApiError, error_response, status_for, validation_message
from rag.api.openai_schemas import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionRequest,
    ChatMessageIn,
    ChatMessageOut,
    ModelCard,
    ModelList,
    OpenAIErrorOut,
    RagExtra,
    Usage,
)
from rag.api.security import KeyFirstRoute
from rag.api.state import current_runtime
from rag.errors import RagError
from rag.pipeline import RagPipeline, StreamEvent
from rag.prompting import estimate_tokens
from rag.types import Filters, Turn

__all__ = ["OpenAIRequestError", "install_openai_routes", "openai_router"]

log = logging.getLogger("rag.api")

SOURCES_HEADING = "\n\nSources:\n"
_CHAT = ("user", "assistant")
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorOut, "description": text}
    for status, text in ((400, "Invalid body, question, n, top_k or filters"), (404, "No model of that name"),
                         (502, "The LLM server answered with an error"), (503, "Index or LLM server unavailable"),
                         (504, "The LLM server timed out"))
}
_STREAM_DOC = {"content": {"text/event-stream": {}}, "description": "With `stream: true`: OpenAI's chunks, then [DONE]."}


class OpenAIRequestError(Exception):
    """A request the /v1 routes refuse, rendered in OpenAI's error shape."""

    def __init__(self, message: str, *, status: int = 400, kind: str = "invalid_request_error",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.param = status, kind, param


@dataclass(frozen=True, slots=True)
class _Asked:
    """What the pipeline is asked: the question, the conversation before it, and the RAG options."""

    question: str
    history: list[Turn]
    filters: Filters | None
    top_k: int | None

    @property
    def prompt_tokens(self) -> int:
        return estimate_tokens(self.question) + sum(estimate_tokens(t.question + t.answer) for t in self.history)


class _OpenAIRoute(KeyFirstRoute):
    """Errors on the /v1 routes in OpenAI's shape, so SDKs and chat UIs show the message; /ask keeps its own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _error(OpenAIRequestError(validation_message(exc), param=_param(exc)))
            except OpenAIRequestError as exc:
                return _error(exc)
            except ApiError as exc:  # auth and rate limits: the same message, in OpenAI's shape
                return error_response(exc.status, exc.kind, exc.message, headers=exc.headers, openai=True)
            except RagError as exc:
                error = _openai_error(exc)
                log.warning("%s %s -> %d %s: %s", request.method, request.url.path, error.status, error.kind, exc)
                return _error(error)

        return handle


def openai_router(served_model_name: str = "rag", *, dependencies: Sequence[params.Depends] = (),
                  responses: dict[int | str, dict[str, Any]] | None = None, max_messages: int = 40) -> APIRouter:
    """GET /v1/models and POST /v1/chat/completions, answering as the model `served_model_name`."""
    router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"], route_class=_OpenAIRoute, responses=responses)
    deps = list(dependencies)  # on each route, where KeyFirstRoute finds them
    created = int(time.time())

    @router.get("/models", response_model=ModelList, dependencies=deps)
    async def models() -> ModelList:
        """The one model this service is: pass its id as `model`."""
        return ModelList(data=[ModelCard(id=served_model_name, created=created)])

    @router.post("/chat/completions", response_model=ChatCompletion, description=__doc__ or "", dependencies=deps,
                 responses={**_ERRORS, 200: _STREAM_DOC})
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        """Answer the last user message from the index, as an OpenAI chat completion with sources."""
        _check(body, served_model_name, max_messages)
        asked = _asked(body)
        pipeline = current_runtime(request).pipeline
        if body.stream:
            return await _streamed(pipeline, asked, _ChunkWriter(served_model_name, asked, body.include_usage()))
        answer = await pipeline.ask(asked.question, top_k=asked.top_k, filters=asked.filters, history=asked.history)
        return _completion(served_model_name, asked, RagExtra.model_validate(asdict(answer)), answer.answer)

    return router


def install_openai_routes(app: FastAPI, *, served_model_name: str = "rag",
                          dependencies: Sequence[params.Depends] = (),
                          responses: dict[int | str, dict[str, Any]] | None = None, max_messages: int = 40) -> None:
    """Serve the OpenAI-compatible routes on `app` (see this module's docstring for the contract)."""
    app.include_router(openai_router(served_model_name, dependencies=dependencies, responses=responses,
                                     max_messages=max_messages))


def _check(body: ChatCompletionRequest, served: str, max_messages: int) -> None:
    if len(body.messages) > max_messages:
        raise OpenAIRequestError(f"{len(body.messages)} messages sent; the limit is {max_messages} "
                                 "(RAG_API__MAX_MESSAGES): send the latest turns of the conversation only",
                                 param="messages")
    if body.model != served:
        raise OpenAIRequestError(f"The model `{body.model}` does not exist: this service answers as `{served}` "
                                 f"(GET /v1/models); send model={served!r}.",
                                 status=404, kind="not_found_error", param="model")
    if body.n != 1:
        raise OpenAIRequestError(f"n={body.n} is not supported: this service gives one answer per request (n=1)",
                                 param="n")


def _asked(body: ChatCompletionRequest) -> _Asked:
    chat = [m for m in body.messages if m.role in _CHAT]
    if not any(m.role == "user" for m in chat):
        raise OpenAIRequestError('no user message: send the question as a message with role "user" '
                                 "(system and developer messages are ignored)", param="messages")
    if chat[-1].role != "user":
        raise OpenAIRequestError(f'the last message is the {chat[-1].role}\'s: end `messages` with the question, '
                                 'role "user"', param="messages")
    filters = body.filters.to_filters() if body.filters else None
    return _Asked(_question(chat[-1]), _history(chat[:-1]), filters, body.top_k)


def _question(message: ChatMessageIn) -> str:
    if others := message.other_parts():
        raise OpenAIRequestError(f"the question has {', '.join(sorted(set(others)))} content: this service "
                                 "answers text only; send the question as text", param="messages")
    text = message.text().strip()
    if not text:
        raise OpenAIRequestError("the last user message is empty: put the customer's question in it",
                                 param="messages")
    return text


def _history(chat: Sequence[ChatMessageIn]) -> list[Turn]:
    """Each user message (consecutive ones joined) with the assistant's reply, if one follows, as a turn."""
    turns: list[Turn] = []
    asked: list[str] = []
    for message in chat:
        text = message.text().strip()
        if message.role == "user":
            asked += [text] if text else []
        elif asked:
            turns.append(Turn("\n".join(asked), text.split(SOURCES_HEADING, 1)[0].strip()))
            asked = []
    return turns + [Turn(question, "") for question in asked]


def _completion(model: str, asked: _Asked, rag: RagExtra, answer: str) -> ChatCompletion:
    content = answer + _sources_text(rag)
    return ChatCompletion(id=_completion_id(), created=int(time.time()), model=model,
                          choices=[ChatChoice(message=ChatMessageOut(content=content))],
                          usage=_usage(asked, rag, content), rag=rag)


def _sources_text(rag: RagExtra) -> str:
    """The sources list appended to an answer: one line per cited passage; "" when nothing is cited."""
    cited = [c for c in rag.citations if c.cited] if rag.decision == "answer" else []
    lines = []
    for c in cited:
        where = ", ".join(part for part in (c.section, f"p. {c.page}" if c.page is not None else "") if part)
        lines.append(f"[{c.n}] {c.title} — {c.source}" + (f" ({where})" if where else ""))
    return SOURCES_HEADING + "\n".join(lines) if lines else ""


def _usage(asked: _Asked, rag: RagExtra, content: str) -> Usage:
    """Estimated: the passages count only when the model was asked (not for an escalation before it)."""
    passages = sum(estimate_tokens(c.text) for c in rag.citations) if "generate" in rag.timings_ms else 0
    return Usage.of(asked.prompt_tokens + passages, estimate_tokens(content))


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


async def _streamed(pipeline: RagPipeline, asked: _Asked, writer: _ChunkWriter) -> StreamingResponse:
    events = pipeline.stream(asked.question, top_k=asked.top_k, filters=asked.filters, history=asked.history,
                             unit="sentence")
    head = await _opening(events)  # errors up to the first sentence surface here, as a status code
    return StreamingResponse(_sse_chunks(writer, head, events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _opening(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    """The events up to and including the first with text for the reader (a sentence, or 'done')."""
    head: list[StreamEvent] = []
    while not head or head[-1].type == "citations":
        event = await anext(events, None)
        if event is None:
            break
        head.append(event)
    return head


async def _sse_chunks(writer: _ChunkWriter, head: list[StreamEvent],
                      rest: AsyncIterator[StreamEvent]) -> AsyncGenerator[str, None]:
    """The chunks as SSE, then [DONE]; closing `rest` on the way out (a client hung up) closes the LLM stream."""
    try:
        yield writer.start()
        for event in head:
            for chunk in writer.on(event):
                yield chunk
        async for event in rest:
            for chunk in writer.on(event):
                yield chunk
    except RagError as exc:
        yield _data(_body(_openai_error(exc)))
    finally:
        close = getattr(rest, "aclose", None)
        if close is not None:
            await close()
    yield "data: [DONE]\n\n"


class _ChunkWriter:
    """Turns the pipeline's stream events into `chat.completion.chunk` SSE lines of one completion."""

    def __init__(self, model: str, asked: _Asked, include_usage: bool) -> None:
        self._model, self._asked, self._include_usage = model, asked, include_usage
        self._id, self._created, self._content = _completion_id(), int(time.time()), ""

    def start(self) -> str:
        return self._chunk({"role": "assistant", "content": ""})

    def on(self, event: StreamEvent) -> list[str]:
        if event.type == "delta":
            return [self._text(str(event.data["text"]))]
        if event.type == "done":
            return self._finish(RagExtra.model_validate(event.data))
        return []

    def _text(self, text: str) -> str:
        self._content += text
        return self._chunk({"content": text})

    def _finish(self, rag: RagExtra) -> list[str]:
        chunks = [self._text(sources)] if (sources := _sources_text(rag)) else []
        chunks.append(self._chunk({}, finish_reason="stop", rag=rag.model_dump()))
        if self._include_usage:
            chunks.append(self._payload(choices=[], usage=_usage(self._asked, rag, self._content).model_dump()))
        return chunks

    def _chunk(self, delta: dict[str, str], finish_reason: str | None = None, **extra: Any) -> str:
        return self._payload(choices=[{"index": 0, "delta": delta, "finish_reason": finish_reason}], **extra)

    def _payload(self, **fields: Any) -> str:
        usage = {"usage": None} if self._include_usage else {}
        return _data({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                      "model": self._model, **usage, **fields})


def _openai_error(exc: RagError) -> OpenAIRequestError:
    """A core error as the /v1 routes report it: input problems are 400s, as OpenAI's API has them."""
    status, kind = status_for(exc)
    if status == 422:
        status, kind = 400, "invalid_request_error"
    return OpenAIRequestError(str(exc), status=status, kind=kind)


def _body(exc: OpenAIRequestError) -> dict[str, Any]:
    return OpenAIErrorOut.of(exc.status, exc.kind, str(exc), exc.param)


def _error(exc: OpenAIRequestError) -> JSONResponse:
    return JSONResponse(_body(exc), status_code=exc.status)


def _param(exc: RequestValidationError) -> str | None:
    """The first offending field, as OpenAI's `param` ("messages.0.role")."""
    for error in exc.errors():
        if error["type"] == "json_invalid":  # its loc is a character offset, not a field
            return None
        path = [str(p) for p in error["loc"] if p != "body"]
        return ".".join(path) or None
    return None


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
