"""One interface per swappable role; implementations are named <Backend><Role>."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag.types import Filters, Message, ScoredChunk

__all__ = ["Embedder", "LLMClient", "Reranker", "Retriever", "VectorIndex"]

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors."""

    @property
    def name(self) -> str:
        """A stable identifier of the model, recorded in the index manifest."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The longest input, in the model's tokens, that is embedded without truncation."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors: ...

    def embed_query(self, text: str) -> Vectors: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Nearest-neighbour search over vectors keyed by integer chunk ids."""

    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int: ...

    def add(self, ids: Sequence[int], vectors: Vectors) -> None: ...

    def search(
        self, query: Vectors, k: int, allowed_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]: ...

    def vectors_of(self, ids: Sequence[int]) -> Vectors: ...


@runtime_checkable
class Reranker(Protocol):
    """Scores (question, passage) pairs jointly, e.g. a cross-encoder; slower and sharper than embeddings."""

    @property
    def name(self) -> str: ...

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        """One relevance probability (0..1) per passage, in the order given."""
        ...


@runtime_checkable
class Retriever(Protocol):
    """Finds the chunks most relevant to a question."""

    def retrieve(
        self, question: str, *, top_k: int, filters: Filters | None = None
    ) -> list[ScoredChunk]: ...


@runtime_checkable
class LLMClient(Protocol):
    """A chat model behind an OpenAI-compatible API."""

    @property
    def model(self) -> str: ...

    async def complete(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None,
                       max_tokens: int | None = None, stop: Sequence[str] | None = None) -> str:
        """The answer: JSON following `schema` where the server does structured output, else free text;
        `max_tokens` and `stop`, when given, replace the client's own for this call."""
        ...

    def stream(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None) -> AsyncIterator[str]:
        """The answer's pieces as they come, in the same form `complete` gives it."""
        ...

    async def aclose(self) -> None: ...
