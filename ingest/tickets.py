"""Support tickets from JSONL or CSV: one document per ticket, question plus resolution.

Only resolved tickets are indexed by default: an open ticket has no answer worth retrieving.
Customer identity fields are never copied into the text (redaction of free text is #3's job).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.documents import Element, Loaded, SourceDocument
from ingest.language import document_language
from rag.errors import DocumentParseError
from rag.types import DocType

__all__ = ["REQUIRED_FIELDS", "TicketLoader", "looks_like_tickets"]

REQUIRED_FIELDS = ("ticket_id", "status", "subject", "customer_message")
_KEPT_METADATA = ("ticket_id", "status", "product", "created_at", "updated_at", "channel")


def looks_like_tickets(path: Path) -> bool:
    """True when the file's first record has the ticket fields."""
    try:
        first = next(_records(path), None)
    except DocumentParseError:
        return False
    return first is not None and all(name in first[1] for name in REQUIRED_FIELDS)


class TicketLoader:
    """Parses ticket exports; `include_unresolved` also indexes open and pending tickets."""

    version = "tickets-1"

    def __init__(self, *, include_unresolved: bool = False) -> None:
        self._include_unresolved = include_unresolved

    def load(self, path: Path, *, source: str, doc_type: DocType = "ticket") -> Loaded:
        documents = []
        for line, record in _records(path):
            missing = [name for name in REQUIRED_FIELDS if not str(record.get(name) or "").strip()]
            if missing:
                raise DocumentParseError(
                    f"{path}:{line}: ticket lacks {', '.join(missing)}; every ticket needs "
                    f"{', '.join(REQUIRED_FIELDS)}"
                )
            if self._include_unresolved or str(record["status"]).lower() == "resolved":
                documents.append(_document(record, source=source, doc_type=doc_type))
        return Loaded(documents)


def _document(record: dict[str, Any], *, source: str, doc_type: DocType) -> SourceDocument:
    subject = str(record["subject"]).strip()
    elements = [Element(subject, kind="title"), Element(f"Customer: {record['customer_message']}".strip())]
    resolution = str(record.get("agent_resolution") or "").strip()
    if resolution:
        elements.append(Element(f"Resolution: {resolution}"))
    metadata = {name: record[name] for name in _KEPT_METADATA if record.get(name)}
    language = document_language((e.text, None) for e in elements)
    return SourceDocument(
        f"{source}#{record['ticket_id']}", subject, doc_type, language, tuple(elements), metadata
    )


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix.lower() == ".csv":
                for number, row in enumerate(csv.DictReader(handle), start=2):
                    yield number, dict(row)
                return
            for number, text in enumerate(handle, start=1):
                if text.strip():
                    yield number, _json_object(path, number, text)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DocumentParseError(f"cannot read tickets from {path}: {exc}") from exc


def _json_object(path: Path, number: int, text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentParseError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise DocumentParseError(f"{path}:{number}: expected a JSON object per line")
    return value
