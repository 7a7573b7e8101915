"""Each way the LLM server can misbehave, and what it becomes: a real scripted server on localhost.

Retries are counted three ways: the requests the server saw, `llm.retries`, and the log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.errors import LLMEmptyResponseError, LLMError, LLMResponseError, LLMTimeoutError, LLMUnavailableError
from rag.factory import build_runtime
from rag.llm import OpenAICompatibleLLM
from rag.settings import Settings
from rag.testing import Fault, ScriptedOpenAIServer
from rag.types import Message
from tests.conftest import free_port, running

MESSAGES = [Message("system", "Passages:\n[1] (T — a.md)\nT\nReturns take 45 days."), Message("user", "returns days")]
ANSWER = "Returns take 45 days. [1]"
FAST = {"timeout_s": 0.5, "connect_timeout_s": 0.5, "retry_backoff_s": 0.05}
ACTIONS = ["complete", "stream", "models"]


@dataclass
class Outcome:
    """What one call gave: its value (or the tokens before a failure), its error, retries and time."""

    value: object = None
    tokens: list[str] = field(default_factory=list)
    error: LLMError | None = None
    retries: int = 0
    seconds: float = 0.0

    def failed(self, kind: type[LLMError], fragment: str) -> bool:
        assert type(self.error) is kind, f"expected {kind.__name__}, got {self.error!r}"
        assert fragment in str(self.error), f"{fragment!r} not in {self.error}"
        return True


def call(base_url: str, action: str = "complete", *, model: str = "scripted", **options: object) -> Outcome:
    """One `complete`, `stream` or `models` call through a fresh client, timed; errors are caught."""

    async def main() -> Outcome:
        llm = OpenAICompatibleLLM(base_url=base_url, model=model, **{**FAST, **options})  # type: ignore[arg-type]
        outcome, start = Outcome(), time.perf_counter()
        try:
            if action == "stream":
                async for token in llm.stream(MESSAGES):
                    outcome.tokens.append(token)
                outcome.value = "".join(outcome.tokens).strip()
            else:
                outcome.value = await (llm.complete(MESSAGES) if action == "complete" else llm.models())
        except LLMError as exc:
            outcome.error = exc
        finally:
            outcome.seconds, outcome.retries = time.perf_counter() - start, llm.retries
            await llm.aclose()
        return outcome

    return asyncio.run(main())


def expected(action: str) -> object:
    return ["scripted"] if action == "models" else ANSWER


# --- retried once, then it works -------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("fault", [Fault.status(502), Fault.status(503), Fault.status(504), Fault.status(429),
                                   Fault.close_connection()], ids=["502", "503", "504", "429", "closed"])
def test_one_transient_failure_is_retried_once_and_the_answer_comes(
    llm_server: ScriptedOpenAIServer, fault: Fault, action: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm_server.inject(fault)
    with caplog.at_level(logging.WARNING, logger="rag.llm"):
        outcome = call(llm_server.base_url, action)
    assert outcome.error is None and outcome.value == expected(action)
    assert len(llm_server.calls) == 2 and outcome.retries == 1
    assert [r.getMessage().split(" to ")[0] for r in caplog.records] == [
        f"retrying the {dict(complete='chat completion', stream='chat stream', models='model list')[action]}"
    ]


def test_the_retry_log_line_says_why_and_when(llm_server: ScriptedOpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    llm_server.inject(Fault.status(503))
    with caplog.at_level(logging.WARNING, logger="rag.llm"):
        call(llm_server.base_url, retry_backoff_s=0.1)
    assert caplog.messages == [f"retrying the chat completion to {llm_server.base_url} after HTTP 503, in 0.10s"]


def test_a_plain_answer_cut_short_is_retried(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.drop_stream_after(0))
    outcome = call(llm_server.base_url)
    assert outcome.value == ANSWER and len(llm_server.calls) == 2


def test_retry_after_is_honoured(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(429, retry_after=0.4))
    outcome = call(llm_server.base_url)
    assert outcome.value == ANSWER and outcome.retries == 1
    assert 0.4 <= outcome.seconds < 1.5


def test_retry_after_is_capped(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(429, retry_after=30))
    outcome = call(llm_server.base_url, retry_after_cap_s=0.3)
    assert outcome.value == ANSWER and len(llm_server.calls) == 2
    assert 0.3 <= outcome.seconds < 1.5


def test_a_stream_that_breaks_before_its_first_token_is_retried(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.drop_stream_after(0))
    outcome = call(llm_server.base_url, "stream")
    assert outcome.value == ANSWER and len(llm_server.calls) == 2 and outcome.retries == 1


# --- retried once, then it gives up: two requests, never three ---------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize(("fault", "kind", "fragment"), [
    (Fault.status(503, message="engine is starting"), LLMUnavailableError, "unavailable (503: engine is starting)"),
    (Fault.status(502), LLMUnavailableError, "unavailable (502"),
    (Fault.status(504), LLMTimeoutError, "504, a gateway timed out"),
    (Fault.status(429, retry_after=0.1), LLMUnavailableError, "rate limiting this service (429"),
    (Fault.close_connection(), LLMUnavailableError, "Server disconnected without sending a response"),
], ids=["503", "502", "504", "429", "closed"])
def test_two_transient_failures_give_up_after_two_requests(
    llm_server: ScriptedOpenAIServer, fault: Fault, kind: type[LLMError], fragment: str, action: str
) -> None:
    llm_server.inject(fault, fault)
    outcome = call(llm_server.base_url, action)
    assert outcome.failed(kind, fragment)
    assert len(llm_server.calls) == 2 and outcome.retries == 1
    assert outcome.tokens == []


def test_a_dead_port_fails_within_the_connect_timeout_plus_one_backoff() -> None:
    outcome = call(f"http://127.0.0.1:{free_port()}/v1", connect_timeout_s=0.5, retry_backoff_s=0.2)
    assert outcome.failed(LLMUnavailableError, "unreachable")
    assert "rag llm serve" in str(outcome.error)
    assert outcome.retries == 1
    assert 0.2 <= outcome.seconds < 0.5 + 0.2 + 0.5


# --- not retried ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["complete", "stream"])
def test_a_read_timeout_is_not_retried(llm_server: ScriptedOpenAIServer, action: str) -> None:
    llm_server.inject(Fault.delay(3.0))
    outcome = call(llm_server.base_url, action, timeout_s=0.3)
    assert outcome.failed(LLMTimeoutError, "did not answer in time (0.3 s): raise RAG_LLM__TIMEOUT_S")
    assert len(llm_server.calls) == 1 and outcome.retries == 0
    assert outcome.seconds < 0.3 + 1.0


def test_a_slow_answer_within_the_timeout_is_fine(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.delay(0.2))
    assert call(llm_server.base_url, timeout_s=1.0).value == ANSWER


@pytest.mark.parametrize("action", ["complete", "stream"])
@pytest.mark.parametrize(("fault", "fragment"), [
    (Fault.status(401, message="Invalid API key"), "refused the API key (401: Invalid API key): check RAG_LLM__API_KEY"),
    (Fault.status(403), "check RAG_LLM__API_KEY"),
    (Fault.status(400, message="This model's maximum context length is 2048 tokens"),
     "rejected the request (400: This model's maximum context length is 2048 tokens)"),
    (Fault.status(500, message="CUDA out of memory"), "answered 500: CUDA out of memory"),
], ids=["401", "403", "400", "500"])
def test_client_and_server_errors_are_not_retried(
    llm_server: ScriptedOpenAIServer, fault: Fault, fragment: str, action: str
) -> None:
    llm_server.inject(fault)
    outcome = call(llm_server.base_url, action)
    assert outcome.failed(LLMResponseError, fragment)
    assert len(llm_server.calls) == 1 and outcome.retries == 0


@pytest.mark.parametrize("action", ["complete", "stream"])
def test_an_unknown_model_names_the_model_and_is_not_retried(llm_server: ScriptedOpenAIServer, action: str) -> None:
    outcome = call(llm_server.base_url, action, model="gemma-9000")
    assert outcome.failed(LLMResponseError, "does not serve model 'gemma-9000'")
    assert "RAG_LLM__MODEL" in str(outcome.error) and "/models" in str(outcome.error)
    assert len(llm_server.calls) == 1


# --- empty or malformed output --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["complete", "stream"])
@pytest.mark.parametrize(("fault", "kind", "fragment"), [
    (Fault.empty(""), LLMEmptyResponseError, "empty answer (finish_reason 'stop')"),
    (Fault.empty(None), LLMEmptyResponseError, "empty answer"),
    (Fault.empty(" \n\t "), LLMEmptyResponseError, "empty answer"),
    (Fault.no_choices(), LLMEmptyResponseError, ""),
    (Fault.not_json(), LLMResponseError, "not valid OpenAI JSON"),
    (Fault.not_json("application/json"), LLMResponseError, "not valid OpenAI JSON"),
], ids=["empty", "null", "whitespace", "no-choices", "html", "json-typed-garbage"])
def test_empty_or_malformed_output_raises_its_own_error_without_retry(
    llm_server: ScriptedOpenAIServer, fault: Fault, kind: type[LLMError], fragment: str, action: str
) -> None:
    llm_server.inject(fault)
    outcome = call(llm_server.base_url, action)
    assert outcome.failed(kind, fragment)
    assert len(llm_server.calls) == 1 and outcome.retries == 0
    assert outcome.tokens == []


def test_a_model_list_that_is_not_json_is_not_retried(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.not_json())
    assert call(llm_server.base_url, "models").failed(LLMResponseError, "model list that is not valid OpenAI JSON")
    assert llm_server.calls == ["GET /v1/models"]


def test_no_choices_says_so(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.no_choices())
    assert call(llm_server.base_url).failed(LLMEmptyResponseError, "returned no choices")


def test_a_web_page_says_to_check_the_base_url(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.not_json())
    outcome = call(llm_server.base_url)
    assert outcome.failed(LLMResponseError, "check that RAG_LLM__BASE_URL points at an OpenAI-compatible API")
    assert "nginx" in str(outcome.error)


def test_a_stream_dropped_after_three_tokens_yields_them_then_fails_without_retry(
    llm_server: ScriptedOpenAIServer,
) -> None:
    llm_server.inject(Fault.drop_stream_after(3))
    outcome = call(llm_server.base_url, "stream")
    assert outcome.tokens == ["Returns ", "take ", "45 "]
    assert outcome.failed(LLMResponseError, "closed the stream after 3 token(s), before it finished")
    assert "answer is incomplete" in str(outcome.error)
    assert len(llm_server.calls) == 1 and outcome.retries == 0


def test_a_stream_that_breaks_twice_before_any_token_gives_up(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.drop_stream_after(0), Fault.drop_stream_after(0))
    outcome = call(llm_server.base_url, "stream")
    assert outcome.failed(LLMResponseError, "closed the stream after 0 token(s)")
    assert len(llm_server.calls) == 2


def test_faults_apply_one_request_each_then_answers_resume(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.empty(), Fault.status(401))
    assert call(llm_server.base_url).failed(LLMEmptyResponseError, "empty answer")
    assert call(llm_server.base_url).failed(LLMResponseError, "401")
    assert call(llm_server.base_url).value == ANSWER
    assert llm_server.pending == 0 and len(llm_server.requests) == 3


# --- over HTTP, through the app -------------------------------------------------------------------------


@pytest.fixture()
def ask_url(tiny_index: Path, llm_server: ScriptedOpenAIServer) -> Iterator[str]:
    settings = Settings(index={"dir": tiny_index}, embedding={"backend": "hash", "model": "hash-64"},
                        llm={"base_url": llm_server.base_url, "model": "scripted", "timeout_s": 0.5})
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
        yield f"{url}/ask"


def test_ask_gives_503_when_the_llm_answers_503_twice(ask_url: str, llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(503), Fault.status(503))
    reply = httpx.post(ask_url, json={"question": "How many days do I have to return an item?"}, timeout=30)
    assert reply.status_code == 503
    assert reply.json()["error"]["type"] == "llm_unavailable"
    assert "unavailable (503" in reply.json()["error"]["message"]
    assert llm_server.calls == ["POST /v1/chat/completions"] * 2


def test_ask_recovers_from_one_503(ask_url: str, llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(503))
    reply = httpx.post(ask_url, json={"question": "How many days do I have to return an item?"}, timeout=30)
    assert reply.status_code == 200 and "45 days" in reply.json()["answer"]
    assert len(llm_server.calls) == 2


def test_ask_gives_504_within_about_the_timeout(ask_url: str, llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.delay(5.0))
    start = time.perf_counter()
    reply = httpx.post(ask_url, json={"question": "return window?"}, timeout=30)
    elapsed = time.perf_counter() - start
    assert reply.status_code == 504 and reply.json()["error"]["type"] == "llm_timeout"
    assert "RAG_LLM__TIMEOUT_S" in reply.json()["error"]["message"]
    assert 0.5 <= elapsed < 0.5 + 1.5
    assert len(llm_server.calls) == 1
