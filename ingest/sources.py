"""Corpus roots, the files in them, and the loader and doc type for each.

A source file's id is its path from the root folder's name: ingesting the root `kb/policies`
gives ids like `policies/returns-2025.md`, whichever folder you run from. Ids are what the
index remembers across runs, so keep root folder names stable. Several roots can go into one
index; a run only adds, changes or removes files under the roots it is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.documents import DocumentLoader
from ingest.email_tickets import EmailTicketLoader
from ingest.metadata import is_sidecar
from ingest.tickets import TicketLoader, looks_like_tickets
from ingest.unstructured_loader import SUPPORTED_SUFFIXES, UnstructuredLoader
from rag.errors import ConfigError, IngestError
from rag.types import DOC_TYPES, DocType

__all__ = ["CorpusRoot", "SourceFile", "discover", "file_sha256", "infer_doc_type"]

_FOLDER_TYPES: dict[str, DocType] = {
    "policies": "policy", "policy": "policy", "tickets": "ticket", "ticket": "ticket",
}


@dataclass(frozen=True, slots=True)
class CorpusRoot:
    """A folder (or one file) to ingest, optionally with the doc type of everything in it."""

    path: Path
    doc_type: DocType | None = None

    @classmethod
    def parse(cls, text: str) -> CorpusRoot:
        """`PATH` or `TYPE=PATH`, e.g. `policy=/srv/kb/policies`."""
        kind, sep, rest = text.partition("=")
        if sep and kind in DOC_TYPES:
            return cls(Path(rest), kind)  # type: ignore[arg-type]
        if sep and "/" not in kind and not Path(text).exists():
            raise ConfigError(f"{text!r}: {kind!r} is not a doc type; write TYPE=PATH with TYPE one of "
                              f"{', '.join(DOC_TYPES)}, or just PATH")
        return cls(Path(text))

    @property
    def folder(self) -> Path:
        """The root folder (for a single file, the folder it is in)."""
        resolved = self.path.resolve()
        return resolved if resolved.is_dir() else resolved.parent

    @property
    def name(self) -> str:
        return self.folder.name

    def owns(self, source: str) -> bool:
        """True for ids this root is responsible for (a run removes those it no longer finds)."""
        if self.path.is_file():
            return source == f"{self.name}/{self.path.name}"
        return source.startswith(f"{self.name}/")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to ingest, or to skip with a reason."""

    path: Path
    source: str
    doc_type: DocType
    root: CorpusRoot
    loader: DocumentLoader | None
    skip_reason: str = ""


def infer_doc_type(source: str) -> DocType:
    """policies/... -> policy, tickets/... -> ticket (any folder of the id), anything else -> doc."""
    for part in Path(source).parts[:-1]:
        if part.lower() in _FOLDER_TYPES:
            return _FOLDER_TYPES[part.lower()]
    return "doc"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def discover(
    root: CorpusRoot, *, include_unresolved_tickets: bool = False, max_bytes: int | None = None
) -> Iterator[SourceFile]:
    """Every non-hidden, non-sidecar file under the root, in a stable order."""
    if not root.path.exists():
        raise IngestError(f"corpus path {root.path} does not exist: pass a folder or file to ingest")
    paths = [root.path] if root.path.is_file() else sorted(p for p in root.path.rglob("*") if p.is_file())
    documents = UnstructuredLoader()
    tickets = TicketLoader(include_unresolved=include_unresolved_tickets)
    emails = EmailTicketLoader(include_unresolved=include_unresolved_tickets)
    base = root.folder.parent
    for path in paths:
        relative = path.resolve().relative_to(base)
        if any(part.startswith(".") for part in relative.parts[1:]) or is_sidecar(path):
            continue
        source = relative.as_posix()
        kind = root.doc_type or infer_doc_type(source)
        suffix = path.suffix.lower()
        size = path.stat().st_size
        loader: DocumentLoader | None = None
        reason = ""
        if max_bytes is not None and size > max_bytes:
            reason = f"file is {size / 1e6:.3g} MB, over the {max_bytes / 1e6:.3g} MB limit (RAG_INGEST__MAX_FILE_MB)"
        elif suffix in (".jsonl", ".csv"):
            if looks_like_tickets(path):
                kind, loader = "ticket", tickets
            else:
                reason = f"{suffix} files are ingested only as ticket exports (ticket_id, status, subject, ...)"
        elif suffix == ".eml" and kind == "ticket":
            loader = emails
        elif suffix in SUPPORTED_SUFFIXES:
            loader = documents
        else:
            reason = f"unsupported file type {suffix or '(none)'}"
        yield SourceFile(path, source, kind, root, loader, reason)
