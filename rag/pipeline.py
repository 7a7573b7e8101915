"""The core pipeline: question -> retrieval -> grounded prompt -> LLM -> answer with citations.

The CLI and the HTTP API are thin shells over `RagPipeline`. While the LLM server is down (a server
fault, `rag.llm.guard.is_server_fault`, the open circuit breaker included), `on_llm_failure` decides:
"error" raises it (the API answers 503/504/502); "extractive" escalates with the best passages quoted
(`AnswerPolicy.degraded`), and a follow-up that cannot be rewritten is asked joined to the previous question.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import anyio.to_thread

import prompts
from prompts import PromptTemplate
from rag import metrics
from rag.answer_format import StructuredStream, answer_schema, parse_answer
from rag.conversations import condense_messages, standalone
from rag.decisions import AnswerPolicy, Outcome
from rag.errors import AnswerFormatError, InputError, LLMEmptyResponseError, LLMError
from rag.grounding import split_sentences
from rag.injection import find_instructions
from rag.llm.guard import is_server_fault
from rag.prompting import TokenCounter, make_citations, pack_messages
from rag.protocols import LLMClient, Retriever
from rag.tokenizer import TextTokenizer
from rag.types import Answer, Filters, Message, ScoredChunk, Turn

__all__ = ["OnLLMFailure", "RagPipeline", "StreamEvent", "StreamUnit"]

log = logging.getLogger("rag.pipeline")
StreamUnit = Literal["token", "sentence"]
OnLLMFailure = Literal["error", "extractive"]
_MARKERS_ONLY = re.compile(r"[\s\[\]\d]*")  # what may follow a full stop before the next sentence starts


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
        condense_prompt: PromptTemplate | None = None,
        condense_turns: int = 4,
        condense_max_tokens: int = 64,
        structured_output: bool = False,
        on_llm_failure: OnLLMFailure = "error",
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
        self.condense_prompt = condense_prompt or prompts.load("condense")
        self._condense_turns, self._condense_max_tokens = condense_turns, condense_max_tokens
        self._structured = structured_output  # ask for JSON (rag.answer_format); the client falls back to text
        self.on_llm_failure = on_llm_failure

    async def ask(self, question: str, *, top_k: int | None = None, filters: Filters | None = None,
                  history: Sequence[Turn] = ()) -> Answer:
        """Answer `question`; with a `history`, it is first rewritten to stand alone (a follow-up)."""
        timings: dict[str, float] = {}
        question, rewritten, hits = await self._retrieve(question, top_k, filters, history, timings)
        outcome = self.policy.before_generation(question, hits, self._tokenizer)
        if outcome is None:
            messages, hits = self._pack(question, hits)  # from here on, hits are the passages shown, numbered so
            tick = time.perf_counter()
            degraded: Outcome | None = None
            try:
                raw = await self.llm.complete(messages, schema=self._schema(hits))
            except LLMEmptyResponseError:
                raw = ""  # reviewed below: an empty answer escalates instead of failing the request
            except LLMError as exc:
                if not self._degrades(exc):
                    raise
                raw, degraded = "", self._degraded(question, hits, exc)
            timings["generate"] = _ms_since(tick)
            outcome = degraded or self._settle(raw, hits)
        timings["total"] = round(sum(timings.values()), 2)
        return self._answer(outcome, hits, timings, rewritten)

    async def stream(
        self, question: str, *, top_k: int | None = None, filters: Filters | None = None,
        history: Sequence[Turn] = (), unit: StreamUnit = "token",
    ) -> AsyncIterator[StreamEvent]:
        """'citations', then 'delta's, then 'done' with the verified answer and the decision.

        unit="token": the model's tokens as they come; a sentence already streamed can still be removed
        in 'done'. unit="sentence": each sentence once it is complete and passes review on its own (for
        clients that cannot take text back, like chat UIs); 'done' has the final word either way.
        When the question or a passage carries instructions aimed at the assistant, or strictness is
        strict, nothing is streamed before review: one 'delta' with the reviewed answer."""
        timings: dict[str, float] = {}
        question, rewritten, hits = await self._retrieve(question, top_k, filters, history, timings)
        outcome = self.policy.before_generation(question, hits, self._tokenizer)
        messages, hits = self._pack(question, hits) if outcome is None else ([], hits)  # hits: the passages shown
        yield StreamEvent("citations", {"citations": [asdict(c) for c in make_citations("", hits)]})
        shown, relay = "", outcome is None  # relay: the model's text reaches the reader as it comes
        if outcome is None:
            gate = _SentenceGate(self, hits) if unit == "sentence" else None
            relay = not (find_instructions(question) or any(find_instructions(h.chunk.text) for h in hits)
                         or (gate is not None and self.policy.strictness == "strict"))
            schema = self._schema(hits)
            render = StructuredStream(len(hits)) if schema is not None else None  # JSON in, answer text out
            tick = time.perf_counter()
            parts: list[str] = []
            degraded: Outcome | None = None
            try:
                async with _closing(self.llm.stream(messages, schema=schema)) as deltas:
                    async for delta in deltas:
                        if not parts:
                            timings["first_token"] = _ms_since(tick)
                        parts.append(delta)
                        text = render.feed(delta) if render else delta
                        visible = gate.feed(text) if gate and text else text
                        if relay and visible:
                            shown += visible
                            yield StreamEvent("delta", {"text": visible})
            except LLMEmptyResponseError:
                parts.clear()  # escalates in review, like an empty non-streamed answer
            except LLMError as exc:
                if not self._degrades(exc):
                    raise
                degraded = self._degraded(question, hits, exc)
            if degraded is None and render and relay and not gate and (tail := render.finish()):
                yield StreamEvent("delta", {"text": tail})
            timings["generate"] = _ms_since(tick)
            outcome = degraded or self._settle("".join(parts), hits)
            # tokens: 'done' corrects them; sentences, or the passages instead: end with the final text
            relay = relay and gate is None and degraded is None
        if not relay and (rest := _rest(shown, outcome.text)):
            yield StreamEvent("delta", {"text": rest})
        answer = self._answer(outcome, hits, timings, rewritten)
        yield StreamEvent("done", _done(answer, timings))

    def _pack(self, question: str, hits: list[ScoredChunk]) -> tuple[list[Message], list[ScoredChunk]]:
        return pack_messages(self.prompt, question, hits, budget_tokens=self._budget_tokens,
                             count_tokens=self._count_tokens)

    def _schema(self, hits: list[ScoredChunk]) -> dict[str, Any] | None:
        return answer_schema(len(hits)) if self._structured else None

    def _settle(self, raw: str, hits: list[ScoredChunk]) -> Outcome:
        """The decision on the model's whole reply, structured (JSON) or free text."""
        try:
            parsed = parse_answer(raw.strip(), len(hits))
        except AnswerFormatError as exc:
            return self.policy.escalate(f"the model's answer did not follow the answer format ({exc})")
        return self._review(parsed.text, hits, answerable=parsed.answerable, dropped=parsed.invalid_citations)

    def _review(self, text: str, hits: list[ScoredChunk], *, answerable: bool = True,
                dropped: tuple[int, ...] = ()) -> Outcome:
        return self.policy.review(text, hits, self._tokenizer, refusal=self.prompt.refusal or self.policy.handoff_message,
                                  answerable=answerable, dropped_citations=dropped)

    def _degrades(self, exc: LLMError) -> bool:
        """True when the model's failure is answered with passages instead of raised."""
        return self.on_llm_failure == "extractive" and is_server_fault(exc)

    def _degraded(self, question: str, hits: list[ScoredChunk], exc: LLMError) -> Outcome:
        return self.policy.degraded(question, hits, self._tokenizer, _cause(exc))

    def _answer(self, outcome: Outcome, hits: list[ScoredChunk], timings: dict[str, float], rewritten: str) -> Answer:
        """The answer every path ends with, counted in the metrics once."""
        cited = outcome.text if outcome.decision == "answer" or outcome.extractive else ""
        answer = Answer(outcome.text, make_citations(cited, hits, tokenizer=self._tokenizer), self.llm.model,
                        self.index_version, timings, outcome.decision, outcome.reason, outcome.confidence,
                        outcome.removed, self.prompt.id, outcome.options, rewritten)
        metrics.record_answer(answer.decision, len(answer.removed), timings)
        if outcome.extractive:
            metrics.DEGRADED.inc()
        return answer

    def retrieve(self, question: str, *, top_k: int | None = None, filters: Filters | None = None) -> list[ScoredChunk]:
        """Retrieval alone, for `rag ask --retrieve-only`, evaluation and the LangChain adapter."""
        return self.retriever.retrieve(self._validate(question), top_k=self._k(top_k), filters=filters)

    async def _retrieve(
        self, question: str, top_k: int | None, filters: Filters | None, history: Sequence[Turn],
        timings: dict[str, float],
    ) -> tuple[str, str, list[ScoredChunk]]:
        """(the question as retrieval sees it, the rewritten follow-up or "", the hits)."""
        question, k = self._validate(question), self._k(top_k)
        rewritten = await self.condense(question, history, timings) if history else ""
        asked = rewritten or question
        tick = time.perf_counter()
        hits = await anyio.to_thread.run_sync(lambda: self.retriever.retrieve(asked, top_k=k, filters=filters))
        timings["retrieve"] = _ms_since(tick)
        return asked, rewritten, hits

    async def condense(self, question: str, history: Sequence[Turn], timings: dict[str, float] | None = None) -> str:
        """The follow-up rewritten by the model into a standalone question (see rag.conversations)."""
        tick = time.perf_counter()
        try:
            reply = await self.llm.complete(
                condense_messages(self.condense_prompt, history, question, max_turns=self._condense_turns),
                max_tokens=self._condense_max_tokens, stop=self.condense_prompt.stop)
        except LLMEmptyResponseError:
            reply = ""
        except LLMError as exc:
            if not self._degrades(exc):
                raise
            log.info("follow-up asked with the previous question, not rewritten: %s", exc)
            reply = ""
        if timings is not None:
            timings["condense"] = _ms_since(tick)
        return standalone(reply, question, history, self._tokenizer, max_chars=self._max_question_chars)

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


class _SentenceGate:
    """Lets the answer through a sentence at a time, as reviewed on its own, until one fails review."""

    def __init__(self, pipeline: RagPipeline, hits: list[ScoredChunk]) -> None:
        self._pipeline, self._hits = pipeline, hits
        self._buffer, self._open, self._first = "", True, True

    def feed(self, delta: str) -> str:
        self._buffer += delta
        sentences = split_sentences(self._buffer)
        if len(sentences) < 2 or _MARKERS_ONLY.fullmatch(sentences[-1]):
            return ""  # the last sentence may still grow, or gain its [n] markers
        self._buffer = sentences[-1]
        return "".join(self._let_through(s) for s in sentences[:-1])

    def _let_through(self, sentence: str) -> str:
        outcome = self._pipeline._review(sentence, self._hits)
        self._open = self._open and outcome.decision == "answer" and not outcome.removed and bool(outcome.text)
        if not self._open:
            return ""
        text, self._first = ("" if self._first else " ") + outcome.text, False
        return text


def _rest(shown: str, final: str) -> str:
    """What to stream after `shown` so the reader ends up with `final`: the remainder, or all of it after a break."""
    if final.startswith(shown):
        return final[len(shown):]
    return "\n\n" + final


def _done(answer: Answer, timings: dict[str, float]) -> dict[str, Any]:
    return {
        "answer": answer.answer, "cited": [c.n for c in answer.citations if c.cited],
        "citations": [asdict(c) for c in answer.citations], "decision": answer.decision, "reason": answer.reason,
        "confidence": answer.confidence, "removed": list(answer.removed), "options": list(answer.options),
        "standalone_question": answer.standalone_question, "model": answer.model, "prompt": answer.prompt,
        "index_version": answer.index_version, "timings_ms": timings,
    }


@asynccontextmanager
async def _closing(stream: AsyncIterator[str]) -> AsyncIterator[AsyncIterator[str]]:
    """`stream`, closed on the way out when it can be (an async generator): a reader that hangs up
    closes the model's HTTP stream now, not whenever the garbage collector gets to it."""
    try:
        yield stream
    finally:
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()


def _cause(exc: LLMError) -> str:
    """An error's cause without its fix: our messages read "cause: fix"."""
    return str(exc).rsplit(": ", 1)[0]


def _ms_since(tick: float) -> float:
    return round((time.perf_counter() - tick) * 1000, 2)

