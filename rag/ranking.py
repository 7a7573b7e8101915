"""Pure ranking steps of hybrid retrieval: fusion, source priors, duplicate collapse, diversity.

Each takes and returns plain ids, scores and chunks, so each is tested on hand-made cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rag.types import Chunk

__all__ = [
    "FusionMethod",
    "SourcePriors",
    "collapse_duplicates",
    "demote_superseded",
    "diversify",
    "fuse",
    "reciprocal_rank_fusion",
    "weighted_score_fusion",
]

FusionMethod = Literal["rrf", "weighted"]
Hits = Sequence[tuple[int, float]]


def reciprocal_rank_fusion(lists: Mapping[str, Hits], *, k: float = 60.0,
                           weights: Mapping[str, float] | None = None) -> dict[int, float]:
    """RRF (Cormack et al. 2009): score(d) = sum over lists of weight / (k + rank of d), ranks from 1."""
    fused: dict[int, float] = {}
    for name, hits in lists.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, (chunk_id, _) in enumerate(hits, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (k + rank)
    return fused


def weighted_score_fusion(lists: Mapping[str, Hits], *, weights: Mapping[str, float] | None = None) -> dict[int, float]:
    """Convex combination of min-max normalised scores; a chunk missing from a list scores 0 there."""
    fused: dict[int, float] = {}
    total = sum(1.0 if weights is None else weights.get(name, 1.0) for name in lists) or 1.0
    for name, hits in lists.items():
        weight = (1.0 if weights is None else weights.get(name, 1.0)) / total
        if not hits:
            continue
        scores = [score for _, score in hits]
        low, span = min(scores), max(scores) - min(scores)
        for chunk_id, score in hits:
            normal = (score - low) / span if span > 0 else 1.0
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight * normal
    return fused


def fuse(lists: Mapping[str, Hits], *, method: FusionMethod, rrf_k: float = 60.0,
         weights: Mapping[str, float] | None = None) -> dict[int, float]:
    """One fused score per chunk id; a single list keeps its own order under either method."""
    if method == "rrf":
        return reciprocal_rank_fusion(lists, k=rrf_k, weights=weights)
    return weighted_score_fusion(lists, weights=weights)


@dataclass(frozen=True, slots=True)
class SourcePriors:
    """Multipliers on the fused score by doc type: which kind of source wins when several match.

    Policies are the company's binding word, so by default a past ticket that matches as well
    as a policy ranks below it (and the answer prompt tells the model to follow the policy).
    """

    doc_type: Mapping[str, float] = field(default_factory=lambda: {"policy": 1.0, "doc": 1.0, "ticket": 1.0})
    policy_over_ticket: float = 0.7

    def of(self, chunk: Chunk) -> float:
        return self.doc_type.get(chunk.doc_type, 1.0)

    def order(self, scored: Sequence[tuple[Chunk, float]]) -> list[Chunk]:
        """Best first by score, except that a ticket goes behind every policy scoring at least
        `policy_over_ticket` times as much: the policy wins where both match, while a ticket that
        alone holds an answer keeps its place among the product documents."""
        policies = sorted((score for chunk, score in scored if chunk.doc_type == "policy"), reverse=True)
        keyed = []
        for chunk, score in scored:
            if chunk.doc_type == "ticket":
                rivals = [p for p in policies if self.policy_over_ticket * score <= p <= score]
                score = min(rivals) - 1e-9 if rivals else score
            keyed.append((score, chunk))
        return [chunk for _, chunk in sorted(keyed, key=lambda pair: pair[0], reverse=True)]


def demote_superseded(ranked: Sequence[Chunk]) -> list[Chunk]:
    """Move each superseded policy chunk right behind the first chunk of the version that replaced it.

    Only when that version is among the results: a question filtered to a past date (where the
    old version was in effect) or asked about the old version alone still finds it, near the top.
    """
    first: dict[str, int] = {}
    for position, chunk in enumerate(ranked):
        first.setdefault(chunk.source, position)
    moved: dict[str, list[Chunk]] = {}
    kept = []
    for position, chunk in enumerate(ranked):
        successor = str(chunk.metadata.get("superseded_by") or "") if chunk.metadata.get("superseded") else ""
        if successor in first and first[successor] > position:
            moved.setdefault(successor, []).append(chunk)
        else:
            kept.append(chunk)
    result: list[Chunk] = []

    def emit(chunk: Chunk) -> None:
        result.append(chunk)
        for older in moved.pop(chunk.source, []):  # a chain (2023 -> 2024 -> 2025) unrolls behind the newest
            emit(older)

    for chunk in kept:
        emit(chunk)
    return result


def collapse_duplicates(ranked: Sequence[Chunk]) -> list[Chunk]:
    """Keep the first (best) chunk of each near-duplicate ticket group; everything else passes.

    Groups come from ingestion (metadata `duplicate_group`, `duplicates` > 1), so one recurring
    problem fills one slot instead of crowding out other answers.
    """
    seen: set[str] = set()
    kept = []
    for chunk in ranked:
        group = chunk.metadata.get("duplicate_group") if chunk.metadata.get("duplicates", 1) > 1 else None
        if group is not None:
            if group in seen:
                continue
            seen.add(group)
        kept.append(chunk)
    return kept


def diversify(ranked: Sequence[Chunk], *, max_per_document: int) -> list[Chunk]:
    """At most `max_per_document` chunks of one document before every other document had its turn.

    Chunks over the cap keep their relative order and move behind the rest, so a long document
    cannot fill the top k, but its extra chunks still come back when nothing else matches.
    """
    if max_per_document <= 0:
        return list(ranked)
    counts: dict[str, int] = {}
    first: list[Chunk] = []
    overflow: list[Chunk] = []
    for chunk in ranked:
        counts[chunk.source] = counts.get(chunk.source, 0) + 1
        (first if counts[chunk.source] <= max_per_document else overflow).append(chunk)
    return first + overflow
