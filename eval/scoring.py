"""Per-case answer metrics and their summary: what `rag eval run` and `rag eval score` report.

Every metric is a per-case value in 0..1 (None where it does not apply) and the summary is its mean
over the cases it applies to, with `n` and `by` (what produced it: a judge's id, or the suite field it
is checked against). Against `relevant_sources`, by document (a passage counts for the source it
comes from; suffixes match as in `eval.retrieval.source_matches`):

- context_precision: rank-aware precision of the passages given to the model (RAGAS): the mean of
  precision@i over the ranks i that hold a relevant passage; 0 when none does.
- context_recall: share of the relevant sources that some passage comes from.
- citation_precision: share of the cited passages that come from a relevant source.
- citation_recall: share of the relevant passages shown that the answer cites.
From the judge, on cases the pipeline answered: faithfulness (supported claims / claims) and
answer_relevance. From the suite: decision_accuracy (`expected_decision`), answer_match (share of
`answer_contains` strings in the answer, case-insensitive), safety (1 unless the answer contains a
`must_not_contain` string), completed (1 unless the case failed with an error). Latency p50/p95 come
from the clock. Context and citation metrics apply to answerable cases (non-empty sources) only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval.judges.base import Judgement
from eval.metrics import percentile
from eval.retrieval import SourceMatcher

__all__ = ["HIGHER_IS_BETTER", "METRICS", "Summary", "answer_scores", "judge_scores", "metric_mean", "summarize"]

Summary = dict[str, Any]
# name -> what produced it, in report order; "judge" is replaced by the judge's id
METRICS: dict[str, str] = {
    "faithfulness": "judge", "answer_relevance": "judge", "context_precision": "relevant_sources",
    "context_recall": "relevant_sources", "citation_precision": "relevant_sources",
    "citation_recall": "relevant_sources", "decision_accuracy": "expected_decision",
    "answer_match": "answer_contains", "safety": "must_not_contain", "completed": "errors",
}
HIGHER_IS_BETTER = {"latency_p50_ms": False, "latency_p95_ms": False}  # every other metric: higher is better


def judge_scores(judgement: Judgement, faithful_at: float = 1.0) -> dict[str, Any]:
    """An item's judge fields: claims, unsupported claims, verdict, faithfulness, answer relevance."""
    faithfulness = None if judgement.error else judgement.faithfulness
    verdict = None if faithfulness is None else ("faithful" if faithfulness >= faithful_at else "unfaithful")
    return {
        "claims": [{"claim": c.claim, "supported": c.supported, "score": round(c.score, 4), "reason": c.reason}
                   for c in judgement.claims],
        "unsupported_claims": judgement.unsupported_claims, "verdict": verdict,
        "faithfulness": _round(faithfulness), "answer_relevance": _round(judgement.relevance),
        "judge_error": judgement.error, **({"judge_details": judgement.details} if judgement.details else {}),
    }


def answer_scores(item: Mapping[str, Any], matcher: SourceMatcher | None = None) -> dict[str, float | None]:
    """The suite-checked metrics of one run item (its answer, decision, citations and the case's fields)."""
    matcher = matcher or SourceMatcher()
    failed = item.get("error") is not None
    answered = not failed and item.get("decision") == "answer"
    expected, text = item.get("expected_decision"), (item.get("answer") or "").casefold()
    contains, forbidden = item.get("answer_contains") or [], item.get("must_not_contain") or []
    scores: dict[str, float | None] = {
        "decision_accuracy": None if failed or expected is None else float(item.get("decision") == expected),
        "answer_match": (sum(s.casefold() in text for s in contains) / len(contains)
                         if contains and not failed else None),
        "safety": None if failed or not forbidden else float(not any(s.casefold() in text for s in forbidden)),
        "completed": 0.0 if failed else 1.0,
    }
    return {**scores, **_source_scores(item, matcher, answered)}


def _source_scores(item: Mapping[str, Any], matcher: SourceMatcher, answered: bool) -> dict[str, float | None]:
    """Context and citation metrics against the case's relevant sources (None when it has none)."""
    names = ("context_precision", "context_recall", "citation_precision", "citation_recall")
    relevant = matcher.relevant(item.get("relevant_sources") or ())
    citations = item.get("citations") or []
    if not relevant or item.get("error") is not None or not citations:
        return dict.fromkeys(names)
    hits = [_is_relevant(c["source"], relevant, matcher) for c in citations]
    found = {matcher.label(matcher.document(c["source"]), relevant) for c, hit in zip(citations, hits, strict=True) if hit}
    cited = [hit for c, hit in zip(citations, hits, strict=True) if c.get("cited")]
    shown_relevant = sum(hits)
    return {
        "context_precision": _average_precision(hits), "context_recall": len(found) / len(relevant),
        "citation_precision": sum(cited) / len(cited) if answered and cited else None,
        "citation_recall": (sum(cited) / shown_relevant if answered and shown_relevant else None),
    }


def _is_relevant(source: str, relevant: Sequence[str], matcher: SourceMatcher) -> bool:
    return matcher.label(matcher.document(source), relevant) in relevant


def _average_precision(hits: Sequence[bool]) -> float:
    """Mean of precision@i over the ranks i holding a relevant passage (0 when none does)."""
    precisions = [sum(hits[:i]) / i for i, hit in enumerate(hits, start=1) if hit]
    return sum(precisions) / len(precisions) if precisions else 0.0


def summarize(items: Sequence[Mapping[str, Any]], judge_id: str | None, extra: Mapping[str, str] | None = None,
              ) -> Summary:
    """Metric means with n and by, the decision confusion matrix, latency percentiles and per-tag means.
    `extra` names further per-item metrics (e.g. retrieval's ndcg@10) and what produced them."""
    producers = {name: (judge_id or "judge") if by == "judge" else by for name, by in {**METRICS, **(extra or {})}.items()}
    metrics = {name: metric_mean(items, name, by) for name, by in producers.items()}
    latencies = [float(i["latency_ms"]) for i in items if i.get("latency_ms") is not None and not i.get("error")]
    for q in (50, 95):
        value = round(percentile(latencies, q), 1) if latencies else None
        metrics[f"latency_p{q}_ms"] = {"value": value, "n": len(latencies), "by": "clock"}
    metrics = {name: m for name, m in metrics.items() if m["n"] or name in METRICS}
    return {"cases": len(items), "errors": sum(1 for i in items if i.get("error")), "metrics": metrics,
            "decisions": _confusion(items), "by_tag": _by_tag(items, [n for n in producers if metrics.get(n)])}


def metric_mean(items: Iterable[Mapping[str, Any]], name: str, by: str) -> dict[str, Any]:
    values = [float(i[name]) for i in items if i.get(name) is not None]
    return {"value": round(sum(values) / len(values), 4) if values else None, "n": len(values), "by": by}


def _confusion(items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """expected decision -> actual decision -> cases (cases with an expectation and no error)."""
    matrix: dict[str, dict[str, int]] = {}
    for item in items:
        expected, actual = item.get("expected_decision"), item.get("decision")
        if expected and actual and not item.get("error"):
            row = matrix.setdefault(expected, {"answer": 0, "clarify": 0, "escalate": 0})
            row[actual] = row.get(actual, 0) + 1
    return matrix


def _by_tag(items: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, dict[str, Any]]:
    tags = sorted({tag for item in items for tag in item.get("tags") or ()})
    out = {}
    for tag in tags:
        tagged = [i for i in items if tag in (i.get("tags") or ())]
        out[tag] = {"cases": len(tagged), **{name: metric_mean(tagged, name, "")["value"] for name in names}}
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
