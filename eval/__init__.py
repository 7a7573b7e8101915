"""The evaluation harness: suites of questions, ranking metrics, and retrieval runs over them."""

from eval.metrics import hit_at, ndcg_at, percentile, recall_at, reciprocal_rank, roc_auc
from eval.retrieval import (
    CaseResult,
    ModeResults,
    RetrievalResults,
    RetrievedDocument,
    SourceMatcher,
    evaluate,
    headline_ndcg,
    source_matches,
)
from eval.suite import Decision, SuiteCase, load_suite, read_jsonl

__all__ = [
    "CaseResult",
    "Decision",
    "ModeResults",
    "RetrievalResults",
    "RetrievedDocument",
    "SourceMatcher",
    "SuiteCase",
    "evaluate",
    "headline_ndcg",
    "hit_at",
    "load_suite",
    "ndcg_at",
    "percentile",
    "read_jsonl",
    "recall_at",
    "reciprocal_rank",
    "roc_auc",
    "source_matches",
]
