"""The evaluation harness: suites of questions, ranking metrics, and retrieval runs over them."""

from eval.metrics import hit_at, ndcg_at, percentile, recall_at, reciprocal_rank
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
from eval.suite import SuiteCase, load_suite

__all__ = [
    "CaseResult",
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
    "recall_at",
    "reciprocal_rank",
    "source_matches",
]
