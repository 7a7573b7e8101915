"""Retrieval on the real sample index (MiniLM, FAISS, BM25, unstructured): the suite's targets and the
behaviours a support bot relies on. Figures measured on this index are in the README."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from eval import evaluate, load_suite
from rag.index import LoadedIndex, open_index
from rag.ranking import SourcePriors
from rag.retrieval import MODES, HybridRetriever
from rag.types import Filters
from tests.conftest import SAMPLE_SUITE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def index(sample_index: tuple[Path, object]) -> LoadedIndex:
    return open_index(sample_index[0], gpu="off")


@pytest.fixture(scope="module")
def retrievers(index: LoadedIndex, shipped: object) -> dict[str, HybridRetriever]:
    return {mode: HybridRetriever.over(index, embedder=shipped, mode=mode) for mode in MODES}  # type: ignore[arg-type]


def test_hybrid_beats_each_single_mode_on_the_sample_suite(retrievers: dict[str, HybridRetriever],
                                                             index: LoadedIndex) -> None:
    cases = load_suite(SAMPLE_SUITE)
    assert len(cases) >= 80
    assert sum("zh" in c.tags for c in cases) >= 10 and sum("ticket-only" in c.tags for c in cases) >= 10
    results = evaluate(retrievers, cases, k=10, aliases=index.store.duplicate_groups())
    ndcg = {mode: results.modes[mode].metrics()["ndcg@10"] for mode in MODES}
    assert ndcg["hybrid"] >= max(ndcg["dense"], ndcg["bm25"]), ndcg
    assert ndcg["hybrid"] >= 0.87, ndcg  # measured 0.882; a drop below this floor is a regression
    assert results.modes["hybrid"].metrics()["recall@10"] >= 0.93


def test_a_chinese_question_finds_the_chinese_passage(retrievers: dict[str, HybridRetriever]) -> None:
    for mode in ("bm25", "hybrid"):
        hits = retrievers[mode].retrieve("寄到香港的运费是多少？多久能到？", top_k=3)
        assert hits[0].chunk.source == "policies/shipping-faq-asia-zh.html", (mode, [h.chunk.source for h in hits])
        # MiniLM is English-only, so the relevance of a Chinese match comes from lexical coverage
        assert hits[0].chunk.language == "zh" and hits[0].score > 0.5


def test_the_current_policy_ranks_above_the_superseded_one_unless_the_date_asks_otherwise(
        retrievers: dict[str, HybridRetriever]) -> None:
    retriever = retrievers["hybrid"]
    sources = [h.chunk.source for h in retriever.retrieve("How many days do I have to return an item?", top_k=10)]
    assert sources.index("policies/returns-policy-2025.md") < sources.index("policies/returns-policy-2024.md")
    in_2024 = Filters(doc_types=("policy",), effective_on=date(2024, 6, 1))
    hits = retriever.retrieve("How many days do I have to return an item?", top_k=3, filters=in_2024)
    assert hits and {h.chunk.source for h in hits} == {"policies/returns-policy-2024.md"}


def test_a_policy_outranks_a_ticket_that_says_otherwise(retrievers: dict[str, HybridRetriever], index: LoadedIndex,
                                                         shipped: object) -> None:
    # T-1008 (2024) quotes the old 30-day window almost word for word; the current policy says 45 days.
    question = "my son opened the headlamp box, how long do I have to return it?"
    sources = [h.chunk.source for h in retrievers["hybrid"].retrieve(question, top_k=3)]
    assert {"policies/returns-policy-2025.md", "tickets/tickets.jsonl#T-1008"} <= set(sources), sources
    strict = HybridRetriever.over(index, embedder=shipped, priors=SourcePriors(policy_over_ticket=0.2))  # type: ignore[arg-type]
    assert strict.retrieve(question, top_k=1)[0].chunk.source == "policies/returns-policy-2025.md"


def test_product_filter_and_scores(retrievers: dict[str, HybridRetriever]) -> None:
    hits = retrievers["hybrid"].retrieve("it will not charge", top_k=5, filters=Filters(products=("tidal bt5 speaker",)))
    assert len(hits) == 5 and {h.chunk.metadata["product"] for h in hits} == {"Tidal BT5 speaker"}
    assert all(0.0 <= h.score <= 1.0 for h in hits) and all("dense" in h.signals for h in hits)


def test_near_duplicate_tickets_fill_one_slot(retrievers: dict[str, HybridRetriever], index: LoadedIndex) -> None:
    dimming = {"tickets/tickets.jsonl#T-1001", "tickets/tickets.jsonl#T-1002", "tickets/tickets.csv#T-2009"}
    groups = {c.source: (c.metadata["duplicate_group"], c.metadata["duplicates"]) for c in index.store.of_doc_type("ticket")}
    assert {groups[s] for s in dimming} == {("tickets/tickets.csv#T-2009", 3)}  # one group, smallest id represents it
    assert sum(1 for g, n in groups.values() if n > 1) == 3  # only that recurring problem is grouped
    hits = retrievers["hybrid"].retrieve("my Aurora X2 headlamp gets dim after a few minutes on high", top_k=4,
                                         filters=Filters(doc_types=("ticket",)))
    sources = [h.chunk.source for h in hits]
    assert len(hits) == 4 and len(set(sources) & dimming) == 1, sources


def test_one_long_document_does_not_fill_the_top_k(retrievers: dict[str, HybridRetriever]) -> None:
    hits = retrievers["hybrid"].retrieve("Hearth T4 installation wiring steps", top_k=6)
    counts: dict[str, int] = {}
    for hit in hits:
        counts[hit.chunk.source] = counts.get(hit.chunk.source, 0) + 1
    assert max(counts.values()) <= 2, counts


def test_the_golden_suites_vague_questions_ask_which_product_with_the_shipped_defaults(
    retrievers: dict[str, HybridRetriever],
) -> None:
    """The clarify decision with the default answer settings over what the default embedder retrieves: the
    demo's "Is it waterproof?" asks (Aurora X2 0.55, Tidal BT5 0.44: within the 0.15 margin), 4 of the
    suite's 9 vague questions ask, and no other golden case does."""
    from eval.suite import load_suite as load_cases
    from rag.decisions import AnswerPolicy
    from rag.settings import AnswerSettings
    from rag.tokenizer import TextTokenizer

    options = AnswerSettings()
    policy = AnswerPolicy(options.min_relevance, options.strictness, options.support_threshold,
                          options.handoff_message, clarify_margin=options.clarify_margin)
    cases = load_cases(Path(__file__).parents[2] / "eval" / "suites" / "golden.jsonl")
    asked = {c.id for c in cases if (outcome := policy.before_generation(
        c.question, retrievers["hybrid"].retrieve(c.question, top_k=4), TextTokenizer()))
        and outcome.decision == "clarify"}
    vague = {c.id for c in cases if c.expected_decision == "clarify"}
    assert {"amb-waterproof", "amb-reset"} <= asked
    assert asked <= vague and len(asked) >= 4, sorted(asked)
