"""Backends by name (embedders, rerankers). Built-ins register exactly as an outside plug-in would.

A plug-in package exposes an entry point in the group `rag.embedders`, whose value is a
callable taking the embedding keyword arguments (model, device, batch_size, precision, threads,
cache_dir) and returning an object that satisfies `rag.protocols.Embedder`. A factory that does not
take `**options` is given only the arguments it names, so one written for (model, device,
batch_size) keeps working.
"""

from __future__ import annotations

import inspect
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
    """Build the embedder registered as `backend` with the options its factory takes."""
    factory = _create(_EMBEDDERS, backend, "embedding", "RAG_EMBEDDING__BACKEND")
    return factory(**_accepted(factory, options))


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


def _accepted(factory: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The options a factory names, or all of them when it takes **options (or cannot be inspected)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return options
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return options
    names = {p.name for p in parameters}
    return {name: value for name, value in options.items() if name in names}


def _load_plugins() -> None:
    for group, registry in (("rag.embedders", _EMBEDDERS), ("rag.rerankers", _RERANKERS)):
        for entry in entry_points(group=group):
            if entry.name not in registry:
                registry[entry.name] = entry.load()


def _sentence_transformers(*, threads: int = 0, cache_dir: object = None, **options: Any) -> Embedder:
    """PyTorch; its threads are set process-wide (`rag.threads`), and it exports nothing to cache."""
    from rag.embedders.sentence_transformer import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(**options)


def _onnx(**options: Any) -> Embedder:
    from rag.embedders.onnx import OnnxEmbedder

    return OnnxEmbedder(**options)


def _openvino(**options: Any) -> Embedder:
    from rag.embedders.openvino import OpenVINOEmbedder

    return OpenVINOEmbedder(**options)


def _hash(**options: Any) -> Embedder:
    from rag.embedders.hashing import HashEmbedder

    return HashEmbedder(dimension=int(options.get("dimension", 64)))


def _cross_encoder(**options: Any) -> Reranker:
    from rag.embedders.sentence_transformer import CrossEncoderReranker

    return CrossEncoderReranker(**options)


register_embedder("sentence-transformers", _sentence_transformers)
register_embedder("onnx", _onnx)
register_embedder("openvino", _openvino)
register_reranker("cross-encoder", _cross_encoder)
register_embedder("hash", _hash)
