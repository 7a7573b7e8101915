"""Plain data shared by every stage: chunks, search hits, answers. Imports nothing of the project."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

__all__ = [
    "DOC_TYPES",
    "Answer",
    "Chunk",
    "Citation",
    "Decision",
    "DocType",
    "Filters",
    "Message",
    "ScoredChunk",
    "Turn",
]

DocType = Literal["doc", "policy", "ticket"]
Decision = Literal["answer", "clarify", "escalate"]
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
    """A chunk returned by a search: `score` is its relevance in 0..1, `signals` the raw scores
    behind it (dense cosine, BM25, fused rank score, source prior, lexical coverage, rerank)."""

    chunk: Chunk
    score: float
    signals: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Filters:
    """Metadata restrictions on a search; empty fields mean no restriction.

    Each tuple means "any of these". `products` compares case-insensitively (ASCII) with the chunk's
    `product` metadata. `effective_on` keeps the policies in effect on that day (effective_from
    <= day < effective_to; an unknown bound does not exclude) and leaves other doc types alone.
    """

    doc_types: tuple[DocType, ...] = ()
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    effective_on: date | None = None

    def accepts(self, chunk: Chunk) -> bool:
        """True when the chunk passes every restriction."""
        return (
            (not self.doc_types or chunk.doc_type in self.doc_types)
            and (not self.languages or chunk.language in self.languages)
            and (not self.sources or chunk.source in self.sources)
            and (not self.products or _ascii_lower(str(chunk.metadata.get("product") or "")) in self.product_keys())
            and (self.effective_on is None or chunk.doc_type != "policy" or _in_effect(chunk, self.effective_on))
        )

    def product_keys(self) -> set[str]:
        """The product names as compared: A-Z lower-cased only, as SQLite's lower() does."""
        return {_ascii_lower(p) for p in self.products}

    def is_empty(self) -> bool:
        """True when nothing is restricted."""
        return not (self.doc_types or self.languages or self.sources or self.products or self.effective_on)


def _ascii_lower(text: str) -> str:
    """Lower-case A-Z only, as SQLite's lower() does, so the SQL filter and this one agree."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _in_effect(chunk: Chunk, day: date) -> bool:
    start, end = chunk.metadata.get("effective_from"), chunk.metadata.get("effective_to")
    iso = day.isoformat()
    return (not start or start <= iso) and (not end or iso < end)


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
    text: str = ""
    span: tuple[int, int] | None = None  # [start, end) in `text` of the sentence that supports the answer


@dataclass(frozen=True, slots=True)
class Answer:
    """What the pipeline returns for one question: the text, and whether to trust it (`decision`)."""

    answer: str
    citations: tuple[Citation, ...]
    model: str
    index_version: str
    timings_ms: dict[str, float]
    decision: Decision = "answer"
    reason: str = ""
    confidence: float = 0.0
    removed: tuple[str, ...] = ()
    prompt: str = ""
    options: tuple[str, ...] = ()  # what the customer can choose from when the decision is clarify
    standalone_question: str = ""  # the follow-up rewritten to stand alone, as retrieval saw it; "" when not rewritten


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier exchange of a conversation, oldest first in a history."""

    question: str
    answer: str
