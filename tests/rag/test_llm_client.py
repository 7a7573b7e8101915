"""OpenAICompatibleLLM against a real HTTP server on localhost (scripted)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from rag.errors import ConfigError, LLMResponseError, LLMTimeoutError, LLMUnavailableError
from rag.llm import OpenAICompatibleLLM
from rag.testing import ScriptedOpenAIServer
from rag.types import Message
from tests.conftest import free_port

T = TypeVar("T")
MESSAGES = [Message("system", "Passages:\n[1] (T — a.md)\nT\nReturns take 45 days."), Message("user", "returns days")]


def run(factory: Callable[[OpenAICompatibleLLM], Awaitable[T]], **kw: object) -> T:
    async def main() -> T:
        llm = OpenAICompatibleLLM(**kw)  # type: ignore[arg-type]
        try:
            return await factory(llm)
        finally:
            await llm.aclose()

    return asyncio.run(main())


async def _collect(llm: OpenAICompatibleLLM) -> list[str]:
    return [part async for part in llm.stream(MESSAGES)]


def test_complete_stream_and_models(llm_server: ScriptedOpenAIServer) -> None:
    kw = {"base_url": llm_server.base_url, "model": "scripted", "stop": ["\nQuestion:"], "max_tokens": 32}
    assert run(lambda llm: llm.complete(MESSAGES), **kw) == "Returns take 45 days. [1]"
    assert "".join(run(_collect, **kw)).strip() == "Returns take 45 days. [1]"
    assert run(lambda llm: llm.models(), **kw) == ["scripted"]
    sent = llm_server.requests[0]
    assert sent["stop"] == ["\nQuestion:"] and sent["max_tokens"] == 32 and sent["temperature"] == 0.0


def test_unreachable_server() -> None:
    with pytest.raises(LLMUnavailableError, match=r"unreachable.*rag llm serve"):
        run(lambda llm: llm.complete(MESSAGES), base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")


def test_timeout(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.fault, llm_server.delay_s = "slow", 3.0
    with pytest.raises(LLMTimeoutError, match="RAG_LLM__TIMEOUT_S"):
        run(lambda llm: llm.complete(MESSAGES), base_url=llm_server.base_url, model="scripted", timeout_s=0.5)


def test_server_error_and_unknown_model(llm_server: ScriptedOpenAIServer) -> None:
    with pytest.raises(LLMResponseError, match="does not serve model 'other'"):
        run(lambda llm: llm.complete(MESSAGES), base_url=llm_server.base_url, model="other")
    llm_server.fault = "error"
    with pytest.raises(LLMResponseError, match="500"):
        run(lambda llm: llm.complete(MESSAGES), base_url=llm_server.base_url, model="scripted")
    with pytest.raises(LLMResponseError):
        run(_collect, base_url=llm_server.base_url, model="scripted")


def test_dropped_connection(llm_server: ScriptedOpenAIServer) -> None:
    llm_server.fault = "drop"
    with pytest.raises(LLMUnavailableError):
        run(lambda llm: llm.complete(MESSAGES), base_url=llm_server.base_url, model="scripted")


def test_more_than_four_stop_sequences_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="at most 4"):
        OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m", stop=["a", "b", "c", "d", "e"])
