"""Ranking metrics with binary relevance, as pure functions on a ranked list of document ids.

`ranked` is best first; rank r is 1-based. A document repeated in `ranked` counts once, at its
first rank; its repeats keep their slots but gain nothing (so no metric can exceed 1). Only the
first `k` entries are looked at. An empty `relevant` set scores 0 everywhere: such questions
("unanswerable") belong outside ranking metrics, which is the caller's job.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence

__all__ = ["hit_at", "ndcg_at", "percentile", "recall_at", "reciprocal_rank"]


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


def _relevant_ranks(ranked: Sequence[str], relevant: Collection[str], k: int) -> Iterator[int]:
    """The 1-based ranks, within the top k, of the first occurrence of each relevant document."""
    if k < 1:
        raise ValueError(f"cut-off k must be at least 1, got {k}")
    seen: set[str] = set()
    for rank, doc in enumerate(ranked[:k], start=1):
        if doc in relevant and doc not in seen:
            seen.add(doc)
            yield rank
