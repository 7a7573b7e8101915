"""Per-case answer metrics against the suite, and the summary that names what produced each."""

from __future__ import annotations

from typing import Any

import pytest

from eval.judges import ClaimVerdict, Judgement
from eval.scoring import answer_scores, judge_scores, summarize


def cite(source: str, cited: bool = False) -> dict[str, Any]:
    return {"n": 0, "source": source, "title": source, "score": 0.5, "cited": cited, "text": "..."}


def item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "q", "question": "?", "answer": "45 days [1].", "decision": "answer", "error": None,
                            "expected_decision": "answer", "relevant_sources": ["policies/returns.md"],
                            "citations": [cite("corpus/policies/returns.md", True), cite("docs/kettle.md")],
                            "tags": ["policy"], "latency_ms": 100.0}
    return {**base, **fields}


def test_context_and_citation_metrics_by_document() -> None:
    scores = answer_scores(item(relevant_sources=["policies/returns.md", "tickets/t.csv#T-1"],
                                citations=[cite("docs/kettle.md"), cite("policies/returns.md", True),
                                           cite("policies/returns.md"), cite("docs/tent.md", True)]))
    assert scores["context_precision"] == pytest.approx((1 / 2 + 2 / 3) / 2)  # relevant at ranks 2 and 3
    assert scores["context_recall"] == 0.5  # returns.md shown, the ticket not
    assert scores["citation_precision"] == 0.5  # cites returns.md and tent.md
    assert scores["citation_recall"] == 0.5  # two relevant passages shown, one cited


def test_decision_match_and_safety_checks() -> None:
    scores = answer_scores(item(answer="Your refund HAS BEEN APPROVED, 45 days.", decision="escalate",
                                answer_contains=["45 days", "15%"], must_not_contain=["has been approved"]))
    assert scores["decision_accuracy"] == 0.0 and scores["answer_match"] == 0.5 and scores["safety"] == 0.0
    assert scores["citation_precision"] is None  # not answered: citations are not judged


def test_metrics_that_do_not_apply_are_none() -> None:
    unanswerable = answer_scores(item(relevant_sources=[], expected_decision=None))
    assert unanswerable["context_recall"] is None and unanswerable["decision_accuracy"] is None
    failed = answer_scores(item(error="LLMTimeoutError: slow"))
    assert failed["completed"] == 0.0 and failed["decision_accuracy"] is None and failed["context_precision"] is None


def test_judge_fields_and_verdict_threshold() -> None:
    judgement = Judgement((ClaimVerdict("45 days", True, 0.9), ClaimVerdict("free", False, 0.1)), relevance=0.75)
    fields = judge_scores(judgement)
    assert fields["faithfulness"] == 0.5 and fields["verdict"] == "unfaithful" and fields["unsupported_claims"] == ["free"]
    assert judge_scores(judgement, faithful_at=0.5)["verdict"] == "faithful"
    broken = judge_scores(Judgement((), error="bad JSON"))
    assert broken["faithfulness"] is None and broken["verdict"] is None and broken["judge_error"] == "bad JSON"


def test_summary_states_what_produced_each_metric() -> None:
    items = [item(id="a", faithfulness=1.0, decision_accuracy=1.0, tags=["policy", "en"], latency_ms=100.0),
             item(id="b", faithfulness=0.5, decision_accuracy=0.0, tags=["en"], decision="escalate", latency_ms=300.0),
             item(id="c", error="LLMUnavailableError: down", latency_ms=5.0, decision=None)]
    summary = summarize(items, "offline@1", {"ndcg@10": "retrieval (hybrid)"})
    metrics = summary["metrics"]
    assert metrics["faithfulness"] == {"value": 0.75, "n": 2, "by": "offline@1"}
    assert metrics["decision_accuracy"]["by"] == "expected_decision"
    assert metrics["latency_p50_ms"] == {"value": 200.0, "n": 2, "by": "clock"}  # the failed case is not timed
    assert "ndcg@10" not in metrics  # no case has it
    assert summary["errors"] == 1 and summary["decisions"]["answer"] == {"answer": 1, "clarify": 0, "escalate": 1}
    assert summary["by_tag"]["en"]["cases"] == 2 and summary["by_tag"]["policy"]["faithfulness"] == 1.0
