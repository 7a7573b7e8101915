"""Known questions find their source in the top 3, with the real model and FAISS."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.retrieval import evaluate_retrieval, load_questions
from rag.index import open_index
from rag.retrieval import DenseRetriever
from rag.types import Filters
from tests.conftest import SAMPLE_QUESTIONS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retriever(sample_index: tuple[Path, object], minilm: object) -> DenseRetriever:
    index = open_index(sample_index[0], gpu="off")
    return DenseRetriever(embedder=minilm, vectors=index.vectors, store=index.store)  # type: ignore[arg-type]


def test_hit_rate_at_3_on_the_sample_questions(retriever: DenseRetriever) -> None:
    cases = [c for c in load_questions(SAMPLE_QUESTIONS) if c.answerable]
    assert len(cases) >= 25
    report = evaluate_retrieval(retriever, cases, k=5)
    assert report.hit_rate(3) >= 0.9, report.as_dict()["misses"]
    assert report.mrr >= 0.8, report.as_dict()


@pytest.mark.parametrize(("question", "source"), [
    ("How many days do I have to return an item?", "policies/returns-policy-2025.md"),
    ("What does error code E04 mean on the Volt 300?", "docs/volt-300-error-codes.html"),
])
def test_core_questions_rank_their_source_in_the_top_3(retriever: DenseRetriever, question: str, source: str) -> None:
    assert source in [h.chunk.source for h in retriever.retrieve(question, top_k=3)]


def test_doc_type_filter_and_scores(retriever: DenseRetriever) -> None:
    hits = retriever.retrieve("refund for a broken item", top_k=5, filters=Filters(doc_types=("ticket",)))
    assert len(hits) == 5 and {h.chunk.doc_type for h in hits} == {"ticket"}
    assert all(-1.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_near_duplicate_tickets_fill_one_slot(retriever: DenseRetriever, sample_index: tuple[Path, object]) -> None:
    dimming = {"tickets/tickets.jsonl#T-1001", "tickets/tickets.jsonl#T-1002", "tickets/tickets.csv#T-2009"}
    store = open_index(sample_index[0], gpu="off").store
    groups = {c.source: (c.metadata["duplicate_group"], c.metadata["duplicates"]) for c in store.of_doc_type("ticket")}
    assert {groups[s] for s in dimming} == {("tickets/tickets.csv#T-2009", 3)}  # one group, smallest id represents it
    assert sum(1 for g, n in groups.values() if n > 1) == 3  # only that recurring problem is grouped
    hits = retriever.retrieve("my Aurora X2 headlamp gets dim after a few minutes on high", top_k=4,
                              filters=Filters(doc_types=("ticket",)))
    sources = [h.chunk.source for h in hits]
    assert len(hits) == 4 and len(set(sources) & dimming) == 1, sources
