"""Plain data shared by every stage: chunks, search hits, answers. Imports nothing of the project."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DOC_TYPES",
    "Answer",
    "Chunk",
    "Citation",
    "DocType",
    "Filters",
    "Message",
    "ScoredChunk",
]

DocType = Literal["doc", "policy", "ticket"]
DOC_TYPES: tuple[DocType, ...] = ("doc", "policy", "ticket")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a source document small enough to embed, with where it came from."""

    id: int
    text: str
    source: str
    title: str
    doc_type: DocType
    language: str = "en"
    section: str = ""
    page: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """A chunk returned by a search, with its similarity (cosine, -1..1)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class Filters:
    """Metadata restrictions on a search; empty fields mean no restriction."""

    doc_types: tuple[DocType, ...] = ()
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def accepts(self, chunk: Chunk) -> bool:
        """True when the chunk passes every restriction."""
        return (
            (not self.doc_types or chunk.doc_type in self.doc_types)
            and (not self.languages or chunk.language in self.languages)
            and (not self.sources or chunk.source in self.sources)
        )

    def is_empty(self) -> bool:
        """True when nothing is restricted."""
        return not (self.doc_types or self.languages or self.sources)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message for an OpenAI-compatible server."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Citation:
    """A numbered passage shown to the model; `cited` says whether the answer refers to it as [n]."""

    n: int
    source: str
    title: str
    snippet: str
    score: float
    cited: bool
    doc_type: DocType = "doc"
    section: str = ""
    page: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the pipeline returns for one question."""

    answer: str
    citations: tuple[Citation, ...]
    model: str
    index_version: str
    timings_ms: dict[str, float]
