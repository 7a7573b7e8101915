"""Structured output through OpenAICompatibleLLM against a real scripted server on localhost.

Requests are counted in `server.requests` (bodies) and `server.calls`; the fallback's warning in the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from rag.answer_format import ParsedAnswer, StructuredStream, answer_schema, parse_answer
from rag.errors import AnswerFormatError, ConfigError, LLMResponseError
from rag.llm import OpenAICompatibleLLM
from rag.testing import Fault, ScriptedLLM, ScriptedOpenAIServer, structured_answer
from rag.types import Message

T = TypeVar("T")
PASSAGES = "Passages:\n[1] (T — a.md)\nT\nReturns take 45 days.\n\n[2] (S — s.md)\nS\nShipping is free."
MESSAGES = [Message("system", PASSAGES), Message("user", "returns days")]
SCHEMA = answer_schema(2)
ANSWER = "Returns take 45 days. [1]"
JSON_ANSWER = '{"answerable": true, "sentences": [{"text": "Returns take 45 days.", "citations": [1]}]}'
STOP = ["\nQuestion:", "\n["]


@pytest.fixture()
def old_server() -> Iterator[ScriptedOpenAIServer]:
    """A server without structured output: it answers 400 to response_format."""
    with ScriptedOpenAIServer(structured=False) as server:
        yield server


def run(server: ScriptedOpenAIServer, action: Callable[[OpenAICompatibleLLM], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        llm = OpenAICompatibleLLM(base_url=server.base_url, model="scripted", stop=STOP, retry_backoff_s=0.01, **kw)
        try:
            return await action(llm)
        finally:
            await llm.aclose()

    return asyncio.run(main())


async def collect(llm: OpenAICompatibleLLM, schema: dict[str, Any] | None = SCHEMA) -> list[str]:
    return [piece async for piece in llm.stream(MESSAGES, schema=schema)]


def with_schema(request: dict[str, Any]) -> bool:
    return "response_format" in request


def test_schema_goes_as_response_format_without_stop_sequences(llm_server: ScriptedOpenAIServer) -> None:
    async def both(llm: OpenAICompatibleLLM) -> tuple[str, str]:
        return await llm.complete(MESSAGES, schema=SCHEMA), await llm.complete(MESSAGES)

    structured, plain = run(llm_server, both)
    assert structured == JSON_ANSWER and plain == ANSWER
    assert parse_answer(structured, 2) == ParsedAnswer(ANSWER, answerable=True, structured=True)
    sent, unstructured = llm_server.requests
    assert sent["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}}
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["sentences"]["items"]["properties"][
        "citations"]["items"]["enum"] == [1, 2]
    assert "stop" not in sent and sent["max_tokens"] == 256
    assert unstructured["stop"] == STOP and not with_schema(unstructured)


def test_streamed_schema_arrives_in_pieces_and_renders_live(llm_server: ScriptedOpenAIServer) -> None:
    pieces = run(llm_server, collect)
    assert "".join(pieces) == JSON_ANSWER and len(pieces) > 10
    renderer = StructuredStream(2)
    shown = [renderer.feed(piece) for piece in pieces] + [renderer.finish()]
    assert "".join(shown) == ANSWER and renderer.answerable is True
    assert "Returns" in shown[: shown.index(" [1]")]  # the text showed before its citations were complete
    (sent,) = llm_server.requests
    assert sent["stream"] is True and with_schema(sent) and "stop" not in sent


def test_auto_resends_without_schema_once_and_remembers(old_server: ScriptedOpenAIServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    async def three(llm: OpenAICompatibleLLM) -> tuple[bool, str, bool, str, list[str]]:
        before = llm.structured
        first = await llm.complete(MESSAGES, schema=SCHEMA)
        after = llm.structured
        return before, first, after, await llm.complete(MESSAGES, schema=SCHEMA), await collect(llm)

    with caplog.at_level(logging.WARNING, logger="rag.llm"):
        before, first, after, second, streamed = run(old_server, three)
    assert (before, after) == (True, False)
    assert first == second == ANSWER == "".join(streamed).strip()
    assert parse_answer(first, 2).structured is False
    assert [with_schema(r) for r in old_server.requests] == [True, False, False, False]
    assert [r.get("stop") for r in old_server.requests[1:]] == [STOP] * 3
    assert old_server.calls == ["POST /v1/chat/completions"] * 4
    warnings = [r.getMessage() for r in caplog.records if "refused response_format" in r.getMessage()]
    assert len(warnings) == 1 and "RAG_LLM__STRUCTURED_OUTPUT=off" in warnings[0]


def test_auto_stream_falls_back_before_its_first_token(old_server: ScriptedOpenAIServer) -> None:
    async def stream_then_flag(llm: OpenAICompatibleLLM) -> tuple[list[str], bool]:
        return await collect(llm), llm.structured

    pieces, structured = run(old_server, stream_then_flag)
    assert "".join(pieces).strip() == ANSWER and structured is False
    assert [with_schema(r) for r in old_server.requests] == [True, False]


def test_concurrent_fallbacks_warn_once(old_server: ScriptedOpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    async def four(llm: OpenAICompatibleLLM) -> list[str]:
        return list(await asyncio.gather(*(llm.complete(MESSAGES, schema=SCHEMA) for _ in range(4))))

    with caplog.at_level(logging.WARNING, logger="rag.llm"):
        answers = run(old_server, four)
    assert answers == [ANSWER] * 4
    assert len([r for r in caplog.records if "refused response_format" in r.getMessage()]) == 1


def test_422_counts_as_a_refusal_too(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(422, message="Unknown field: response_format"))

    async def twice(llm: OpenAICompatibleLLM) -> tuple[str, str, bool]:
        return await llm.complete(MESSAGES, schema=SCHEMA), await llm.complete(MESSAGES, schema=SCHEMA), llm.structured

    assert run(llm_server, twice) == (ANSWER, ANSWER, False)
    assert [with_schema(r) for r in llm_server.requests] == [True, False, False]


def test_a_400_about_something_else_keeps_schemas_on(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(400, message="prompt too long"), Fault.status(400, message="prompt too long"))

    async def fail_then_retry(llm: OpenAICompatibleLLM) -> tuple[str, bool, str]:
        with pytest.raises(LLMResponseError, match="prompt too long") as caught:
            await llm.complete(MESSAGES, schema=SCHEMA)
        return str(caught.value), llm.structured, await llm.complete(MESSAGES, schema=SCHEMA)

    error, structured, answer = run(llm_server, fail_then_retry)
    assert "RAG_LLM__MAX_TOKENS" in error
    assert structured is True and answer == JSON_ANSWER
    assert [with_schema(r) for r in llm_server.requests] == [True, False, True]


@pytest.mark.parametrize("action", ["complete", "stream"])
def test_on_makes_a_refusal_an_error(old_server: ScriptedOpenAIServer, action: str) -> None:
    async def call(llm: OpenAICompatibleLLM) -> object:
        return await (llm.complete(MESSAGES, schema=SCHEMA) if action == "complete" else collect(llm))

    with pytest.raises(LLMResponseError, match=r"400.*RAG_LLM__STRUCTURED_OUTPUT=auto or off"):
        run(old_server, call, structured_output="on")
    assert len(old_server.requests) == 1 and with_schema(old_server.requests[0])


def test_on_keeps_sending_after_a_refusal(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.status(400))

    async def twice(llm: OpenAICompatibleLLM) -> tuple[str, bool]:
        with pytest.raises(LLMResponseError):
            await llm.complete(MESSAGES, schema=SCHEMA)
        return await llm.complete(MESSAGES, schema=SCHEMA), llm.structured

    assert run(llm_server, twice, structured_output="on") == (JSON_ANSWER, True)
    assert [with_schema(r) for r in llm_server.requests] == [True, True]


def test_off_never_sends_a_schema(llm_server: ScriptedOpenAIServer) -> None:
    async def both(llm: OpenAICompatibleLLM) -> tuple[str, list[str], bool]:
        return await llm.complete(MESSAGES, schema=SCHEMA), await collect(llm), llm.structured

    answer, pieces, structured = run(llm_server, both, structured_output="off")
    assert answer == "".join(pieces).strip() == ANSWER and structured is False
    assert [(with_schema(r), r.get("stop")) for r in llm_server.requests] == [(False, STOP), (False, STOP)]


def test_retries_keep_the_schema(llm_server: ScriptedOpenAIServer) -> None:
    async def both(llm: OpenAICompatibleLLM) -> tuple[str, list[str], int]:
        llm_server.inject(Fault.status(503))
        answer = await llm.complete(MESSAGES, schema=SCHEMA)
        llm_server.inject(Fault.status(502))
        return answer, await collect(llm), llm.retries

    answer, pieces, retries = run(llm_server, both)
    assert answer == "".join(pieces) == JSON_ANSWER and retries == 2
    assert [with_schema(r) for r in llm_server.requests] == [True] * 4


def test_a_stream_broken_after_tokens_is_not_resent(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.drop_stream_after(4))
    with pytest.raises(LLMResponseError, match="closed the stream after 4 token"):
        run(llm_server, collect)
    assert len(llm_server.requests) == 1


def test_a_server_that_ignores_the_schema_gives_free_text(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.inject(Fault.ignore_schema(), Fault.ignore_schema())

    async def both(llm: OpenAICompatibleLLM) -> tuple[str, list[str], bool]:
        return await llm.complete(MESSAGES, schema=SCHEMA), await collect(llm), llm.structured

    answer, pieces, structured = run(llm_server, both)
    assert answer == "".join(pieces).strip() == ANSWER and structured is True
    assert parse_answer(answer, 2).structured is False
    assert all(with_schema(r) for r in llm_server.requests)


def test_a_cut_off_reply_reaches_the_parser_intact(llm_server: ScriptedOpenAIServer) -> None:
    cut = JSON_ANSWER[:50]
    llm_server.inject(Fault.reply(cut), Fault.reply(cut))

    async def both(llm: OpenAICompatibleLLM) -> tuple[str, list[str]]:
        return await llm.complete(MESSAGES, schema=SCHEMA), await collect(llm)

    answer, pieces = run(llm_server, both)
    assert answer == "".join(pieces) == cut and len(pieces) > 5
    with pytest.raises(AnswerFormatError, match=r"cut off.*RAG_LLM__MAX_TOKENS"):
        parse_answer(answer, 2)


def test_scripted_reply_streams_exactly(llm_server: ScriptedOpenAIServer) -> None:
    reply = '{"answerable": true, "sentences": [{"text": "A \\"quoted\\" \\u00e9.", "citations": [3]}]}'
    llm_server.inject(Fault.reply(reply))
    assert "".join(run(llm_server, collect)) == reply
    assert parse_answer(reply, 2).invalid_citations == (3,)


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="auto, on, off"):
        OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m", structured_output="always")  # type: ignore[arg-type]


# -- the in-process fake -----------------------------------------------------------------------


def test_scripted_llm_honours_a_schema() -> None:
    async def calls(llm: ScriptedLLM) -> tuple[str, str, list[str]]:
        return (await llm.complete(MESSAGES, schema=SCHEMA), await llm.complete(MESSAGES),
                [piece async for piece in llm.stream(MESSAGES, schema=SCHEMA)])

    llm = ScriptedLLM()
    structured, plain, pieces = asyncio.run(calls(llm))
    assert structured == "".join(pieces) == JSON_ANSWER and plain == ANSWER and len(pieces) > 10
    assert llm.schemas == [SCHEMA, None, SCHEMA]
    without = ScriptedLLM(structured=False)
    assert asyncio.run(without.complete(MESSAGES, schema=SCHEMA)) == ANSWER


def test_refusal_as_json() -> None:
    assert json.loads(structured_answer("No passages here.", "anything")) == {"answerable": False, "sentences": []}
    assert parse_answer(structured_answer("No passages."), 0).answerable is False
