"""Dense retrieval: embed the question, search FAISS, fetch chunks, apply metadata filters."""

from __future__ import annotations

from rag.index.store import ChunkStore
from rag.protocols import Embedder, VectorIndex
from rag.types import Filters, ScoredChunk

__all__ = ["DenseRetriever"]


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
        hits = self._vectors.search(self._embedder.embed_query(question), top_k, allowed_ids=allowed)
        chunks = self._store.get_many([chunk_id for chunk_id, _ in hits])
        return [ScoredChunk(chunks[i], score) for i, score in hits if i in chunks]
