"""Passages packed into the prompt within a token budget, and citations numbered as the passages shown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import prompts
from prompts import PromptTemplate
from rag.decisions import AnswerPolicy
from rag.errors import ConfigError
from rag.factory import build_runtime
from rag.pipeline import RagPipeline
from rag.prompting import estimate_tokens, load_token_counter, make_citations, pack_messages
from rag.settings import Settings
from rag.testing import ScriptedLLM
from rag.types import Chunk, Filters, ScoredChunk

# One word a token: "Rules." and the question "Why?" cost 1 each; a passage costs 5 for its header
# "[n] (policy: T — pN)" plus its words.
TEMPLATE = PromptTemplate("t", "v1", system="Rules.\n{passages}", user="{question}")
FIXED, HEADER = 2, 5
GEMMA = Path("~/.cache/rag/vllm/models/gemma-3-270m").expanduser()


def words(text: str) -> int:
    return len(text.split())


def hit(i: int, n_words: int) -> ScoredChunk:
    text = " ".join(f"w{i}" for _ in range(n_words)) + "."
    return ScoredChunk(Chunk(id=i, text=text, source=f"p{i}", title="T", doc_type="policy"), 1 - i / 10)


HITS = [hit(1, 10), hit(2, 20), hit(3, 5)]  # 15, 25 and 10 tokens as passages


def test_every_passage_fits_within_an_exact_budget() -> None:
    messages, shown = pack_messages(TEMPLATE, "Why?", HITS, budget_tokens=FIXED + 15 + 25 + 10, count_tokens=words)
    assert shown == HITS and sum(words(m.content) for m in messages) == 52


def test_a_passage_that_does_not_fit_is_dropped_and_citations_follow_the_passages_shown() -> None:
    messages, shown = pack_messages(TEMPLATE, "Why?", HITS, budget_tokens=FIXED + 15 + 25 + 9, count_tokens=words)
    assert shown == HITS[:2]
    assert "[2] (policy: T — p2)" in messages[0].content and "p3" not in messages[0].content
    assert [(c.n, c.source) for c in make_citations("See [2].", shown)] == [(1, "p1"), (2, "p2")]


def test_a_smaller_later_passage_takes_the_room_a_larger_one_left() -> None:
    messages, shown = pack_messages(TEMPLATE, "Why?", HITS, budget_tokens=FIXED + 15 + 10, count_tokens=words)
    assert shown == [HITS[0], HITS[2]]  # rank order kept, renumbered: p3 is shown as [2]
    assert "[2] (policy: T — p3)" in messages[0].content
    assert [(c.n, c.source) for c in make_citations("", shown)] == [(1, "p1"), (2, "p3")]


def test_the_first_passage_alone_too_big_is_cut_at_a_sentence_end_to_fit() -> None:
    text = "One two three four. " * 10  # 40 words in sentences of 4
    big = ScoredChunk(Chunk(id=1, text=text, source="p1", title="T", doc_type="policy"), 0.9)
    messages, shown = pack_messages(TEMPLATE, "Why?", [big, HITS[2]], budget_tokens=FIXED + HEADER + 10,
                                    count_tokens=words)
    assert [h.chunk.text for h in shown] == ["One two three four. One two three four. …"]  # 9 words; 3 sentences: 13
    assert shown[0].score == big.score and sum(words(m.content) for m in messages) <= FIXED + HEADER + 10


def test_without_a_budget_every_passage_is_shown_and_without_hits_the_prompt_says_so() -> None:
    assert pack_messages(TEMPLATE, "Why?", HITS, count_tokens=words)[1] == HITS
    messages, shown = pack_messages(TEMPLATE, "Why?", [], budget_tokens=1, count_tokens=words)
    assert shown == [] and messages[0].content == "Rules.\n(no passages found)"


def test_counting_falls_back_to_the_estimate_without_a_local_tokenizer(tmp_path: Path) -> None:
    assert load_token_counter(None) is estimate_tokens
    assert load_token_counter(str(tmp_path / "no-such-model")) is estimate_tokens
    assert load_token_counter("not-a-cached-hub-model-xyz") is estimate_tokens  # local_files_only: no download
    # a token per digit, punctuation mark and CJK character; other text a token per 3 UTF-8 bytes, rounded up
    assert [estimate_tokens(s) for s in ("", "abc", "abcd", "退货", "45", "a, b")] == [0, 1, 2, 2, 2, 2]


def test_packing_counts_with_the_estimate_when_given_no_counter() -> None:
    template = prompts.load("answer")
    full, _ = pack_messages(template, "Why?", HITS)
    needed = sum(estimate_tokens(m.content) for m in full)
    assert pack_messages(template, "Why?", HITS, budget_tokens=needed)[1] == HITS
    assert pack_messages(template, "Why?", HITS, budget_tokens=needed - 1)[1] == HITS[:2]


@pytest.mark.slow
@pytest.mark.skipif(not (GEMMA / "tokenizer.json").exists(), reason=f"no prepared model at {GEMMA}: run `rag llm serve`")
def test_the_served_models_tokenizer_counts_fewer_tokens_than_the_estimate() -> None:
    count = load_token_counter(str(GEMMA))
    assert count is not estimate_tokens
    messages, _ = pack_messages(prompts.load("answer"), "How long do I have to return an opened lamp?", HITS)
    real, estimate = (sum(c(m.content) for m in messages) for c in (count, estimate_tokens))
    assert 0 < real < estimate


class FixedRetriever:
    def retrieve(self, question: str, *, top_k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        return [ScoredChunk(Chunk(id=i, text=f"Returns take {i} days.", source=f"p{i}.md", title="Returns",
                                  doc_type="policy"), 0.9 - i / 10) for i in range(1, 4)][:top_k]


def budgeted_pipeline(passages: int) -> tuple[RagPipeline, ScriptedLLM]:
    """A pipeline whose budget holds exactly `passages` of FixedRetriever's three."""
    template, hits = prompts.load("answer"), FixedRetriever().retrieve("q", top_k=3)
    full, _ = pack_messages(template, "How long?", hits[:passages])
    budget = sum(estimate_tokens(m.content) for m in full)
    llm = ScriptedLLM()
    return RagPipeline(retriever=FixedRetriever(), llm=llm, prompt=template, index_version="v1", top_k=3,
                       policy=AnswerPolicy(min_relevance=0.0), prompt_budget_tokens=budget), llm


def test_the_answer_cites_only_the_passages_the_model_was_shown() -> None:
    pipeline, llm = budgeted_pipeline(2)
    answer = asyncio.run(pipeline.ask("How long?"))
    assert "[2] (" in llm.calls[-1][0].content and "[3] (" not in llm.calls[-1][0].content
    assert [(c.n, c.source) for c in answer.citations] == [(1, "p1.md"), (2, "p2.md")]
    assert answer.decision == "answer" and answer.citations[0].cited


def test_a_streamed_answer_lists_only_the_passages_shown_from_the_first_event() -> None:
    pipeline, _ = budgeted_pipeline(1)

    async def collect() -> list[tuple[str, dict[str, object]]]:
        return [(e.type, e.data) async for e in pipeline.stream("How long?")]

    events = asyncio.run(collect())
    first, done = events[0][1]["citations"], events[-1][1]["citations"]
    assert [c["source"] for c in first] == [c["source"] for c in done] == ["p1.md"]  # type: ignore[attr-defined,index]


def test_the_runtime_budget_is_the_context_less_the_answer_and_the_margin(tiny_index: Path) -> None:
    base = {"index": {"dir": tiny_index}, "embedding": {"backend": "hash", "model": "hash-64"}}
    runtime = build_runtime(Settings(**base, llm={"model": "remote-model", "context_tokens": 4096}))  # type: ignore[arg-type]
    try:
        assert runtime.pipeline._budget_tokens == 4096 - 192 - 32
        assert runtime.pipeline._count_tokens is estimate_tokens  # not the model `rag llm serve` prepares
    finally:
        runtime.index.close()
    with pytest.raises(ConfigError, match="leaves no room for a prompt"):
        build_runtime(Settings(**base, llm={"context_tokens": 200}))  # type: ignore[arg-type]
