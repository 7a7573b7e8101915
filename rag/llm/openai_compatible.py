"""The OpenAI-compatible client (vLLM first): the only module that imports openai.

What each misbehaviour becomes. "Retried" means sent once more, after `retry_backoff_s`
(or the server's `Retry-After`, at most `retry_after_cap_s`); `retries` counts them::

    connection refused, or closed before a response    retried      LLMUnavailableError
    connect timeout                                    retried      LLMUnavailableError
    HTTP 502, 503, 429                                 retried      LLMUnavailableError
    HTTP 504 (a gateway gave up)                       retried      LLMTimeoutError
    read timeout (a retry would double a long wait)    not retried  LLMTimeoutError
    HTTP 400, 401, 403, 404, 500, other                not retried  LLMResponseError
    200 with no choices, or blank text                 not retried  LLMEmptyResponseError
    200 whose body is not JSON or not a completion     not retried  LLMResponseError
    stream closed after some tokens                    not retried  LLMResponseError
    HTTP 400, 422 to a request with a response_format  "auto": resent once without it; "on": LLMResponseError
    HTTP 400, 422 naming a stream's stream_options     resent once without them (see below)

A stream is retried only while it has not yielded a token.

Token usage. The `usage` a reply reports is added to `rag.metrics.LLM_TOKENS` (prompt, completion); a
stream asks for it with `stream_options={"include_usage": True}` (vLLM sends it in a last chunk). A
server that reports none counts nothing. One that answers 400 or 422 naming stream_options (other
400s, a prompt too long, are not resent) is asked once more without them and, if that is accepted,
never sent them again (one warning).

Structured output. Given a JSON `schema` (see `rag.answer_format.answer_schema`), `complete` and
`stream` send it as `response_format` (`json_schema`, strict) and leave the stop sequences out,
since they can cut JSON ("\n[" occurs in it). `structured_output` says when:
"off" never; "on" always, a server that refuses it is an error; "auto" (the default) tries it,
and when the server answers 400 or 422 to it, resends the request once without it (free text,
with the stop sequences) and, if that succeeds, stops sending schemas for the life of the client
with one warning. A resend that fails too raises its own error, and schemas stay on: the 400 was
about something else (a prompt too long, say). A reply that should be JSON but is not is checked
by `rag.answer_format.parse_answer` (AnswerFormatError), not here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from email.utils import parsedate_to_datetime
from time import time
from typing import Any, Literal, TypeVar, get_args

import openai

from rag import metrics
from rag.errors import (
    ConfigError,
    LLMEmptyResponseError,
    LLMError,
    LLMResponseError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from rag.types import Message

__all__ = ["OpenAICompatibleLLM", "StructuredOutput"]

log = logging.getLogger("rag.llm")
T = TypeVar("T")
StructuredOutput = Literal["auto", "on", "off"]

_RETRIED_STATUS = frozenset({429, 502, 503, 504})
_REFUSED_STATUS = frozenset({400, 422})  # what servers answer to a field they lack (response_format, stream_options)
_USAGE = {"include_usage": True}  # stream_options: a last chunk with the token usage
# What the openai client lets through when a 200 body is not what it expects (not JSON, not a completion).
_MALFORMED = (ValueError, TypeError, AttributeError)


class _RetryableError(Exception):
    """A stream failed before its first token in a way worth one more try."""

    def __init__(self, reason: str, wait_s: float) -> None:
        super().__init__(reason)
        self.reason, self.wait_s = reason, wait_s


class OpenAICompatibleLLM:
    """One async client per process; errors become `LLMError`s that say how to fix them."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 0,
        retry_backoff_s: float = 0.5,
        retry_after_cap_s: float = 2.0,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
        structured_output: StructuredOutput = "auto",
        seed: int | None = None,
    ) -> None:
        if structured_output not in get_args(StructuredOutput):
            raise ConfigError(f"structured_output {structured_output!r} is not one of auto, on, off: "
                              "fix RAG_LLM__STRUCTURED_OUTPUT")
        if len(stop) > 4:
            raise ConfigError(f"{len(stop)} stop sequences given; OpenAI-compatible servers accept at most 4")
        if retry_backoff_s < 0 or retry_after_cap_s < 0:
            raise ConfigError("retry_backoff_s and retry_after_cap_s must be 0 or more seconds")
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._timeout_s = timeout_s
        self._backoff_s, self._retry_after_cap_s = retry_backoff_s, retry_after_cap_s
        self.retries = 0  # requests sent a second time by this client (the openai client's own are not counted)
        self._params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            self._params["seed"] = seed  # with temperature 0, what makes vLLM's replies repeatable
        self._stop = list(stop)
        self._structured_mode: StructuredOutput = structured_output
        self._schemas_refused = False  # "auto" found that this server lacks structured output
        self._usage_refused = False  # this server refused stream_options: streams no longer ask for usage
        self._client = openai.AsyncOpenAI(
            base_url=self._base_url, api_key=api_key, max_retries=max_retries,
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def structured(self) -> bool:
        """Whether a schema given to `complete` or `stream` is sent now (the caller then expects JSON)."""
        return self._structured_mode == "on" or (self._structured_mode == "auto" and not self._schemas_refused)

    async def complete(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None,
                       max_tokens: int | None = None, stop: Sequence[str] | None = None) -> str:
        """The answer; JSON following `schema` where the server does structured output, else free text.
        `max_tokens` and `stop` replace the client's own for this call (a short rewrite needs few tokens)."""
        own = {k: v for k, v in (("max_tokens", max_tokens), ("stop", list(stop or ()) or None)) if v is not None}
        params = {**self._request(schema), **own}
        try:
            return await self._complete(messages, params)
        except LLMResponseError as error:
            if not self._schema_refused(error, params):
                raise
        text = await self._complete(messages, {**self._request(None), **own})
        self._give_up_schemas()
        return text

    async def stream(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None,
                     ) -> AsyncGenerator[str, None]:
        """The answer's tokens as they come; as `complete` for `schema`, the refusal seen before any token."""
        params, sent = self._request(schema), 0
        try:
            async with aclosing(self._stream_retrying(messages, params)) as tokens:
                async for token in tokens:
                    sent += 1
                    yield token
            return
        except LLMResponseError as error:
            if sent or not self._schema_refused(error, params):
                raise
        async with aclosing(self._stream_retrying(messages, self._request(None))) as tokens:
            async for token in tokens:
                self._give_up_schemas()
                yield token

    def _request(self, schema: Mapping[str, Any] | None) -> dict[str, Any]:
        """Sampling parameters: the schema as response_format without stop sequences (they can cut JSON), or the stops."""
        if schema is not None and self.structured:
            return {**self._params, "response_format": {
                "type": "json_schema", "json_schema": {"name": "answer", "schema": dict(schema), "strict": True}}}
        return {**self._params, "stop": self._stop} if self._stop else dict(self._params)

    def _schema_refused(self, error: LLMResponseError, params: Mapping[str, Any]) -> bool:
        """True when "auto" should resend without the schema; under "on" a refusal is raised saying how to fix it."""
        cause = error.__cause__
        if "response_format" not in params or not (
            isinstance(cause, openai.APIStatusError) and cause.status_code in _REFUSED_STATUS
        ):
            return False
        if self._structured_mode == "auto":
            return True
        raise LLMResponseError(f"{error}; if the server lacks structured output (response_format json_schema), "
                               "set RAG_LLM__STRUCTURED_OUTPUT=auto or off") from cause

    def _give_up_schemas(self) -> None:
        """The request without a schema went through: this server lacks structured output; say so once."""
        if not self._schemas_refused:
            self._schemas_refused = True
            log.warning("LLM server at %s refused response_format (structured output): answers are free text "
                        "with inline [n] markers from now on; set RAG_LLM__STRUCTURED_OUTPUT=off to skip the try, "
                        "or serve the model with vLLM for citations limited to the passages given", self._base_url)

    async def _complete(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        reply = await self._retrying("chat completion", lambda: self._client.chat.completions.create(
            model=self._model, messages=_wire(messages), **params
        ))
        _count_usage(getattr(reply, "usage", None))
        return self._text(reply)

    async def _stream_retrying(self, messages: Sequence[Message], params: Mapping[str, Any],
                               ) -> AsyncGenerator[str, None]:
        """One stream, retried once only if it fails before its first token."""
        try:
            async with aclosing(self._stream_once(messages, params, may_retry=True)) as tokens:
                async for token in tokens:
                    yield token
            return
        except _RetryableError as retry:
            await self._pause("chat stream", retry.reason, retry.wait_s)
        async with aclosing(self._stream_once(messages, params, may_retry=False)) as tokens:
            async for token in tokens:
                yield token

    async def models(self) -> list[str]:
        """The model names the server serves (a cheap readiness probe)."""
        page = await self._retrying("model list", self._client.models.list)
        data = getattr(page, "data", None)
        if not isinstance(data, list):
            raise LLMResponseError(self._malformed("model list", repr(page)[:120]))
        return [model.id for model in data]

    async def aclose(self) -> None:
        await self._client.close()

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Send once; send once more after a short pause when the failure is worth it."""
        try:
            return await self._once(what, call)
        except LLMError as error:
            wait = self._retry_wait(error.__cause__)
            if wait is None:
                raise
            await self._pause(what, _reason(error.__cause__), wait)
        return await self._once(what, call)

    async def _once(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except openai.APIError as exc:
            raise self._translate(exc) from exc
        except _MALFORMED as exc:
            raise LLMResponseError(self._malformed(what, str(exc))) from exc

    async def _stream_once(
        self, messages: Sequence[Message], params: Mapping[str, Any], *, may_retry: bool
    ) -> AsyncGenerator[str, None]:
        sent, held, finish, started, usage = 0, "", None, False, None
        try:
            events = await self._open_stream(messages, params)
            started = True
            async with events:
                async for event in events:
                    piece, finish = _piece(event, finish)
                    usage = getattr(event, "usage", None) or usage
                    if not sent and not piece.strip():
                        held += piece  # leading whitespace is not a token yet: a retry stays possible
                        continue
                    sent += 1
                    yield held + piece
                    held = ""
        except openai.APIError as exc:
            wait = self._retry_wait(exc) if may_retry and not sent else None
            if wait is not None:
                raise _RetryableError(_reason(exc), wait) from exc
            raise self._stream_error(exc, sent, started) from exc
        except _MALFORMED as exc:
            raise LLMResponseError(self._malformed("chat stream event", str(exc))) from exc
        _count_usage(usage)
        if not sent:
            raise self._empty(finish)

    async def _open_stream(self, messages: Sequence[Message], params: Mapping[str, Any]) -> Any:
        """The streamed response, asking for its token usage until the server refuses stream_options."""
        def create(**usage: Any) -> Awaitable[Any]:
            return self._client.chat.completions.create(
                model=self._model, messages=_wire(messages), stream=True, **params, **usage)

        if self._usage_refused:
            return await create()
        try:
            return await create(stream_options=_USAGE)
        except openai.APIStatusError as exc:
            if exc.status_code not in _REFUSED_STATUS or "stream_options" not in f"{exc.message} {exc.body}":
                raise
        events = await create()  # when refused too, the refusal was about more than usage: raised, usage still asked
        self._usage_refused = True
        log.warning("LLM server at %s refused stream_options (include_usage): the tokens of streamed answers "
                    "are not counted in rag_llm_tokens from now on", self._base_url)
        return events

    async def _pause(self, what: str, reason: str, wait_s: float) -> None:
        self.retries += 1
        log.warning("retrying the %s to %s after %s, in %.2fs", what, self._base_url, reason, wait_s)
        await asyncio.sleep(wait_s)

    def _retry_wait(self, exc: BaseException | None) -> float | None:
        """Seconds to wait before the one retry, or None when retrying would not help (or would hurt)."""
        if isinstance(exc, openai.APITimeoutError):
            return self._backoff_s if _is_connect_timeout(exc) else None
        if isinstance(exc, openai.APIConnectionError):
            return self._backoff_s
        if isinstance(exc, openai.APIStatusError) and exc.status_code in _RETRIED_STATUS:
            after = _retry_after_s(exc.response.headers.get("retry-after"))
            return self._backoff_s if after is None else min(after, self._retry_after_cap_s)
        return None

    def _translate(self, exc: openai.APIError) -> LLMError:
        where = f"LLM server at {self._base_url}"
        if isinstance(exc, openai.APITimeoutError) and not _is_connect_timeout(exc):
            return LLMTimeoutError(f"{where} did not answer in time ({self._timeout_s:g} s): "
                                   "raise RAG_LLM__TIMEOUT_S or use a faster server")
        if isinstance(exc, openai.APIConnectionError):
            return LLMUnavailableError(
                f"{where} is unreachable ({_reason(exc)}): start one with `rag llm serve` or set RAG_LLM__BASE_URL"
            )
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc.status_code, _said(exc))
        return LLMResponseError(f"{where} reported an error: {_said(exc)}: check the server's log")

    def _status_error(self, code: int, said: str) -> LLMError:
        where = f"LLM server at {self._base_url}"
        if code in (401, 403):
            return LLMResponseError(f"{where} refused the API key ({code}: {said}): check RAG_LLM__API_KEY")
        if code == 404:
            return LLMResponseError(f"{where} does not serve model {self._model!r} ({said}): set RAG_LLM__MODEL to "
                                    f"a served name (GET {self._base_url}/models lists them)")
        if code in (400, 422):
            return LLMResponseError(f"{where} rejected the request ({code}: {said}): the prompt plus "
                                    "RAG_LLM__MAX_TOKENS must fit the model's context, and RAG_LLM__STOP its rules")
        if code == 429:
            return LLMUnavailableError(f"{where} is rate limiting this service (429: {said}): "
                                       "retry later, or raise the server's rate limit")
        if code in (502, 503):
            return LLMUnavailableError(f"{where} is unavailable ({code}: {said}): it may be starting or "
                                       "overloaded; retry shortly, or check its log")
        if code == 504:
            return LLMTimeoutError(f"{where} answered 504, a gateway timed out ({said}): "
                                   "raise the gateway's timeout or use a faster server")
        return LLMResponseError(f"{where} answered {code}: {said}: check the server's log")

    def _stream_error(self, exc: openai.APIError, sent: int, started: bool) -> LLMError:
        if started and isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError):
            return LLMResponseError(f"LLM server at {self._base_url} closed the stream after {sent} token(s), "
                                    f"before it finished ({_reason(exc)}): the answer is incomplete; check the server's log")
        return self._translate(exc)

    def _text(self, reply: object) -> str:
        choices = getattr(reply, "choices", None)
        if not isinstance(choices, list):
            raise LLMResponseError(self._malformed("chat completion", repr(reply)[:120]))
        if not choices:
            raise LLMEmptyResponseError(f"LLM server at {self._base_url} returned no choices: "
                                        "the model gave no answer; check the server's log")
        content = getattr(getattr(choices[0], "message", None), "content", None)
        if content is not None and not isinstance(content, str):
            raise LLMResponseError(self._malformed("chat completion", repr(content)[:120]))
        text = (content or "").strip()
        if not text:
            raise self._empty(getattr(choices[0], "finish_reason", None))
        return text

    def _empty(self, finish_reason: object) -> LLMEmptyResponseError:
        fix = "raise RAG_LLM__MAX_TOKENS" if finish_reason == "length" else "check the prompt and the model"
        return LLMEmptyResponseError(f"LLM server at {self._base_url} returned an empty answer "
                                     f"(finish_reason {finish_reason!r}): {fix}")

    def _malformed(self, what: str, detail: str) -> str:
        return (f"LLM server at {self._base_url} sent a {what} that is not valid OpenAI JSON ({detail}): "
                "check that RAG_LLM__BASE_URL points at an OpenAI-compatible API (ending in /v1), not a proxy page")


def _piece(event: object, finish: object) -> tuple[str, Any]:
    """The text of one streamed chunk (or ""), and the finish reason so far."""
    choices = getattr(event, "choices", None) or []
    if not choices:
        return "", finish
    content = getattr(getattr(choices[0], "delta", None), "content", None)
    return (content if isinstance(content, str) else ""), getattr(choices[0], "finish_reason", None) or finish


def _count_usage(usage: object) -> None:
    """Add the tokens a reply says it used to the metrics; a server that does not say counts nothing."""
    for kind in ("prompt", "completion"):
        tokens = getattr(usage, f"{kind}_tokens", None)
        if isinstance(tokens, int) and tokens > 0:
            metrics.LLM_TOKENS.labels(kind).inc(tokens)


def _is_connect_timeout(exc: BaseException) -> bool:
    """The transport's ConnectTimeout: nothing was sent, so a retry is safe (matched by name, not imported)."""
    return any(kind.__name__ == "ConnectTimeout" for kind in type(exc.__cause__).__mro__)


def _retry_after_s(value: str | None) -> float | None:
    """`Retry-After` as seconds from now: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


def _reason(exc: BaseException | None) -> str:
    """A few words on why a request failed, for messages and the retry log line."""
    if isinstance(exc, openai.APIStatusError):
        after = exc.response.headers.get("retry-after")
        return f"HTTP {exc.status_code}" + (f", Retry-After {after}" if after else "")
    if isinstance(exc, openai.APITimeoutError):
        return "connect timeout" if _is_connect_timeout(exc) else "read timeout"
    cause = exc.__cause__ if exc is not None else None
    return f"{type(cause).__name__}: {cause}" if cause is not None else "connection error"


def _said(exc: openai.APIError) -> str:
    """The server's own words from an error body, shortened."""
    body = exc.body
    said = body.get("message") if isinstance(body, dict) else None
    return str(said or exc.message)[:300]


def _wire(messages: Sequence[Message]) -> list[Any]:
    return [{"role": m.role, "content": m.content} for m in messages]
