"""Embedding backends, chosen by name through `rag.registry`."""

from rag.embedders.hashing import HashEmbedder
from rag.embedders.sentence_transformer import SentenceTransformerEmbedder

__all__ = ["HashEmbedder", "SentenceTransformerEmbedder"]
