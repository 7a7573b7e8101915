"""Retrieval evaluation over a scripted retriever: document-level ranks, matching, aliases, reporting."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date

import pytest

from eval.retrieval import SourceMatcher, evaluate, source_matches
from eval.suite import SuiteCase
from rag.errors import InputError
from rag.types import Chunk, Filters, ScoredChunk

LOG2_3 = math.log2(3)


class ScriptedRetriever:
    """Returns a fixed ranking of (source, score) chunks per question and records each call."""

    def __init__(self, rankings: dict[str, Sequence[tuple[str, float]]]) -> None:
        self.rankings = rankings
        self.calls: list[tuple[str, int, Filters | None]] = []

    def retrieve(self, question: str, *, top_k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        self.calls.append((question, top_k, filters))
        return [ScoredChunk(Chunk(id=i, text="", source=source, title="", doc_type="doc"), score)
                for i, (source, score) in enumerate(self.rankings.get(question, ())[:top_k])]


def case(id: str, relevant: Sequence[str], tags: Sequence[str] = (), filters: Filters | None = None) -> SuiteCase:
    return SuiteCase(id=id, question=id, relevant_sources=tuple(relevant), filters=filters, tags=tuple(tags))


def ranked(*sources: str) -> list[tuple[str, float]]:
    return [(source, round(0.9 - i / 10, 2)) for i, source in enumerate(sources)]


def test_several_chunks_of_one_document_count_once_at_the_best_chunk() -> None:
    # chunks a, a, b, a, c -> documents a (0.9), b (0.7), c (0.5): b is document rank 2, not chunk rank 3
    retriever = ScriptedRetriever({"q": ranked("a", "a", "b", "a", "c")})
    mode = evaluate({"dense": retriever}, [case("q", ["b"])], k=10).modes["dense"]
    result = mode.cases[0]
    assert [(d.source, d.score, d.relevant) for d in result.retrieved] == [("a", 0.9, False), ("b", 0.7, True),
                                                                          ("c", 0.5, False)]
    assert result.first_relevant_rank == 2
    assert result.scores["mrr"] == 0.5 and result.scores["recall@1"] == 0.0 and result.scores["recall@5"] == 1.0
    assert result.scores["ndcg@10"] == pytest.approx(1 / LOG2_3)  # one relevant at rank 2: (1/log2 3) / 1


def test_asks_for_three_times_k_chunks_and_cuts_at_k_documents() -> None:
    retriever = ScriptedRetriever({"q": ranked("a", "b", "c", "d", "e", "f", "g")})
    result = evaluate({"dense": retriever}, [case("q", ["e"])], k=2).modes["dense"].cases[0]
    assert retriever.calls == [("q", 6, None)]
    assert [d.source for d in result.retrieved] == ["a", "b"]
    assert result.first_relevant_rank is None and result.scores["mrr"] == 0.0


def test_filters_are_passed_through() -> None:
    filters = Filters(doc_types=("policy",), effective_on=date(2025, 1, 15))
    retriever = ScriptedRetriever({"q": ranked("a")})
    evaluate({"dense": retriever}, [case("q", ["a"], filters=filters)], k=5)
    assert retriever.calls == [("q", 15, filters)]


def test_source_matching_allows_a_longer_root_only_at_a_folder_boundary() -> None:
    assert source_matches("policies/returns.md", "policies/returns.md")
    assert source_matches("corpus/policies/returns.md", "policies/returns.md")
    assert source_matches("corpus/tickets/t.csv#T-1", "tickets/t.csv#T-1")
    assert not source_matches("corpus/mypolicies/returns.md", "policies/returns.md")
    assert not source_matches("policies/returns.md", "corpus/policies/returns.md")
    retriever = ScriptedRetriever({"q": ranked("corpus/mypolicies/returns.md", "corpus/policies/returns.md")})
    result = evaluate({"dense": retriever}, [case("q", ["policies/returns.md"])]).modes["dense"].cases[0]
    assert [d.relevant for d in result.retrieved] == [False, True]


def test_a_duplicate_group_counts_as_one_document() -> None:
    # T-1, T-2, T-3 are one group; the suite names T-1 only, the retriever ranks T-2 first
    aliases = {f"corpus/tickets.csv#T-{n}": "corpus/tickets.csv#T-1" for n in (1, 2, 3)}
    retriever = ScriptedRetriever({"q": ranked("corpus/tickets.csv#T-2", "corpus/tickets.csv#T-1",
                                               "corpus/docs/a.md", "corpus/tickets.csv#T-3")})
    result = evaluate({"dense": retriever}, [case("q", ["tickets.csv#T-1"])], aliases=aliases).modes["dense"].cases[0]
    assert [(d.source, d.relevant) for d in result.retrieved] == [("corpus/tickets.csv#T-2", True),
                                                                  ("corpus/docs/a.md", False)]
    assert result.first_relevant_rank == 1 and result.scores["ndcg@10"] == 1.0


def test_relevant_sources_in_one_group_are_one_relevant_document() -> None:
    aliases = {"tickets.csv#T-1": "tickets.csv#T-1", "tickets.csv#T-2": "tickets.csv#T-1"}
    retriever = ScriptedRetriever({"q": ranked("tickets.csv#T-2", "docs/a.md")})
    result = evaluate({"dense": retriever}, [case("q", ["tickets.csv#T-1", "tickets.csv#T-2"])],
                      aliases=aliases).modes["dense"].cases[0]
    assert result.scores["recall@1"] == 1.0  # 1 of 1 relevant document, not 1 of 2
    assert SourceMatcher(aliases).relevant(["tickets.csv#T-1", "tickets.csv#T-2", "docs/a.md"]) == (
        "tickets.csv#T-1", "docs/a.md")


def test_without_aliases_duplicates_are_separate_documents() -> None:
    retriever = ScriptedRetriever({"q": ranked("tickets.csv#T-2", "tickets.csv#T-1")})
    result = evaluate({"dense": retriever}, [case("q", ["tickets.csv#T-1"])]).modes["dense"].cases[0]
    assert result.first_relevant_rank == 2


def test_unanswerable_cases_are_counted_apart_and_carry_their_top_score() -> None:
    retriever = ScriptedRetriever({"hit": ranked("a", "b"), "none": [("x", 0.31), ("x", 0.42), ("y", 0.2)],
                                   "empty": []})
    mode = evaluate({"dense": retriever}, [case("hit", ["b"]), case("none", []), case("empty", [])]).modes["dense"]
    metrics = mode.metrics()
    assert metrics["questions"] == 1 and metrics["unanswerable"] == 2
    assert metrics["mrr"] == 0.5  # the answerable case alone: b at rank 2
    items = {item["id"]: item for item in mode.as_dict()["items"]}
    assert items["none"]["top_score"] == 0.42 and items["empty"]["top_score"] is None
    assert items["none"]["recall@10"] is None and items["none"]["first_relevant_rank"] is None
    assert items["none"]["retrieved"] == [{"source": "x", "score": 0.31, "relevant": False},
                                          {"source": "y", "score": 0.2, "relevant": False}]
    assert mode.misses() == []  # b at rank 2 is within the top 5; unanswerable cases are never misses


def test_a_suite_of_only_unanswerable_cases_has_no_ranking_metrics() -> None:
    metrics = evaluate({"dense": ScriptedRetriever({})}, [case("q", [])]).modes["dense"].metrics()
    assert metrics["mrr"] is None and metrics["recall@10"] is None
    assert metrics["questions"] == 0 and metrics["unanswerable"] == 1


def test_means_over_cases_and_per_tag_metrics() -> None:
    retriever = ScriptedRetriever({"p1": ranked("pol", "x"), "p2": ranked("x", "y", "pol2"), "t1": ranked("x", "y"),
                                   "u": ranked("x")})
    cases = [case("p1", ["pol"], tags=["policy"]), case("p2", ["pol2"], tags=["policy", "hard"]),
             case("t1", ["tic"], tags=["ticket", "hard"]), case("u", [], tags=["ticket"])]
    mode = evaluate({"dense": retriever}, cases).modes["dense"]
    metrics = mode.metrics()
    # reciprocal ranks: p1 1, p2 1/3, t1 0 -> MRR = (1 + 1/3 + 0) / 3 = 0.4444
    assert metrics["mrr"] == pytest.approx(4 / 9)
    assert metrics["hit@1"] == pytest.approx(1 / 3) and metrics["hit@5"] == pytest.approx(2 / 3)
    # nDCG@10: p1 1, p2 1/log2(4) = 0.5, t1 0 -> 0.5
    assert metrics["ndcg@10"] == pytest.approx(0.5)
    by_tag = mode.by_tag()
    assert list(by_tag) == ["hard", "policy", "ticket"]
    assert by_tag["policy"]["mrr"] == pytest.approx((1 + 1 / 3) / 2) and by_tag["policy"]["questions"] == 2
    assert by_tag["hard"]["ndcg@10"] == pytest.approx(0.25)  # p2 0.5, t1 0
    assert by_tag["ticket"]["recall@10"] == 0.0
    assert by_tag["ticket"]["questions"] == 1 and by_tag["ticket"]["unanswerable"] == 1
    assert "latency_ms_p50" not in by_tag["policy"]
    assert [r.case.id for r in mode.misses()] == ["t1"]  # p2 at rank 3 is within the top 5
    assert [r.case.id for r in mode.misses(within=2)] == ["p2", "t1"]


def test_metric_names_follow_k() -> None:
    retriever = ScriptedRetriever({"q": ranked("a")})
    names = {k: list(evaluate({"d": retriever}, [case("q", ["a"])], k=k).modes["d"].metrics()) for k in (10, 20, 3)}
    counts = ["latency_ms_p50", "latency_ms_p95", "questions", "unanswerable"]
    assert names[10] == ["recall@1", "recall@5", "recall@10", "mrr", "ndcg@10", "hit@1", "hit@5", *counts]
    assert names[20] == ["recall@1", "recall@5", "recall@10", "recall@20", "mrr", "ndcg@10", "ndcg@20", "hit@1",
                         "hit@5", *counts]
    assert names[3] == ["recall@1", "recall@3", "mrr", "ndcg@3", "hit@1", *counts]


def test_as_dict_shape_with_hybrid_as_primary() -> None:
    dense = ScriptedRetriever({"q": ranked("x", "a"), "u": ranked("a")})
    hybrid = ScriptedRetriever({"q": [("a", 0.123456789)], "u": []})
    results = evaluate({"dense": dense, "hybrid": hybrid}, [case("q", ["a"], tags=["t"]), case("u", [])])
    report = results.as_dict(suite="suite.jsonl", index="data/index", index_version="v1")
    assert list(report) == ["suite", "index", "index_version", "k", "mode", "metrics", "by_tag", "items", "modes"]
    assert (report["suite"], report["index"], report["index_version"], report["k"], report["mode"]) == (
        "suite.jsonl", "data/index", "v1", 10, "hybrid")
    assert list(report["modes"]) == ["dense", "hybrid"]
    assert report["metrics"] == report["modes"]["hybrid"]["metrics"]
    assert report["items"] == report["modes"]["hybrid"]["items"]
    assert report["by_tag"] == {"t": report["modes"]["hybrid"]["by_tag"]["t"]}
    assert report["modes"]["dense"]["metrics"]["mrr"] == 0.5
    item = report["items"][0]
    assert list(item) == ["id", "question", "tags", "relevant", "retrieved", "first_relevant_rank", "recall@10",
                          "ndcg@10", "latency_ms", "top_score"]
    assert item["retrieved"] == [{"source": "a", "score": 0.1235, "relevant": True}]
    assert item["tags"] == ["t"] and item["relevant"] == ["a"] and item["top_score"] == 0.1235
    assert all(v == round(v, 4) for v in report["modes"]["dense"]["metrics"].values() if isinstance(v, float))
    json.dumps(report)  # plain JSON all the way down


def test_the_first_mode_is_primary_without_hybrid() -> None:
    retriever = ScriptedRetriever({"q": ranked("a")})
    results = evaluate({"bm25": retriever, "dense": retriever}, [case("q", ["a"])])
    assert results.primary == "bm25" and results.as_dict()["mode"] == "bm25"


def test_modes_run_one_after_the_other_and_report_progress() -> None:
    first, second = ScriptedRetriever({}), ScriptedRetriever({})
    seen: list[tuple[str, int, int]] = []
    evaluate({"dense": first, "bm25": second}, [case("a", ["x"]), case("b", ["x"])],
             progress=lambda mode, done, total: seen.append((mode, done, total)))
    assert seen == [("dense", 1, 2), ("dense", 2, 2), ("bm25", 1, 2), ("bm25", 2, 2)]
    assert [c[0] for c in first.calls] == ["a", "b"] and [c[0] for c in second.calls] == ["a", "b"]


def test_latencies_are_measured_for_every_case() -> None:
    mode = evaluate({"dense": ScriptedRetriever({})}, [case("a", ["x"]), case("b", [])]).modes["dense"]
    assert all(r.latency_ms >= 0 for r in mode.cases)
    metrics = mode.metrics()
    assert isinstance(metrics["latency_ms_p95"], float) and isinstance(metrics["latency_ms_p50"], float)
    assert metrics["latency_ms_p95"] >= metrics["latency_ms_p50"]


def test_nothing_to_evaluate_is_refused() -> None:
    with pytest.raises(InputError, match="at least one"):
        evaluate({"dense": ScriptedRetriever({})}, [])
    with pytest.raises(InputError, match="at least one"):
        evaluate({}, [case("q", ["a"])])
    with pytest.raises(InputError, match="k must be at least 1"):
        evaluate({"dense": ScriptedRetriever({})}, [case("q", ["a"])], k=0)
