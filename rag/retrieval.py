"""Dense retrieval: embed the question, search FAISS, fetch chunks, apply metadata filters.

Near-duplicate tickets (grouped at ingestion: chunk metadata `duplicate_group`, `duplicates`)
are collapsed to their best-scoring member, so one recurring problem fills one slot.
"""

from __future__ import annotations

from rag.index.store import ChunkStore
from rag.protocols import Embedder, VectorIndex
from rag.types import Filters, ScoredChunk

__all__ = ["DenseRetriever"]

_OVERFETCH = 3  # hits fetched per requested passage, so collapsed duplicates do not leave slots empty


class DenseRetriever:
    """Top-k chunks by cosine similarity, restricted by filters before the search."""

    def __init__(self, *, embedder: Embedder, vectors: VectorIndex, store: ChunkStore) -> None:
        if embedder.dimension != vectors.dimension:
            raise ValueError(
                f"embedder {embedder.name} gives {embedder.dimension}-d vectors, the index holds "
                f"{vectors.dimension}-d ones"
            )
        self._embedder = embedder
        self._vectors = vectors
        self._store = store

    def retrieve(self, question: str, *, top_k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        allowed = None if filters is None or filters.is_empty() else self._store.ids_matching(filters)
        query = self._embedder.embed_query(question)
        fetch = top_k * _OVERFETCH
        while True:
            hits = self._vectors.search(query, fetch, allowed_ids=allowed)
            chunks = self._store.get_many([chunk_id for chunk_id, _ in hits])
            found = _collapse_duplicates([ScoredChunk(chunks[i], score) for i, score in hits if i in chunks])
            if len(found) >= top_k or len(hits) < fetch:
                return found[:top_k]
            fetch *= 4


def _collapse_duplicates(hits: list[ScoredChunk]) -> list[ScoredChunk]:
    """Keep the first (best) hit of each near-duplicate ticket group; everything else passes."""
    seen: set[str] = set()
    kept = []
    for hit in hits:
        group = hit.chunk.metadata.get("duplicate_group") if hit.chunk.metadata.get("duplicates", 1) > 1 else None
        if group is not None:
            if group in seen:
                continue
            seen.add(group)
        kept.append(hit)
    return kept
