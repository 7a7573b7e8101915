"""Finding the files of a corpus and the loader and doc type for each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.documents import DocumentLoader
from ingest.tickets import TicketLoader, looks_like_tickets
from ingest.unstructured_loader import SUPPORTED_SUFFIXES, UnstructuredLoader
from rag.types import DocType

__all__ = ["SourceFile", "discover", "infer_doc_type"]

_FOLDER_TYPES: dict[str, DocType] = {
    "policies": "policy", "policy": "policy", "tickets": "ticket", "ticket": "ticket",
}


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to ingest, or to skip with a reason."""

    path: Path
    source: str
    doc_type: DocType
    loader: DocumentLoader | None
    skip_reason: str = ""


def infer_doc_type(relative: Path) -> DocType:
    """policies/... -> policy, tickets/... -> ticket, anything else -> doc."""
    for part in relative.parts[:-1]:
        if part.lower() in _FOLDER_TYPES:
            return _FOLDER_TYPES[part.lower()]
    return "doc"


def discover(
    root: Path, *, doc_type: DocType | None = None, include_unresolved_tickets: bool = False
) -> Iterator[SourceFile]:
    """Every non-hidden file under root (or root itself), in a stable order."""
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    base = root.parent if root.is_file() else root
    unstructured = UnstructuredLoader()
    tickets = TicketLoader(include_unresolved=include_unresolved_tickets)
    for path in files:
        relative = path.relative_to(base)
        if any(part.startswith(".") for part in relative.parts):
            continue
        kind = doc_type or infer_doc_type(relative)
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".csv"):
            ok = looks_like_tickets(path)
            yield SourceFile(path, relative.as_posix(), "ticket" if ok else kind, tickets if ok else None,
                             "" if ok else f"{suffix} files are ingested only as ticket exports")
        elif suffix in SUPPORTED_SUFFIXES:
            yield SourceFile(path, relative.as_posix(), kind, unstructured)
        else:
            yield SourceFile(path, relative.as_posix(), kind, None, f"unsupported file type {suffix or '(none)'}")
