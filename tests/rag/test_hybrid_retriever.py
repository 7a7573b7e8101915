"""HybridRetriever over a small real index (unstructured, FAISS, BM25, hash embedder): modes, signals, filters,
policy versions, diversity, the 0..1 relevance and the reranker slot."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import date

import pytest

from rag.embedders import HashEmbedder
from rag.factory import build_reranker
from rag.index import LoadedIndex, open_index
from rag.protocols import Reranker
from rag.retrieval import MODES, HybridRetriever, RelevanceScale, script_language
from rag.settings import Settings
from rag.types import Filters, ScoredChunk
from tests.conftest import make_job, roots_of, write_corpus

NEW, OLD = "policies/returns-2025.md", "policies/returns-2024.md"
ZH, MANUAL = "docs/shipping-zh.md", "docs/hearth-t4.md"
MANUAL_TEXT = "# Hearth T4 stove manual\n\n" + "\n\n".join(
    f"## Step {n}\n\nHearth T4 installation step {n}: connect the wiring harness to terminal block {n}, "
    f"check the flue clearance of {n * 5} cm and tighten the mounting bracket before the next step."
    for n in range(1, 9))
CORPUS = {
    NEW: "# Returns policy\n\nEffective date: 2025-04-01.\n\nYou can return most items within 45 days of delivery "
    "for a full refund. Opened electronics carry a 15% restocking fee.\n",
    OLD: "# Returns policy (2024)\n\nEffective date: 2024-01-01.\n\nYou can return most items within 30 days of "
    "delivery for a full refund. Opened electronics carry a 20% restocking fee.\n",
    OLD + ".meta.yaml": f"effective_from: 2024-01-01\neffective_to: 2025-04-01\nsuperseded: true\nsuperseded_by: {NEW}\n",
    ZH: "# 亚洲配送常见问题\n\n寄往香港的订单通常在三到五个工作日内送达。"
    "香港配送的运费为每单六十港元，订单满五百港元免运费。\n",
    MANUAL: MANUAL_TEXT,
    "tickets/tickets.jsonl": '{"ticket_id": "T-1", "status": "resolved", "subject": "Kettle will not turn on", '
    '"customer_message": "My BrewPoint kettle does not heat.", "agent_resolution": "Reset by holding the power '
    'button for 10 seconds; it heats again.", "product": "BrewPoint kettle"}\n'
    '{"ticket_id": "T-2", "status": "resolved", "subject": "Return window question", "customer_message": '
    '"How many days do I have to return my tent?", "agent_resolution": "Told the customer returns are accepted '
    'within 45 days of delivery.", "product": "Cascade 2P tent"}\n',
}
RETURNS = "How many days do I have to return an item?"
OLD_WORDING = "Can I still return it after 30 days? Is the restocking fee 20%?"
ZH_QUESTION = "寄到香港的运费是多少？"
WIRING = "Hearth T4 installation wiring steps"
QUESTIONS = (RETURNS, OLD_WORDING, ZH_QUESTION, WIRING, "kettle does not heat")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedIndex]:
    root = tmp_path_factory.mktemp("hybrid")
    report = make_job(root / "index").run(roots_of(write_corpus(root / "corpus", CORPUS)))
    assert report.superseded == [OLD] and not report.failed
    opened = open_index(root / "index", gpu="off")
    assert len(opened.store.of_doc_type("doc")) > 6  # the manual has many chunks
    yield opened
    opened.close()


def retriever(index: LoadedIndex, **options: object) -> HybridRetriever:
    return HybridRetriever.over(index, embedder=HashEmbedder(), **options)


def sources(hits: Sequence[ScoredChunk]) -> list[str]:
    return [h.chunk.source for h in hits]


# -- modes and signals -------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_each_mode_returns_results_with_its_own_signals(index: LoadedIndex, mode: str) -> None:
    hits = retriever(index, mode=mode).retrieve(RETURNS, top_k=3)
    assert len(hits) == 3
    assert {NEW, "tickets/tickets.jsonl#T-2"} <= set(sources(hits))
    for hit in hits:
        assert ("dense" in hit.signals) == (mode != "bm25")
        assert {"fused", "prior", "coverage"} <= set(hit.signals)
    if mode == "dense":
        assert all("bm25" not in h.signals for h in hits)


def test_hybrid_carries_both_raw_scores_for_a_chunk_both_searches_found(index: LoadedIndex) -> None:
    hits = retriever(index, mode="hybrid").retrieve(RETURNS, top_k=4)
    policy = next(h for h in hits if h.chunk.source == NEW)
    assert policy.signals["dense"] > 0 and policy.signals["bm25"] > 0
    bm25_only = retriever(index, mode="bm25").retrieve(RETURNS, top_k=4)
    assert next(h for h in bm25_only if h.chunk.source == NEW).signals["bm25"] == policy.signals["bm25"]


def test_a_constructor_refuses_a_wrong_dimension_or_mode(index: LoadedIndex) -> None:
    with pytest.raises(ValueError, match="32-d vectors"):
        HybridRetriever.over(index, embedder=HashEmbedder(dimension=32))
    with pytest.raises(ValueError, match="dense, bm25, hybrid"):
        retriever(index, mode="sparse")


# -- relevance in 0..1 -------------------------------------------------------------------------

def test_bm25_finds_the_chinese_document_and_its_relevance_is_lexical_coverage(index: LoadedIndex) -> None:
    hits = retriever(index, mode="bm25").retrieve(ZH_QUESTION, top_k=3)
    assert hits[0].chunk.source == ZH and hits[0].chunk.language == "zh"
    assert hits[0].score == hits[0].signals["coverage"] > 0.5


def test_cosine_is_trusted_for_english_questions_only(index: LoadedIndex) -> None:
    scale = RelevanceScale()  # floor 0.15, ceiling 0.65, languages ("en",)
    hybrid = retriever(index, mode="hybrid")
    for hit in hybrid.retrieve(RETURNS, top_k=4):  # English: the rescaled cosine, (cos - 0.15) / 0.5 clipped
        assert hit.score == scale.of(hit.signals["dense"], None)
    chinese = next(h for h in hybrid.retrieve(ZH_QUESTION, top_k=5) if h.chunk.source == ZH)
    # the hash vectors of two Chinese texts mean nothing: the score is the coverage, not the cosine's 0
    assert chinese.score == chinese.signals["coverage"] > 0.5
    assert scale.of(chinese.signals["dense"], None) < 0.5


@pytest.mark.parametrize("mode", MODES)
def test_every_score_is_within_zero_and_one(index: LoadedIndex, mode: str) -> None:
    for question in QUESTIONS:
        for hit in retriever(index, mode=mode).retrieve(question, top_k=8):
            assert 0.0 <= hit.score <= 1.0, (question, hit.signals)


def test_the_relevance_scale_and_the_script_of_a_question() -> None:
    scale = RelevanceScale(cosine_floor=0.2, cosine_ceiling=0.6)
    assert scale.of(0.4, None) == 0.5        # (0.4 - 0.2) / 0.4
    assert scale.of(0.1, 0.9) == 0.0         # a cosine wins over coverage, and is clipped at 0
    assert scale.of(0.9, None) == 1.0        # clipped at 1
    assert scale.of(None, 0.25) == 0.25 and scale.of(None, None) == 0.0
    assert [script_language(t) for t in ("refund", "退货", "返品したい", "환불", "Привет")] == ["en", "zh", "ja", "ko", "en"]
    assert not scale.trusts_cosine("退货") and RelevanceScale(languages=()).trusts_cosine("退货")


# -- filters -----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_filters_are_applied_before_the_search(index: LoadedIndex, mode: str) -> None:
    search = retriever(index, mode=mode)
    unfiltered = search.retrieve(WIRING, top_k=2)
    assert not any(h.chunk.doc_type == "ticket" for h in unfiltered)
    tickets = search.retrieve("kettle does not heat, how do I return it", top_k=2, filters=Filters(doc_types=("ticket",)))
    assert len(tickets) == 2 and {h.chunk.doc_type for h in tickets} == {"ticket"}
    kettle = search.retrieve("kettle", top_k=3, filters=Filters(products=("brewpoint KETTLE",)))
    assert sources(kettle) == ["tickets/tickets.jsonl#T-1"]
    assert search.retrieve(RETURNS, top_k=3, filters=Filters(languages=("fr",))) == []


def test_a_top_k_of_only_filtered_chunks_is_still_full(index: LoadedIndex) -> None:
    hits = retriever(index, mode="dense").retrieve(WIRING, top_k=2, filters=Filters(doc_types=("ticket",)))
    assert sorted(sources(hits)) == ["tickets/tickets.jsonl#T-1", "tickets/tickets.jsonl#T-2"]


# -- policy versions ---------------------------------------------------------------------------

def test_a_date_picks_the_version_in_effect(index: LoadedIndex) -> None:
    search = retriever(index)
    in_2024 = search.retrieve(RETURNS, top_k=3, filters=Filters(doc_types=("policy",), effective_on=date(2024, 6, 1)))
    assert sources(in_2024) == [OLD]
    in_2025 = search.retrieve(RETURNS, top_k=3, filters=Filters(doc_types=("policy",), effective_on=date(2025, 6, 1)))
    assert sources(in_2025) == [NEW]
    with_tickets = search.retrieve(OLD_WORDING, top_k=5, filters=Filters(effective_on=date(2024, 6, 1)))
    assert sources(with_tickets)[0] == OLD and NEW not in sources(with_tickets)


@pytest.mark.parametrize("mode", MODES)
def test_without_a_date_the_old_version_ranks_behind_the_current_one(index: LoadedIndex, mode: str) -> None:
    hits = retriever(index, mode=mode).retrieve(OLD_WORDING, top_k=6)
    found = sources(hits)
    assert found.index(NEW) < found.index(OLD)


def test_the_old_version_is_moved_not_outscored(index: LoadedIndex) -> None:
    hits = {h.chunk.source: h for h in retriever(index, mode="hybrid").retrieve(OLD_WORDING, top_k=6)}
    assert hits[OLD].signals["fused"] > hits[NEW].signals["fused"]  # the 2024 wording matches better...
    assert hits[OLD].chunk.metadata["superseded_by"] == NEW          # ...but it was replaced


# -- diversity ---------------------------------------------------------------------------------

def test_one_long_document_takes_at_most_two_of_the_top_k(index: LoadedIndex) -> None:
    hits = retriever(index, mode="hybrid").retrieve(WIRING, top_k=5)
    assert len(hits) == 5 and sources(hits)[0] == MANUAL
    assert Counter(sources(hits))[MANUAL] == 2
    uncapped = retriever(index, mode="hybrid", max_per_document=0).retrieve(WIRING, top_k=5)
    assert Counter(sources(uncapped))[MANUAL] > 2  # the cap is what keeps the others in


def test_the_long_document_fills_up_when_nothing_else_matches(index: LoadedIndex) -> None:
    hits = retriever(index, mode="bm25").retrieve(WIRING, top_k=4)
    assert sources(hits) == [MANUAL] * 4


# -- reranking ---------------------------------------------------------------------------------

class WordReranker:
    """Scripted cross-encoder: 0.9 for passages containing `word`, 0.2 for the rest; records each call."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.calls: list[tuple[str, int]] = []

    @property
    def name(self) -> str:
        return f"prefers-{self.word}"

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        self.calls.append((question, len(passages)))
        return [0.9 if self.word in p.lower() else 0.2 for p in passages]


def test_a_reranker_reorders_the_head_and_its_probability_becomes_the_score(index: LoadedIndex) -> None:
    plain = retriever(index, mode="hybrid").retrieve(RETURNS, top_k=4)
    assert plain[0].chunk.source != "tickets/tickets.jsonl#T-1"
    reranker = WordReranker("kettle")
    assert isinstance(reranker, Reranker)
    hits = retriever(index, mode="hybrid", reranker=reranker).retrieve(RETURNS, top_k=4)
    assert hits[0].chunk.source == "tickets/tickets.jsonl#T-1"
    assert hits[0].score == hits[0].signals["rerank"] == 0.9
    assert [h.score for h in hits[1:]] == [0.2, 0.2, 0.2]
    assert reranker.calls and reranker.calls[0][0] == RETURNS


def test_only_the_top_n_are_reranked(index: LoadedIndex) -> None:
    reranker = WordReranker("kettle")
    hits = retriever(index, mode="hybrid", reranker=reranker, rerank_top_n=2).retrieve(RETURNS, top_k=4)
    assert reranker.calls == [(RETURNS, 2)]
    assert "tickets/tickets.jsonl#T-1" not in sources(hits[:2])  # the kettle ticket was not in the head
    assert sum("rerank" in h.signals for h in hits) <= 2


# -- the reranker from settings ----------------------------------------------------------------

def test_no_reranker_configured_is_none() -> None:
    assert build_reranker(Settings()) is None


@pytest.mark.parametrize("name", ["/nonexistent/model", "cross-encoder/ms-marco-MiniLM-L-6-v2"])
def test_an_unavailable_reranker_is_skipped_with_one_warning(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rag.factory")
    started = time.monotonic()
    assert build_reranker(Settings(retrieval={"reranker": name})) is None
    assert time.monotonic() - started < 30  # offline (HF_HUB_OFFLINE=1): no waiting on the network
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == "rag.factory"
    message = warnings[0].getMessage()
    assert "not available" in message and name in message and "\n" not in message


def test_the_corpus_fixture_is_what_the_tests_assume(index: LoadedIndex) -> None:
    by_source = {c.source: c for c in index.store.all()}
    assert by_source[OLD].metadata["effective_to"] == "2025-04-01" and by_source[OLD].metadata["superseded"] is True
    assert by_source[NEW].metadata["superseded"] is False and by_source[ZH].language == "zh"
