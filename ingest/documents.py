"""What loaders produce: a source document as a list of structural elements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from rag.types import DocType

__all__ = ["DocumentLoader", "Element", "ElementKind", "Loaded", "SourceDocument"]

ElementKind = Literal["title", "text", "list", "table"]


@dataclass(frozen=True, slots=True)
class Element:
    """One structural piece of a document: a heading, a paragraph, a list item, a table."""

    text: str
    kind: ElementKind = "text"
    depth: int = 0
    page: int | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A document ready for chunking; `source` is stable across runs (relative path, maybe #id)."""

    source: str
    title: str
    doc_type: DocType
    language: str
    elements: tuple[Element, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n".join(element.text for element in self.elements)


@dataclass(slots=True)
class Loaded:
    """What a loader read from one file: its documents, and the records it had to leave out.

    A record left out (a malformed ticket line, say) is `(where, reason)`, e.g.
    `("tickets/t.jsonl:7", "not valid JSON")`; the rest of the file is still ingested.
    A file that cannot be read at all raises `DocumentParseError` instead.
    """

    documents: list[SourceDocument] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class DocumentLoader(Protocol):
    """Parses one file into zero or more source documents."""

    version: str
    """Changes whenever the same file would load differently; recorded per file in the index."""

    def load(self, path: Path, *, source: str, doc_type: DocType) -> Loaded: ...
