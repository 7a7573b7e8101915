"""The OpenAI-compatible client (vLLM first): the only module that imports openai."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

from rag.errors import ConfigError, LLMError, LLMResponseError, LLMTimeoutError, LLMUnavailableError
from rag.types import Message

__all__ = ["OpenAICompatibleLLM"]


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
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> None:
        if len(stop) > 4:
            raise ConfigError(f"{len(stop)} stop sequences given; OpenAI-compatible servers accept at most 4")
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if stop:
            self._params["stop"] = list(stop)
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

    async def complete(self, messages: Sequence[Message]) -> str:
        try:
            reply = await self._client.chat.completions.create(
                model=self._model, messages=_wire(messages), **self._params
            )
        except openai.APIError as exc:
            raise self._translate(exc) from exc
        if not reply.choices:
            raise LLMResponseError(f"LLM server at {self._base_url} returned no choices")
        return (reply.choices[0].message.content or "").strip()

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        try:
            events = await self._client.chat.completions.create(
                model=self._model, messages=_wire(messages), stream=True, **self._params
            )
            async for event in events:
                if event.choices and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
        except openai.APIError as exc:
            raise self._translate(exc) from exc

    async def models(self) -> list[str]:
        """The model names the server serves (a cheap readiness probe)."""
        try:
            page = await self._client.models.list()
        except openai.APIError as exc:
            raise self._translate(exc) from exc
        return [model.id for model in page.data]

    async def aclose(self) -> None:
        await self._client.close()

    def _translate(self, exc: openai.APIError) -> LLMError:
        where = f"LLM server at {self._base_url}"
        if isinstance(exc, openai.APITimeoutError):
            return LLMTimeoutError(f"{where} did not answer in time: raise RAG_LLM__TIMEOUT_S or use a faster server")
        if isinstance(exc, openai.APIConnectionError):
            return LLMUnavailableError(
                f"{where} is unreachable: start one with `rag llm serve` or set RAG_LLM__BASE_URL"
            )
        if isinstance(exc, openai.NotFoundError):
            return LLMResponseError(
                f"{where} does not serve model {self._model!r}: set RAG_LLM__MODEL to a served name"
            )
        status = getattr(exc, "status_code", None)
        return LLMResponseError(f"{where} answered {status or 'an error'}: {exc.message}")


def _wire(messages: Sequence[Message]) -> list[Any]:
    return [{"role": m.role, "content": m.content} for m in messages]
