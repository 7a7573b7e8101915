"""Ranking metrics with binary relevance, as pure functions on a ranked list of document ids.

`ranked` is best first; rank r is 1-based. A document repeated in `ranked` counts once, at its
first rank; its repeats keep their slots but gain nothing (so no metric can exceed 1). Only the
first `k` entries are looked at. An empty `relevant` set scores 0 everywhere: such questions
("unanswerable") belong outside ranking metrics, which is the caller's job. `roc_auc` ranks scores
against binary labels (how well a judge separates faithful answers from unfaithful ones).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence

import numpy as np

__all__ = ["hit_at", "ndcg_at", "percentile", "recall_at", "reciprocal_rank", "roc_auc"]


def recall_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant documents found: |relevant ∩ top k| / |relevant|."""
    if not relevant:
        return 0.0
    return sum(1 for _ in _relevant_ranks(ranked, relevant, k)) / len(set(relevant))


def reciprocal_rank(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 / rank of the first relevant document in the top k; 0 when none is there (MRR@k per question)."""
    first = next(_relevant_ranks(ranked, relevant, k), None)
    return 0.0 if first is None else 1.0 / first


def ndcg_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """DCG@k / IDCG@k, where DCG@k = Σ_{relevant r ≤ k} 1/log2(r+1) and IDCG@k = Σ_{r=1}^{min(|relevant|, k)} 1/log2(r+1)."""
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(set(relevant)), k) + 1))
    if ideal == 0:
        return 0.0
    return sum(1.0 / math.log2(r + 1) for r in _relevant_ranks(ranked, relevant, k)) / ideal


def hit_at(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1 when at least one relevant document is in the top k, else 0 (a float, so it averages)."""
    return 1.0 if next(_relevant_ranks(ranked, relevant, k), None) is not None else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between the closest ranks (numpy's default).

    With the values sorted as v_0..v_{n-1}: position p = (n-1)·q/100, result = v_⌊p⌋ + (p-⌊p⌋)·(v_⌈p⌉ - v_⌊p⌋).
    """
    if not values:
        raise ValueError("percentile of no values: measure at least one")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def roc_auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    s = np.asarray(scores, dtype=np.float64)
    pos = np.asarray(positives, dtype=bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_scores = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _relevant_ranks(ranked: Sequence[str], relevant: Collection[str], k: int) -> Iterator[int]:
    """The 1-based ranks, within the top k, of the first occurrence of each relevant document."""
    if k < 1:
        raise ValueError(f"cut-off k must be at least 1, got {k}")
    seen: set[str] = set()
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant and doc not in seen:
            seen.add(doc)
            yield rank
