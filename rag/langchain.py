"""Our retriever as a LangChain `BaseRetriever`, so LangChain users can compose it.

The service's own hot path does not go through LangChain; this adapter is for callers who
want `retriever.invoke(question)` inside their chains.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.protocols import Retriever
from rag.types import Filters, ScoredChunk

__all__ = ["LangChainRetriever", "to_document"]


def to_document(hit: ScoredChunk) -> Document:
    """A LangChain Document carrying the chunk's text, source metadata and score."""
    chunk = hit.chunk
    metadata: dict[str, Any] = {
        "id": chunk.id, "source": chunk.source, "title": chunk.title, "doc_type": chunk.doc_type,
        "language": chunk.language, "section": chunk.section, "page": chunk.page, "score": hit.score,
        "signals": dict(hit.signals), "product": chunk.metadata.get("product"),
    }
    return Document(page_content=chunk.text, metadata=metadata, id=str(chunk.id))


class LangChainRetriever(BaseRetriever):
    """Wraps any `rag.protocols.Retriever`: `LangChainRetriever(retriever=..., top_k=4)`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    top_k: int = 4
    filters: Filters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [to_document(hit) for hit in self.retriever.retrieve(query, top_k=self.top_k, filters=self.filters)]
