from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import prompts
from rag.decisions import AnswerPolicy
from rag.embedders import HashEmbedder
from rag.errors import InputError
from rag.index import open_index
from rag.pipeline import RagPipeline
from rag.retrieval import HybridRetriever
from rag.testing import ScriptedLLM
from rag.types import Filters


@pytest.fixture()
def pipeline(tiny_index: Path) -> RagPipeline:
    index = open_index(tiny_index, gpu="off")
    retriever = HybridRetriever.over(index, embedder=HashEmbedder())
    # The hash embedder's cosines mean nothing, so the relevance gate is off: these tests are about plumbing.
    return RagPipeline(retriever=retriever, llm=ScriptedLLM(), prompt=prompts.load("answer"),
                       index_version=index.version, top_k=3, max_top_k=5, max_question_chars=100,
                       policy=AnswerPolicy(min_relevance=0.0))


def test_ask_grounds_the_answer_in_retrieved_passages(pipeline: RagPipeline) -> None:
    answer = asyncio.run(pipeline.ask("How many lumens does the Aurora X2 give?"))
    assert "650 lumens" in answer.answer
    assert answer.citations[0].source == "docs/aurora.md" and answer.citations[0].cited
    assert len(answer.citations) == 3
    assert answer.timings_ms["total"] >= answer.timings_ms["generate"]


def test_llm_receives_question_and_passages(pipeline: RagPipeline) -> None:
    asyncio.run(pipeline.ask("  shipping time?  "))
    llm = pipeline.llm
    assert isinstance(llm, ScriptedLLM)
    system, user = llm.calls[-1]
    assert user.content == "shipping time?"
    assert "[1] (" in system.content and "[3] (" in system.content


def test_filters_and_resolved_tickets_only(pipeline: RagPipeline) -> None:
    hits = pipeline.retrieve("order", top_k=5, filters=Filters(doc_types=("ticket",)))
    assert [h.chunk.source for h in hits] == ["tickets/tickets.jsonl#T-1"]


@pytest.mark.parametrize(("question", "top_k", "message"), [
    ("", None, "empty"), ("   ", None, "empty"), ("x" * 101, None, "limit is 100"),
    ("ok", 0, "between 1 and 5"), ("ok", 6, "between 1 and 5"),
])
def test_bad_questions_raise_input_error(pipeline: RagPipeline, question: str, top_k: int | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        asyncio.run(pipeline.ask(question, top_k=top_k))


def test_stream_yields_citations_then_deltas_then_done(pipeline: RagPipeline) -> None:
    async def collect() -> list[tuple[str, dict[str, object]]]:
        return [(e.type, e.data) async for e in pipeline.stream("Aurora X2 charging time")]

    events = asyncio.run(collect())
    assert events[0][0] == "citations" and events[-1][0] == "done"
    assert "".join(str(d["text"]) for t, d in events if t == "delta").strip() == events[-1][1]["answer"]
    assert "first_token" in events[-1][1]["timings_ms"]  # type: ignore[operator]
