"""The core pipeline: question -> retrieval -> grounded prompt -> LLM -> answer with citations.

The CLI and the HTTP API are thin shells over `RagPipeline`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any

import anyio.to_thread

from prompts import PromptTemplate
from rag.errors import InputError
from rag.prompting import build_messages, cited_numbers, make_citations
from rag.protocols import LLMClient, Retriever
from rag.types import Answer, Filters, ScoredChunk

__all__ = ["RagPipeline", "StreamEvent"]


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of a streamed answer: 'citations' first, then 'delta's, then 'done'."""

    type: str
    data: dict[str, Any]


class RagPipeline:
    """Answers questions from an index through an LLM; safe to share across requests."""

    def __init__(
        self,
        *,
        retriever: Retriever,
        llm: LLMClient,
        prompt: PromptTemplate,
        index_version: str,
        top_k: int = 4,
        max_top_k: int = 20,
        max_question_chars: int = 2000,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.prompt = prompt
        self.index_version = index_version
        self._top_k = top_k
        self._max_top_k = max_top_k
        self._max_question_chars = max_question_chars

    async def ask(self, question: str, *, top_k: int | None = None, filters: Filters | None = None) -> Answer:
        timings: dict[str, float] = {}
        question, hits = await self._retrieve(question, top_k, filters, timings)
        tick = time.perf_counter()
        text = await self.llm.complete(build_messages(self.prompt, question, hits))
        timings["generate"] = _ms_since(tick)
        timings["total"] = round(sum(timings.values()), 2)
        return Answer(text, make_citations(text, hits), self.llm.model, self.index_version, timings)

    async def stream(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None
    ) -> AsyncIterator[StreamEvent]:
        timings: dict[str, float] = {}
        question, hits = await self._retrieve(question, top_k, filters, timings)
        yield StreamEvent("citations", {"citations": [asdict(c) for c in make_citations("", hits)]})
        tick = time.perf_counter()
        parts: list[str] = []
        async for delta in self.llm.stream(build_messages(self.prompt, question, hits)):
            if not parts:
                timings["first_token"] = _ms_since(tick)
            parts.append(delta)
            yield StreamEvent("delta", {"text": delta})
        timings["generate"] = _ms_since(tick)
        text = "".join(parts).strip()
        cited = sorted(cited_numbers(text, len(hits)))
        yield StreamEvent("done", {"answer": text, "cited": cited, "model": self.llm.model,
                                   "index_version": self.index_version, "timings_ms": timings})

    def retrieve(self, question: str, *, top_k: int | None = None, filters: Filters | None = None) -> list[ScoredChunk]:
        """Retrieval alone, for `rag ask --retrieve-only`, evaluation and the LangChain adapter."""
        return self.retriever.retrieve(self._validate(question), top_k=self._k(top_k), filters=filters)

    async def _retrieve(
        self, question: str, top_k: int | None, filters: Filters | None, timings: dict[str, float]
    ) -> tuple[str, list[ScoredChunk]]:
        question, k = self._validate(question), self._k(top_k)
        tick = time.perf_counter()
        hits = await anyio.to_thread.run_sync(lambda: self.retriever.retrieve(question, top_k=k, filters=filters))
        timings["retrieve"] = _ms_since(tick)
        return question, hits

    def _validate(self, question: str) -> str:
        question = question.strip()
        if not question:
            raise InputError("the question is empty: send a non-empty 'question'")
        if len(question) > self._max_question_chars:
            raise InputError(
                f"the question is {len(question)} characters long; the limit is {self._max_question_chars}"
            )
        return question

    def _k(self, top_k: int | None) -> int:
        k = self._top_k if top_k is None else top_k
        if not 1 <= k <= self._max_top_k:
            raise InputError(f"top_k must be between 1 and {self._max_top_k}, got {k}")
        return k


def _ms_since(tick: float) -> float:
    return round((time.perf_counter() - tick) * 1000, 2)

