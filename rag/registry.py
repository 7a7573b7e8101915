"""Backends by name (embedders, rerankers). Built-ins register exactly as an outside plug-in would.

A plug-in package exposes an entry point in the group `rag.embedders`, whose value is a
callable taking the embedding keyword arguments (model, device, batch_size) and returning
an object that satisfies `rag.protocols.Embedder`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from rag.errors import ConfigError
from rag.protocols import Embedder, Reranker

__all__ = ["create_embedder", "create_reranker", "embedder_names", "register_embedder", "register_reranker"]

EmbedderFactory = Callable[..., Embedder]
RerankerFactory = Callable[..., Reranker]
F = TypeVar("F", EmbedderFactory, RerankerFactory)
_EMBEDDERS: dict[str, EmbedderFactory] = {}
_RERANKERS: dict[str, RerankerFactory] = {}


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make `factory` available as embedding backend `name`."""
    _EMBEDDERS[name] = factory


def embedder_names() -> list[str]:
    _load_plugins()
    return sorted(_EMBEDDERS)


def create_embedder(backend: str, **options: Any) -> Embedder:
    """Build the embedder registered as `backend` with its options."""
    return _create(_EMBEDDERS, backend, "embedding", "RAG_EMBEDDING__BACKEND")(**options)


def register_reranker(name: str, factory: RerankerFactory) -> None:
    """Make `factory` (keyword arguments: model, device) available as reranking backend `name`."""
    _RERANKERS[name] = factory


def create_reranker(backend: str, **options: Any) -> Reranker:
    """Build the reranker registered as `backend` (entry-point group `rag.rerankers` for plug-ins)."""
    return _create(_RERANKERS, backend, "reranking", "RAG_RETRIEVAL__RERANKER_BACKEND")(**options)


def _create(registry: dict[str, F], backend: str, role: str, setting: str) -> F:
    """The factory registered as `backend`, plug-ins included, or an error that lists the choices."""
    _load_plugins()
    if backend not in registry:
        raise ConfigError(f"unknown {role} backend {backend!r}: choose one of {', '.join(sorted(registry))} ({setting})")
    return registry[backend]


def _load_plugins() -> None:
    for group, registry in (("rag.embedders", _EMBEDDERS), ("rag.rerankers", _RERANKERS)):
        for entry in entry_points(group=group):
            if entry.name not in registry:
                registry[entry.name] = entry.load()


def _sentence_transformers(**options: Any) -> Embedder:
    from rag.embedders.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(**options)


def _hash(**options: Any) -> Embedder:
    from rag.embedders.hashing import HashEmbedder

    return HashEmbedder(dimension=int(options.get("dimension", 64)))


def _cross_encoder(**options: Any) -> Reranker:
    from rag.embedders.sentence_transformer import CrossEncoderReranker

    return CrossEncoderReranker(**options)


register_embedder("sentence-transformers", _sentence_transformers)
register_reranker("cross-encoder", _cross_encoder)
register_embedder("hash", _hash)
