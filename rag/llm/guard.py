"""`GuardedLLM`: the LLM client that never hangs, and stops calling a server that keeps failing.

Two guards around `OpenAICompatibleLLM`, whose own timeouts bound each read but not a server that
trickles a token a second forever, nor the pile-up of requests waiting on a server that is down:

- a deadline: a whole `complete`, or a whole `stream` (from the call to its last token), ends within
  `deadline_s` whatever the server does, with `LLMTimeoutError`;
- a circuit breaker: after `failures` server faults in a row (`is_server_fault`), calls fail at once
  with `LLMUnavailableError` for `reset_s`; then one trial call goes through::

      closed ──`failures` faults in a row──► open ──`reset_s`──► half_open: one trial call
        ▲                                     ▲                      │ fault  │ success
        │                                     └──────────────────────┘        │
        └─────────────────────────────────────────────────────────────────────┘

Any answer from the server (an empty one, a 4xx) ends a run of faults: the server is up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import Any, Literal

from rag import metrics
from rag.errors import (
    AnswerFormatError,
    ConfigError,
    LLMEmptyResponseError,
    LLMError,
    LLMResponseError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from rag.llm.openai_compatible import OpenAICompatibleLLM
from rag.types import Message

__all__ = ["BreakerState", "GuardedLLM", "is_server_fault"]

log = logging.getLogger("rag.llm")
BreakerState = Literal["closed", "open", "half_open"]


def is_server_fault(exc: BaseException) -> bool:
    """True when the server failed, not the request: unreachable, too slow, a 5xx, a reply cut short
    or unreadable (no status code). A 4xx (a prompt too long), an empty answer or one off the answer
    format is the request's or the model's doing: the server is up. The circuit breaker counts these
    faults, and the pipeline answers extractively on them."""
    if isinstance(exc, LLMUnavailableError | LLMTimeoutError):
        return True
    if not isinstance(exc, LLMResponseError) or isinstance(exc, LLMEmptyResponseError | AnswerFormatError):
        return False
    status = getattr(exc.__cause__, "status_code", None)
    return not isinstance(status, int) or status >= 500


class GuardedLLM:
    """An `LLMClient` with a deadline on every answer and a circuit breaker; the rest passes through.

    `failures=0` turns the breaker off; `clock` (seconds, monotonic) lets tests move time by hand.
    Safe to share across the requests of one event loop (its state changes between awaits only).
    """

    def __init__(self, llm: OpenAICompatibleLLM, *, deadline_s: float = 120.0, failures: int = 5,
                 reset_s: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        if deadline_s <= 0 or reset_s <= 0 or failures < 0:
            raise ConfigError("deadline_s and reset_s must be more than 0 s, failures 0 or more: fix "
                              "RAG_LLM__DEADLINE_S, RAG_LLM__BREAKER_RESET_S, RAG_LLM__BREAKER_FAILURES")
        self.inner = llm
        self.deadline_s, self.failures, self.reset_s = deadline_s, failures, reset_s
        self._clock = clock
        self._faults = 0  # server faults in a row
        self._opened_at: float | None = None  # None while closed
        self._trial = False  # the half-open trial call is under way
        metrics.LLM_CIRCUIT_OPEN.set(0)

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def base_url(self) -> str:
        return self.inner.base_url

    @property
    def structured(self) -> bool:
        return self.inner.structured

    @property
    def retries(self) -> int:
        return self.inner.retries

    @property
    def state(self) -> BreakerState:
        """closed; open (calls fail fast); half_open once `reset_s` has passed (the next call is a trial)."""
        if self._opened_at is None:
            return "closed"
        return "open" if self._clock() - self._opened_at < self.reset_s else "half_open"

    async def complete(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None,
                       max_tokens: int | None = None, stop: Sequence[str] | None = None) -> str:
        """As `OpenAICompatibleLLM.complete`, within the deadline and while the circuit lets calls through."""
        async with self._guarded(), asyncio.timeout(self.deadline_s):
            return await self.inner.complete(messages, schema=schema, max_tokens=max_tokens, stop=stop)

    async def stream(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None,
                     ) -> AsyncGenerator[str, None]:
        """As `OpenAICompatibleLLM.stream`, all of it within the deadline; closing this closes the HTTP stream."""
        async with self._guarded(), aclosing(self.inner.stream(messages, schema=schema)) as pieces:
            deadline = asyncio.get_running_loop().time() + self.deadline_s
            while (piece := await _next(pieces, deadline)) is not None:
                yield piece

    async def models(self) -> list[str]:
        """The served models, unguarded: the readiness probe asks the server itself, circuit open or not."""
        return await self.inner.models()

    async def aclose(self) -> None:
        await self.inner.aclose()

    @asynccontextmanager
    async def _guarded(self) -> AsyncIterator[None]:
        """Let the call through (or refuse it while the circuit is open), and record how it ended."""
        trial = self._admit()
        try:
            yield
        except TimeoutError as exc:  # the deadline ran out (the client's own timeouts are LLMTimeoutErrors)
            late = LLMTimeoutError(f"LLM server at {self.base_url} did not finish its answer within the "
                                   f"{self.deadline_s:g} s deadline: raise RAG_LLM__DEADLINE_S or use a faster server")
            self._settle(trial, late)
            raise late from exc
        except BaseException as exc:
            self._settle(trial, exc)
            raise
        self._settle(trial, None)

    def _admit(self) -> bool:
        """True for the half-open trial call; raises while the circuit is open or the trial is under way."""
        if self._opened_at is None:
            return False
        waited = self._clock() - self._opened_at
        if waited < self.reset_s or self._trial:
            metrics.LLM_FAILURES.labels("circuit_open").inc()
            raise self._refusal(self.reset_s - waited)
        self._trial = True
        return True

    def _refusal(self, wait_s: float) -> LLMUnavailableError:
        when = f"calls resume in ~{math.ceil(wait_s)} s" if wait_s > 0 else "a trial call is checking whether it is back"
        return LLMUnavailableError(
            f"LLM server at {self.base_url} failed {_times(self._faults)} in a row, so calls to it fail at once "
            f"for now (circuit breaker); {when}: check the server, or tune RAG_LLM__BREAKER_FAILURES and "
            "RAG_LLM__BREAKER_RESET_S")

    def _settle(self, trial: bool, exc: BaseException | None) -> None:
        """Count the call's end: a server fault, an answer (any other LLMError, or a consumer closing a
        stream that had begun), or neither (cancelled): the trial's place is then free for the next call."""
        if isinstance(exc, LLMError):
            kind = {LLMUnavailableError: "unavailable", LLMTimeoutError: "timeout"}.get(type(exc), "response")
            metrics.LLM_FAILURES.labels(kind).inc()
        if exc is not None and is_server_fault(exc):
            self._fault(trial, exc)
        elif exc is None or isinstance(exc, LLMError | GeneratorExit):
            self._success(trial)
        elif trial:
            self._trial = False

    def _fault(self, trial: bool, exc: BaseException) -> None:
        self._faults += 1
        if not self.failures or (self._opened_at is not None and not trial) or self._faults < self.failures:
            return
        if trial:
            log.info("trial call to the LLM server at %s failed (%s): the circuit stays open another %g s",
                     self.base_url, type(exc).__name__, self.reset_s)
        else:
            log.warning("LLM server at %s failed %s in a row (last: %s): calls fail at once for %g s "
                        "(circuit breaker open)", self.base_url, _times(self._faults), exc, self.reset_s)
        self._opened_at, self._trial = self._clock(), False
        metrics.LLM_CIRCUIT_OPEN.set(1)

    def _success(self, trial: bool) -> None:
        if self._opened_at is not None and not trial:
            return  # a call let through before the circuit opened: only the trial decides
        self._faults = 0
        if trial:
            self._opened_at, self._trial = None, False
            metrics.LLM_CIRCUIT_OPEN.set(0)
            log.info("LLM server at %s answers again: circuit breaker closed", self.base_url)


def _times(n: int) -> str:
    return f"{n} time{'s' * (n != 1)}"


async def _next(pieces: AsyncIterator[str], deadline: float) -> str | None:
    """The next piece, or None at the end; TimeoutError once the loop's clock passes `deadline`."""
    try:
        async with asyncio.timeout_at(deadline):
            return await anext(pieces)
    except StopAsyncIteration:
        return None
