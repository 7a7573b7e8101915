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
from rag.decisions import AnswerPolicy, Outcome
from rag.errors import InputError, LLMEmptyResponseError
from rag.injection import find_instructions
from rag.prompting import TokenCounter, make_citations, pack_messages
from rag.protocols import LLMClient, Retriever
from rag.tokenizer import TextTokenizer
from rag.types import Answer, Filters, Message, ScoredChunk

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
        policy: AnswerPolicy | None = None,
        tokenizer: TextTokenizer | None = None,
        prompt_budget_tokens: int | None = None,
        count_tokens: TokenCounter | None = None,
    ) -> None:
        self.retriever = retriever
        self.llm = llm
        self.prompt = prompt
        self.index_version = index_version
        self._top_k = top_k
        self._max_top_k = max_top_k
        self._max_question_chars = max_question_chars
        self.policy = policy or AnswerPolicy()
        self._tokenizer = tokenizer or TextTokenizer()
        self._budget_tokens, self._count_tokens = prompt_budget_tokens, count_tokens

    async def ask(self, question: str, *, top_k: int | None = None, filters: Filters | None = None) -> Answer:
        timings: dict[str, float] = {}
        question, hits = await self._retrieve(question, top_k, filters, timings)
        outcome = self.policy.before_generation(hits)
        if outcome is None:
            messages, hits = self._pack(question, hits)  # from here on, hits are the passages shown, numbered so
            tick = time.perf_counter()
            try:
                text = await self.llm.complete(messages)
            except LLMEmptyResponseError:
                text = ""  # reviewed below: an empty answer escalates instead of failing the request
            timings["generate"] = _ms_since(tick)
            outcome = self._review(text, hits)
        timings["total"] = round(sum(timings.values()), 2)
        return self._answer(outcome, hits, timings)

    async def stream(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None
    ) -> AsyncIterator[StreamEvent]:
        """'citations', then the model's 'delta's as they come, then 'done' with the verified answer
        and the decision (a sentence already streamed can still be removed there). When the question
        or a passage carries instructions aimed at the assistant, nothing is streamed before review:
        one 'delta' with the reviewed answer, so an injected reply never reaches the customer live."""
        timings: dict[str, float] = {}
        question, hits = await self._retrieve(question, top_k, filters, timings)
        outcome = self.policy.before_generation(hits)
        messages, hits = self._pack(question, hits) if outcome is None else ([], hits)  # hits: the passages shown
        yield StreamEvent("citations", {"citations": [asdict(c) for c in make_citations("", hits)]})
        if outcome is None:
            tick = time.perf_counter()
            parts: list[str] = []
            live = not (find_instructions(question) or any(find_instructions(h.chunk.text) for h in hits))
            try:
                async for delta in self.llm.stream(messages):
                    if not parts:
                        timings["first_token"] = _ms_since(tick)
                    parts.append(delta)
                    if live:
                        yield StreamEvent("delta", {"text": delta})
            except LLMEmptyResponseError:
                parts.clear()  # escalates in review, like an empty non-streamed answer
            timings["generate"] = _ms_since(tick)
            outcome = self._review("".join(parts).strip(), hits)
            if not live:
                yield StreamEvent("delta", {"text": outcome.text})
        else:
            yield StreamEvent("delta", {"text": outcome.text})
        answer = self._answer(outcome, hits, timings)
        yield StreamEvent("done", {
            "answer": answer.answer, "cited": [c.n for c in answer.citations if c.cited],
            "citations": [asdict(c) for c in answer.citations], "decision": answer.decision, "reason": answer.reason,
            "confidence": answer.confidence, "removed": list(answer.removed), "model": answer.model,
            "prompt": answer.prompt, "index_version": answer.index_version, "timings_ms": timings,
        })

    def _pack(self, question: str, hits: list[ScoredChunk]) -> tuple[list[Message], list[ScoredChunk]]:
        return pack_messages(self.prompt, question, hits, budget_tokens=self._budget_tokens,
                             count_tokens=self._count_tokens)

    def _review(self, text: str, hits: list[ScoredChunk]) -> Outcome:
        return self.policy.review(text, hits, self._tokenizer, refusal=self.prompt.refusal or self.policy.handoff_message)

    def _answer(self, outcome: Outcome, hits: list[ScoredChunk], timings: dict[str, float]) -> Answer:
        cited = outcome.text if outcome.decision == "answer" else ""
        return Answer(outcome.text, make_citations(cited, hits, tokenizer=self._tokenizer), self.llm.model,
                      self.index_version, timings, outcome.decision, outcome.reason, outcome.confidence,
                      outcome.removed, self.prompt.id)

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

