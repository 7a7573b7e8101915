from __future__ import annotations

from pathlib import Path

from langchain_core.retrievers import BaseRetriever

from rag.embedders import HashEmbedder
from rag.index import open_index
from rag.langchain import LangChainRetriever
from rag.retrieval import HybridRetriever
from rag.types import Filters


def test_adapter_is_a_langchain_retriever(tiny_index: Path) -> None:
    index = open_index(tiny_index, gpu="off")
    ours = HybridRetriever.over(index, embedder=HashEmbedder())
    retriever = LangChainRetriever(retriever=ours, top_k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Aurora X2 lumens")
    assert len(docs) == 2
    assert docs[0].metadata["source"] == "docs/aurora.md" and "650 lumens" in docs[0].page_content
    assert docs[0].metadata["score"] >= docs[1].metadata["score"]
    only_policies = LangChainRetriever(retriever=ours, top_k=5, filters=Filters(doc_types=("policy",)))
    assert {d.metadata["doc_type"] for d in only_policies.invoke("days")} == {"policy"}
