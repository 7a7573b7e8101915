"""The bundled sample corpus through the real pipeline: unstructured, MiniLM and FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.report import IngestReport
from rag.index import open_index
from tests.conftest import SAMPLE_CORPUS

pytestmark = pytest.mark.slow


def test_every_format_is_ingested_without_failures(sample_index: tuple[Path, IngestReport]) -> None:
    _, report = sample_index
    assert report.failed == []
    assert {"md", "html", "pdf", "docx", "txt", "eml", "jsonl", "csv"} <= set(report.by_format)
    assert len(list(SAMPLE_CORPUS.rglob("*.*"))) >= 40
    assert report.by_doc_type["doc"] > 0 and report.by_doc_type["policy"] > 0 and report.by_doc_type["ticket"] > 0


def test_metadata_of_chunks(sample_index: tuple[Path, IngestReport]) -> None:
    index = open_index(sample_index[0], gpu="off")
    chunks = index.store.all()
    by_source: dict[str, set[str]] = {}
    for chunk in chunks:
        by_source.setdefault(chunk.source, set()).add(chunk.language)
    chinese = [s for s, langs in by_source.items() if "zh" in langs]
    assert len(chinese) >= 2, by_source
    assert {c.doc_type for c in chunks if c.source.startswith("policies/")} == {"policy"}
    pdf_pages = [c.page for c in chunks if c.source.endswith(".pdf")]
    assert pdf_pages and all(isinstance(p, int) for p in pdf_pages)
    assert index.vectors.dimension == 384


def test_only_resolved_tickets_are_indexed(sample_index: tuple[Path, IngestReport]) -> None:
    chunks = open_index(sample_index[0], gpu="off").store.all()
    statuses = {c.metadata.get("status") for c in chunks if "#" in c.source}
    assert statuses == {"resolved"}
    rows = [json.loads(line) for line in (SAMPLE_CORPUS / "tickets" / "tickets.jsonl").read_text().splitlines() if line]
    open_ids = {r["ticket_id"] for r in rows if r["status"] != "resolved"}
    assert open_ids and not any(c.source.endswith(tuple(f"#{i}" for i in open_ids)) for c in chunks)


def test_chunks_fit_the_embedding_model(sample_index: tuple[Path, IngestReport], minilm: object) -> None:
    chunks = open_index(sample_index[0], gpu="off").store.all()
    longest = max(minilm.count_tokens(c.text) for c in chunks)  # type: ignore[attr-defined]
    assert longest <= minilm.max_tokens  # type: ignore[attr-defined]
