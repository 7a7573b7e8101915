"""GuardedLLM against a real scripted server on localhost: the deadline, the circuit breaker, token usage.

Breaker timing runs on a hand-moved clock (no sleeping); requests reaching the server are counted in
`server.calls`; metrics are read as deltas of the process-wide registry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from rag.errors import (
    AnswerFormatError,
    InputError,
    LLMEmptyResponseError,
    LLMError,
    LLMResponseError,
    LLMServerError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from rag.llm import GuardedLLM, OpenAICompatibleLLM, is_server_fault
from rag.metrics import REGISTRY
from rag.protocols import LLMClient
from rag.testing import Fault, ScriptedOpenAIServer
from rag.types import Message
from tests.conftest import free_port

T = TypeVar("T")
MESSAGES = [Message("system", "Passages:\n[1] (T — a.md)\nT\nReturns take 45 days."), Message("user", "returns days")]
ANSWER = "Returns take 45 days. [1]"
FAST = {"timeout_s": 5.0, "connect_timeout_s": 0.5, "retry_backoff_s": 0.01}


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def guarded(base_url: str, *, clock: Callable[[], float] = time.monotonic, **options: Any) -> GuardedLLM:
    guard = {k: options.pop(k) for k in ("deadline_s", "failures", "reset_s") if k in options}
    llm = OpenAICompatibleLLM(base_url=base_url, model="scripted", **{**FAST, **options})
    return GuardedLLM(llm, clock=clock, **{"failures": 3, "reset_s": 10.0, **guard})


def run(llm: GuardedLLM, action: Callable[[GuardedLLM], Awaitable[T]]) -> T:
    async def main() -> T:
        try:
            return await action(llm)
        finally:
            await llm.aclose()

    return asyncio.run(main())


async def attempt(llm: GuardedLLM, times: int = 1) -> list[object]:
    """`complete` `times` times in a row: each answer, or the error it raised."""
    results: list[object] = []
    for _ in range(times):
        try:
            results.append(await llm.complete(MESSAGES))
        except LLMError as exc:
            results.append(exc)
    return results


async def collect(llm: GuardedLLM, tokens: list[str]) -> None:
    async for token in llm.stream(MESSAGES):
        tokens.append(token)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def failures(kind: str) -> float:
    return metric("rag_llm_failures_total", kind=kind)


@pytest.fixture()
def failing() -> Iterator[ScriptedOpenAIServer]:
    """A server that answers every chat request 500 until `fault` is set back to None."""
    with ScriptedOpenAIServer() as server:
        server.fault = "error"
        yield server


# --- what counts as a server fault ---------------------------------------------------------------------


class _StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(status_code)
        self.status_code = status_code


def _caused(error: LLMError, cause: BaseException | None) -> LLMError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "fault"), [
    (LLMUnavailableError("unreachable"), True),
    (LLMTimeoutError("too slow"), True),
    (_caused(LLMResponseError("answered 500"), _StatusError(500)), True),
    (_caused(LLMResponseError("answered 503"), _StatusError(503)), True),
    (_caused(LLMResponseError("closed the stream after 3 token(s)"), ConnectionError()), True),
    (_caused(LLMResponseError("rejected the request (400)"), _StatusError(400)), False),
    (_caused(LLMResponseError("refused the API key (401)"), _StatusError(401)), False),
    (LLMEmptyResponseError("empty answer"), False),
    (AnswerFormatError("not the answer schema"), False),
    (LLMServerError("vLLM would not start"), False),
    (InputError("empty question"), False),
], ids=["unavailable", "timeout", "500", "503", "cut-stream", "400", "401", "empty", "format", "local-server", "input"])
def test_server_faults_are_the_server_failing_not_the_request(error: Exception, fault: bool) -> None:
    assert is_server_fault(error) is fault


def test_it_is_an_llm_client_that_passes_the_rest_through(llm_server: ScriptedOpenAIServer) -> None:
    llm = guarded(llm_server.base_url)
    assert isinstance(llm, LLMClient)
    assert (llm.model, llm.base_url, llm.structured, llm.retries, llm.state) == (
        "scripted", llm_server.base_url, True, 0, "closed")
    assert run(llm, lambda llm: llm.models()) == ["scripted"]


# --- the circuit breaker -------------------------------------------------------------------------------


def test_the_breaker_opens_after_n_server_faults_and_refuses_without_a_request(
    failing: ScriptedOpenAIServer, caplog: pytest.LogCaptureFixture,
) -> None:
    response, refused = failures("response"), failures("circuit_open")
    llm = guarded(failing.base_url)
    with caplog.at_level(logging.INFO, logger="rag.llm"):
        results = run(llm, lambda llm: attempt(llm, 5))
    assert [type(r) for r in results] == [LLMResponseError] * 3 + [LLMUnavailableError] * 2
    assert len(failing.calls) == 3  # the 4th and 5th never reached the server
    message = str(results[3])
    assert "failed 3 times in a row" in message and "calls resume in ~10 s" in message and failing.base_url in message
    assert llm.state == "open" and metric("rag_llm_circuit_open") == 1
    assert (failures("response") - response, failures("circuit_open") - refused) == (3, 2)
    opened = [r for r in caplog.records if "circuit breaker open" in r.getMessage()]
    assert len(opened) == 1 and opened[0].levelno == logging.WARNING  # one line, not one per refused call


def test_client_errors_and_empty_answers_do_not_open_it(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(400), Fault.status(401), Fault.empty(), Fault.no_choices(), Fault.status(404))
    llm = guarded(llm_server.base_url, failures=2)
    results = run(llm, lambda llm: attempt(llm, 6))
    assert [type(r) for r in results] == [LLMResponseError, LLMResponseError, LLMEmptyResponseError,
                                          LLMEmptyResponseError, LLMResponseError, str]
    assert len(llm_server.calls) == 6 and llm.state == "closed"


def test_only_faults_in_a_row_count_any_answer_resets_them(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(500), Fault.status(500), Fault.empty(), Fault.status(500), Fault.status(500),
                      Fault.delay(0.0), Fault.status(500), Fault.status(500))
    llm = guarded(llm_server.base_url)
    run(llm, lambda llm: attempt(llm, 8))
    assert len(llm_server.calls) == 8 and llm.state == "closed"


def test_failures_0_turns_the_breaker_off(failing: ScriptedOpenAIServer) -> None:
    llm = guarded(failing.base_url, failures=0)
    results = run(llm, lambda llm: attempt(llm, 6))
    assert all(isinstance(r, LLMResponseError) for r in results)
    assert len(failing.calls) == 6 and llm.state == "closed"


def test_half_open_lets_one_trial_through_and_its_success_closes_the_circuit(
    failing: ScriptedOpenAIServer, caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    llm = guarded(failing.base_url, clock=clock)

    async def trial_while_another_call_comes(llm: GuardedLLM) -> list[object]:
        await attempt(llm, 3)
        clock.now += 9.9
        early = await attempt(llm)  # still open
        clock.now += 0.1
        assert llm.state == "half_open"
        failing.fault = None
        failing.inject(Fault.delay(0.5))  # the trial is slow: a second call comes while it runs
        trial = asyncio.ensure_future(llm.complete(MESSAGES))
        await asyncio.sleep(0.1)
        meanwhile = await attempt(llm)
        return [*early, await trial, *meanwhile, *(await attempt(llm))]

    with caplog.at_level(logging.INFO, logger="rag.llm"):
        early, trial, meanwhile, after = run(llm, trial_while_another_call_comes)
    assert isinstance(early, LLMUnavailableError) and "resume in ~1 s" in str(early)
    assert isinstance(meanwhile, LLMUnavailableError) and "a trial call is checking" in str(meanwhile)
    assert trial == ANSWER and after == ANSWER
    assert len(failing.calls) == 3 + 1 + 1  # the faults, the trial, the call after it closed
    assert llm.state == "closed" and metric("rag_llm_circuit_open") == 0
    assert [r.getMessage().split(": ")[-1] for r in caplog.records if r.levelno == logging.INFO] == [
        "circuit breaker closed"]


def test_a_failed_trial_opens_it_for_another_period(failing: ScriptedOpenAIServer) -> None:
    clock = Clock()
    llm = guarded(failing.base_url, clock=clock)

    async def trial_fails_then_succeeds(llm: GuardedLLM) -> list[object]:
        await attempt(llm, 3)
        clock.now += 10
        trial = await attempt(llm, 2)  # the trial gets a 500; the next call is refused again
        clock.now += 9
        still = await attempt(llm)
        clock.now += 1
        failing.fault = None
        return [*trial, *still, *(await attempt(llm))]

    failed_trial, refused, still, recovered = run(llm, trial_fails_then_succeeds)
    assert isinstance(failed_trial, LLMResponseError) and "answered 500" in str(failed_trial)
    assert isinstance(refused, LLMUnavailableError) and "resume in ~10 s" in str(refused)
    assert isinstance(still, LLMUnavailableError) and recovered == ANSWER
    assert len(failing.calls) == 3 + 1 + 1 and llm.state == "closed"


def test_it_recovers_by_itself_once_the_server_comes_back() -> None:
    """Nothing listens at first (connection refused); then a server starts on that port."""
    clock, port = Clock(), free_port()
    llm = guarded(f"http://127.0.0.1:{port}/v1", clock=clock)
    unavailable = failures("unavailable")

    async def down_then_up(llm: GuardedLLM) -> list[object]:
        down = await attempt(llm, 4)
        with ScriptedOpenAIServer(port=port) as server:
            before_reset = await attempt(llm)
            clock.now += 10
            up = await attempt(llm, 2)
            assert len(server.calls) == 2
        return [*down, *before_reset, *up]

    results = run(llm, down_then_up)
    assert [type(r) for r in results] == [LLMUnavailableError] * 5 + [str, str]
    assert "unreachable" in str(results[0]) and "failed 3 times in a row" in str(results[3])
    assert failures("unavailable") - unavailable == 3 and llm.state == "closed"


def test_the_open_breaker_refuses_at_once(failing: ScriptedOpenAIServer) -> None:
    llm = guarded(failing.base_url, failures=1)

    async def time_refusals(llm: GuardedLLM) -> float:
        await attempt(llm)
        start = time.perf_counter()
        await attempt(llm, 100)
        return (time.perf_counter() - start) / 100

    per_call = run(llm, time_refusals)
    assert len(failing.calls) == 1
    assert per_call < 0.05  # a bound, far above the microseconds it takes: no request, no wait


# --- the deadline --------------------------------------------------------------------------------------


def test_a_trickling_stream_ends_at_the_deadline_and_counts_as_a_fault(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.slow_stream(1.0))  # one token a second: the whole answer would take about 6 s
    timeouts = failures("timeout")
    llm = guarded(llm_server.base_url, deadline_s=0.5, failures=1)
    tokens: list[str] = []
    start = time.perf_counter()
    with pytest.raises(LLMTimeoutError, match=r"within the 0.5 s deadline: raise RAG_LLM__DEADLINE_S") as caught:
        run(llm, lambda llm: collect(llm, tokens))
    elapsed = time.perf_counter() - start
    assert 0.5 <= elapsed < 5.0
    assert tokens == ["Returns "] and "LLM server at" in str(caught.value)
    assert failures("timeout") - timeouts == 1 and llm.state == "open"


def test_a_slow_plain_answer_ends_at_the_deadline(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.delay(10.0))
    llm = guarded(llm_server.base_url, deadline_s=0.5, timeout_s=30.0)
    start = time.perf_counter()
    (result,) = run(llm, attempt)
    elapsed = time.perf_counter() - start
    assert isinstance(result, LLMTimeoutError) and "0.5 s deadline" in str(result)
    assert 0.5 <= elapsed < 5.0


def test_a_stream_within_the_deadline_is_untouched(llm_server: ScriptedOpenAIServer) -> None:
    tokens: list[str] = []
    run(guarded(llm_server.base_url, deadline_s=5.0), lambda llm: collect(llm, tokens))
    assert "".join(tokens).strip() == ANSWER


# --- streams: cut by the server, closed by the reader ----------------------------------------------------


def test_a_stream_killed_mid_way_is_a_fault(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.drop_stream_after(2), Fault.drop_stream_after(2))
    llm = guarded(llm_server.base_url, failures=2)

    async def twice(llm: GuardedLLM) -> list[object]:
        results: list[object] = []
        for _ in range(2):
            try:
                await collect(llm, [])
            except LLMError as exc:
                results.append(exc)
        return results

    results = run(llm, twice)
    assert all(isinstance(r, LLMResponseError) and "closed the stream after 2 token(s)" in str(r) for r in results)
    assert llm.state == "open"


def test_a_reader_closing_the_stream_closes_the_http_stream(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.slow_stream(0.1))
    llm = guarded(llm_server.base_url, failures=1)

    async def read_one_then_close(llm: GuardedLLM) -> str:
        stream = llm.stream(MESSAGES)
        first = await anext(stream)
        await stream.aclose()
        return first

    assert run(llm, read_one_then_close) == "Returns "
    deadline = time.monotonic() + 3
    while not llm_server.abandoned and time.monotonic() < deadline:
        time.sleep(0.05)
    assert llm_server.abandoned and llm_server.abandoned[0] < 5  # the server saw the hang-up mid-answer
    assert llm.state == "closed"  # a reader leaving is not the server's fault


# --- token usage -----------------------------------------------------------------------------------------


def tokens_used() -> tuple[float, float]:
    return metric("rag_llm_tokens_total", kind="prompt"), metric("rag_llm_tokens_total", kind="completion")


def test_token_usage_is_counted_from_plain_and_streamed_answers(llm_server: ScriptedOpenAIServer) -> None:
    prompt_words = sum(len(m.content.split()) for m in MESSAGES)
    llm = guarded(llm_server.base_url)
    before = tokens_used()
    run(llm, attempt)
    plain = tokens_used()
    run(guarded(llm_server.base_url), lambda llm: collect(llm, []))
    streamed = tokens_used()
    assert plain[0] - before[0] == prompt_words and plain[1] > before[1]
    assert streamed[0] - plain[0] == prompt_words and streamed[1] - plain[1] == 5  # "Returns ", "take ", ...
    assert llm_server.requests[-1]["stream_options"] == {"include_usage": True}


def test_a_server_refusing_stream_options_still_streams_and_is_not_asked_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ScriptedOpenAIServer(stream_usage=False) as server:
        llm = guarded(server.base_url)

        async def stream_twice(llm: GuardedLLM) -> list[str]:
            first: list[str] = []
            second: list[str] = []
            await collect(llm, first)
            await collect(llm, second)
            return ["".join(first).strip(), "".join(second).strip()]

        with caplog.at_level(logging.WARNING, logger="rag.llm"):
            assert run(llm, stream_twice) == [ANSWER, ANSWER]
    assert ["stream_options" in r for r in server.requests] == [True, False, False]
    assert len([m for m in caplog.messages if "refused stream_options" in m]) == 1
    assert llm.state == "closed"
