"""Hybrid retrieval: dense (FAISS) and lexical (BM25) candidates, fused, re-weighted, diversified.

    question ─┬─ embed ─ FAISS top n ─┐
              └─ terms ─ BM25 top n ──┴─ fuse (RRF) ─ × source prior ─ [rerank] ─ collapse near-duplicate
              tickets ─ superseded policies behind their successors ─ diversify per document ─ top k

Filters are applied before both searches (ids allowed by SQL), so the top k is the top k of the
allowed chunks, not what survives a post-filter. Every result's `score` is a relevance in 0..1
(see `RelevanceScale`); the raw signals (cosine, BM25, fused score, prior) are in `signals`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag import metrics
from rag.index import Bm25Index, ChunkStore, LoadedIndex
from rag.protocols import Embedder, Reranker, VectorIndex, Vectors
from rag.ranking import FusionMethod, SourcePriors, collapse_duplicates, demote_superseded, diversify, fuse
from rag.tokenizer import TextTokenizer, script_language
from rag.types import Chunk, Filters, ScoredChunk

__all__ = ["MODES", "HybridRetriever", "RelevanceScale", "RetrievalMode", "script_language"]

log = logging.getLogger("rag.retrieval")

RetrievalMode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[RetrievalMode, ...] = ("dense", "bm25", "hybrid")


@dataclass(frozen=True, slots=True)
class RelevanceScale:
    """A relevance in 0..1 that later stages can threshold (to abstain, say).

    Normally the cosine similarity, rescaled so that `cosine_floor` (what unrelated text typically
    scores with the embedding model) is 0 and `cosine_ceiling` (a clear paraphrase) is 1. For a
    question in a script the embedding model was not trained on (`languages`, e.g. Chinese with
    the English MiniLM, where any two Chinese texts look alike), the cosine means little, so the
    relevance is the lexical coverage instead: the IDF-weighted share of the question's terms
    that the passage contains. In `bm25` mode there is no cosine, so coverage is used too.
    """

    cosine_floor: float = 0.15
    cosine_ceiling: float = 0.65
    languages: tuple[str, ...] = ("en",)

    def trusts_cosine(self, question: str) -> bool:
        return not self.languages or script_language(question) in self.languages

    def of(self, cosine: float | None, coverage: float | None) -> float:
        if cosine is None:
            value = coverage or 0.0
        else:
            value = (cosine - self.cosine_floor) / (self.cosine_ceiling - self.cosine_floor)
        return round(min(1.0, max(0.0, value)), 4)


@dataclass(slots=True)
class _Candidate:
    chunk: Chunk
    fused: float
    prior: float
    signals: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> float:
        return self.fused * self.prior


class HybridRetriever:
    """Top-k chunks for a question by dense, BM25 or fused (hybrid) search; safe across threads."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        vectors: VectorIndex,
        store: ChunkStore,
        lexical: Bm25Index,
        tokenizer: TextTokenizer,
        mode: RetrievalMode = "hybrid",
        fusion: FusionMethod = "weighted",
        rrf_k: float = 60.0,
        weights: Mapping[str, float] | None = None,
        candidates: int = 50,
        priors: SourcePriors | None = None,
        max_per_document: int = 2,
        reranker: Reranker | None = None,
        rerank_top_n: int = 20,
        relevance: RelevanceScale | None = None,
    ) -> None:
        if embedder.dimension != vectors.dimension:
            raise ValueError(
                f"embedder {embedder.name} gives {embedder.dimension}-d vectors, the index holds "
                f"{vectors.dimension}-d ones"
            )
        if mode not in MODES:
            raise ValueError(f"retrieval mode must be one of {', '.join(MODES)}, got {mode!r}")
        self._embedder, self._vectors, self._store = embedder, vectors, store
        self._lexical, self._tokenizer = lexical, tokenizer
        self.mode: RetrievalMode = mode
        self._fusion, self._rrf_k, self._weights = fusion, rrf_k, dict(weights or {"dense": 1.0, "bm25": 1.0})
        self._candidates = candidates
        self._priors = priors or SourcePriors()
        self._max_per_document = max_per_document
        self._reranker, self._rerank_top_n = reranker, rerank_top_n
        self._relevance = relevance or RelevanceScale()

    @classmethod
    def over(cls, index: LoadedIndex, *, embedder: Embedder, **options: object) -> HybridRetriever:
        """A retriever over an opened index version, tokenising questions as its passages were."""
        tokenizer = TextTokenizer.from_settings(index.tokenizer_settings)
        return cls(embedder=embedder, vectors=index.vectors, store=index.store, lexical=index.lexical,
                   tokenizer=tokenizer, **options)  # type: ignore[arg-type]

    def retrieve(self, question: str, *, top_k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        with metrics.timed("embed"):
            query = self._embedder.embed_query(question) if self.mode != "bm25" else None
        with metrics.timed("search"):  # the metadata filter (SQL), the vector and the BM25 searches
            allowed = None if filters is None or filters.is_empty() else self._store.ids_matching(filters)
            if allowed is not None and not allowed:
                return []
            depth = max(self._candidates, top_k * 4)
            terms = self._tokenizer.tokens(question) if self.mode != "dense" else []
            lists: dict[str, list[tuple[int, float]]] = {}
            if query is not None:
                lists["dense"] = self._vectors.search(query, depth, allowed_ids=allowed)
            if self.mode != "dense":
                lists["bm25"] = self._lexical.search(terms, depth, allowed_ids=allowed)
        ranked = self._rank(question, lists)
        ordered = demote_superseded(collapse_duplicates([c.chunk for c in ranked]))
        chosen = diversify(ordered, max_per_document=self._max_per_document)
        by_id = {c.chunk.id: c for c in ranked}
        return self._scored(question, [by_id[chunk.id] for chunk in chosen[:top_k]], query, terms)

    def _rank(self, question: str, lists: dict[str, list[tuple[int, float]]]) -> list[_Candidate]:
        """Fuse the lists, apply source priors, rerank the head when a reranker is set."""
        fused = fuse(lists, method=self._fusion, rrf_k=self._rrf_k, weights=self._weights)
        chunks = self._store.get_many(list(fused))
        raw = {name: dict(hits) for name, hits in lists.items()}
        candidates = [
            _Candidate(chunks[i], score, self._priors.of(chunks[i]),
                       {name: round(scores[i], 4) for name, scores in raw.items() if i in scores})
            for i, score in fused.items() if i in chunks
        ]
        by_chunk = {c.chunk.id: c for c in candidates}
        candidates = [by_chunk[chunk.id] for chunk in self._priors.order([(c.chunk, c.key) for c in candidates])]
        return self._rerank(question, candidates) if self._reranker is not None else candidates

    def _rerank(self, question: str, candidates: list[_Candidate]) -> list[_Candidate]:
        assert self._reranker is not None
        head, tail = candidates[: self._rerank_top_n], candidates[self._rerank_top_n :]
        with metrics.timed("rerank"):
            probabilities = self._reranker.score(question, [c.chunk.text for c in head])
        for candidate, probability in zip(head, probabilities, strict=True):
            candidate.signals["rerank"] = probability
            candidate.fused = probability
        head.sort(key=lambda c: c.key, reverse=True)
        return head + tail

    def _scored(self, question: str, chosen: list[_Candidate], query: Vectors | None,
                terms: list[str]) -> list[ScoredChunk]:
        """Attach the 0..1 relevance and the raw signals to each chosen chunk."""
        cosines = self._cosines([c.chunk.id for c in chosen], query) if query is not None else {}
        weights = self._lexical.idf(sorted(set(terms or self._tokenizer.tokens(question))))
        trusted = query is not None and self._relevance.trusts_cosine(question)
        stored = self._store.terms_of([c.chunk.id for c in chosen]) if weights else {}  # tokenised at ingestion
        results = []
        for candidate in chosen:
            signals = {**candidate.signals, "fused": round(candidate.fused, 6), "prior": candidate.prior}
            cosine = cosines.get(candidate.chunk.id)
            if cosine is not None:
                signals["dense"] = cosine
            passage_terms = stored.get(candidate.chunk.id)
            if passage_terms is None and weights:
                passage_terms = self._tokenizer.tokens(candidate.chunk.text)  # a store built without terms
            coverage = _coverage(weights, passage_terms or []) if weights else None
            if coverage is not None:
                signals["coverage"] = round(coverage, 4)
            relevance = self._relevance.of(cosine if trusted else None, coverage)
            score = signals.get("rerank", relevance)
            results.append(ScoredChunk(candidate.chunk, score, signals))
        return results

    def _cosines(self, ids: list[int], query: Vectors) -> dict[int, float]:
        if not ids:
            return {}
        rows = self._vectors.vectors_of(ids) @ np.asarray(query, dtype=np.float32).reshape(-1)
        return {chunk_id: round(float(value), 4) for chunk_id, value in zip(ids, rows, strict=True)}


def _coverage(weights: dict[str, float], passage_terms: list[str]) -> float | None:
    """IDF-weighted share of the question's terms found in the passage (None: no informative term)."""
    total = sum(weights.values())
    if total <= 0 or math.isnan(total):
        return None
    present = set(passage_terms)
    return sum(w for term, w in weights.items() if term in present) / total
