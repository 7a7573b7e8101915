"""Backends by name. Built-ins register exactly as an outside plug-in would.

A plug-in package exposes an entry point in the group `rag.embedders`, whose value is a
callable taking the embedding keyword arguments (model, device, batch_size) and returning
an object that satisfies `rag.protocols.Embedder`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from rag.errors import ConfigError
from rag.protocols import Embedder

__all__ = ["create_embedder", "embedder_names", "register_embedder"]

EmbedderFactory = Callable[..., Embedder]
_EMBEDDERS: dict[str, EmbedderFactory] = {}


def register_embedder(name: str, factory: EmbedderFactory) -> None:
    """Make `factory` available as embedding backend `name`."""
    _EMBEDDERS[name] = factory


def embedder_names() -> list[str]:
    _load_plugins()
    return sorted(_EMBEDDERS)


def create_embedder(backend: str, **options: Any) -> Embedder:
    """Build the embedder registered as `backend` with its options."""
    _load_plugins()
    if backend not in _EMBEDDERS:
        raise ConfigError(
            f"unknown embedding backend {backend!r}: choose one of {', '.join(sorted(_EMBEDDERS))} "
            "(RAG_EMBEDDING__BACKEND)"
        )
    return _EMBEDDERS[backend](**options)


def _load_plugins() -> None:
    for entry in entry_points(group="rag.embedders"):
        if entry.name not in _EMBEDDERS:
            _EMBEDDERS[entry.name] = entry.load()


def _sentence_transformers(**options: Any) -> Embedder:
    from rag.embedders.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(**options)


def _hash(**options: Any) -> Embedder:
    from rag.embedders.hashing import HashEmbedder

    return HashEmbedder(dimension=int(options.get("dimension", 64)))


register_embedder("sentence-transformers", _sentence_transformers)
register_embedder("hash", _hash)
