"""Support tickets, one document each, from JSONL and CSV exports (e-mail threads: `ingest.email_tickets`).

A ticket becomes its subject as title, a "Customer: ..." element and, when answered, a
"Resolution: ..." element. Only resolved tickets are indexed by default: an open ticket has no
answer worth retrieving. Open and pending tickets are left out silently, not listed in
`Loaded.skipped`: that is a choice, not a problem with the file.

A malformed record (bad JSON, not an object, missing fields, a duplicate ticket_id) is left out
with its reason and line in `Loaded.skipped`; the rest of the file still loads. Only a file that
cannot be read at all, or is no ticket export, raises `DocumentParseError`.

Customer identity (names and addresses in fields or e-mail headers) is never copied into text or
metadata; personal data inside the free text is redacted later, by `ingest.pii`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ingest.documents import Element, Loaded, SourceDocument
from ingest.language import document_language
from rag.errors import DocumentParseError
from rag.types import DocType

__all__ = ["REQUIRED_FIELDS", "TicketLoader", "looks_like_tickets", "read_ticket_file", "ticket_document"]

REQUIRED_FIELDS = ("ticket_id", "status", "subject", "customer_message")
_KEPT_METADATA = ("ticket_id", "status", "product", "created_at", "updated_at", "channel")
_SNIFF_BYTES = 8192
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "true/false",
               type(None): "null"}

Row = tuple[int, "dict[str, Any] | str"]
"""A line number and the record that starts there, or why that line holds no record."""


def looks_like_tickets(path: Path) -> bool:
    """True for a CSV whose header has the ticket fields, or a JSONL whose first object has them."""
    try:
        rows = _rows(path)
        first = next((record for _, record in rows if isinstance(record, dict)), None)
    except DocumentParseError:
        return False
    return first is not None and all(name in first for name in REQUIRED_FIELDS)


class TicketLoader:
    """Parses JSONL or CSV ticket exports; `include_unresolved` also indexes open and pending tickets."""

    version = "tickets-2"

    def __init__(self, *, include_unresolved: bool = False) -> None:
        self._include_unresolved = include_unresolved

    def load(self, path: Path, *, source: str, doc_type: DocType = "ticket") -> Loaded:
        loaded = Loaded()
        first_line: dict[str, int] = {}
        for line, record in _rows(path):
            reason = record if isinstance(record, str) else _problem(record, first_line)
            if reason:
                loaded.skipped.append((f"{source}:{line}", reason))
                continue
            assert isinstance(record, dict)
            ticket_id = _text(record["ticket_id"])
            first_line[ticket_id] = line
            if self._include_unresolved or _text(record["status"]).lower() == "resolved":
                loaded.documents.append(ticket_document(record, source=f"{source}#{ticket_id}", doc_type=doc_type))
        if loaded.skipped and not first_line:
            where, reason = loaded.skipped[0]
            raise DocumentParseError(
                f"{path} is not a ticket export: none of its {len(loaded.skipped)} records is a valid ticket "
                f"({where}: {reason}); fix the export or move the file out of the corpus"
            )
        return loaded


def _problem(record: dict[str, Any], first_line: dict[str, int]) -> str:
    """Why a parsed record is no ticket, or "" when it is one."""
    missing = [name for name in REQUIRED_FIELDS if not _text(record.get(name))]
    if missing:
        return f"missing {', '.join(missing)} (every ticket needs {', '.join(REQUIRED_FIELDS)})"
    ticket_id = _text(record["ticket_id"])
    if ticket_id in first_line:
        return f"duplicate ticket_id {ticket_id} (first on line {first_line[ticket_id]}); kept the first"
    return ""


def _text(value: Any) -> str:
    """A field as stripped text; "" for missing, null, and values that are no text (objects, arrays)."""
    if isinstance(value, str):
        return value.strip()
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else ""


def ticket_document(record: dict[str, Any], *, source: str, doc_type: DocType) -> SourceDocument:
    subject = _text(record["subject"])
    elements = [Element(subject, kind="title"), Element(f"Customer: {_text(record['customer_message'])}")]
    resolution = _text(record.get("agent_resolution"))
    if resolution:
        elements.append(Element(f"Resolution: {resolution}"))
    metadata = {name: record[name] for name in _KEPT_METADATA if record.get(name)}
    language = document_language((e.text, None) for e in elements)
    return SourceDocument(source, subject, doc_type, language, tuple(elements), metadata)


def _rows(path: Path) -> Iterator[Row]:
    data = read_ticket_file(path)
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(path, _decode_csv(path, data))
    else:
        yield from _jsonl_rows(path, data)


def read_ticket_file(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentParseError(
            f"cannot read {path}: {exc.strerror or exc}; check that the file exists and is readable"
        ) from exc
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not utf16 and b"\x00" in data[:_SNIFF_BYTES]:
        raise DocumentParseError(
            f"cannot read {path}: it looks binary, not text (NUL bytes in its first 8 KB); "
            f"check that it really is a {path.suffix.lower()} file, or remove it"
        )
    return data


def _decode_csv(path: Path, data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings: tuple[str, ...] = ("utf-16",)
    else:
        encodings = ("utf-8-sig", "cp1252")  # Excel saves plain "CSV" in the Windows code page
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DocumentParseError(f"cannot read {path}: it is neither UTF-8 nor Windows-1252 text; export it as UTF-8 CSV")


def _csv_rows(path: Path, text: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in next(reader, [])]
    except csv.Error as exc:
        raise DocumentParseError(f"cannot read {path}: its CSV header is malformed ({exc}); fix the first line") from exc
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    if header and missing:
        raise DocumentParseError(
            f"{path} is not a ticket export: its CSV header lacks {', '.join(missing)}; "
            f"ticket exports need the columns {', '.join(REQUIRED_FIELDS)}"
        )
    start = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields, problem = [], f"malformed CSV ({exc})"
        else:
            problem = "" if len(fields) in (0, len(header)) else (
                f"has {len(fields)} fields but the header has {len(header)}; check the quoting of this row")
        if problem or fields:
            yield start, problem or dict(zip(header, fields, strict=True))
        start = reader.line_num + 1


def _jsonl_rows(path: Path, data: bytes) -> Iterator[Row]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DocumentParseError(f"cannot read {path}: it is UTF-16; JSON Lines must be UTF-8, re-export it as UTF-8")
    for number, raw in enumerate(data.removeprefix(codecs.BOM_UTF8).splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, f"not valid UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); re-export as UTF-8"
            continue
        yield number, _json_object(text)


def _json_object(text: str) -> dict[str, Any] | str:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return "not valid JSON (nested too deeply)"
    if not isinstance(value, dict):
        return f"expected a JSON object, found {_JSON_TYPES.get(type(value), type(value).__name__)}"
    return value
