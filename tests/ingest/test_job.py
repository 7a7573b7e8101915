"""The ingestion job with real unstructured and a hash embedder: report, errors, and safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.chunking import StructureAwareChunker
from ingest.job import IngestJob
from rag.embedders import HashEmbedder
from rag.errors import IngestError
from rag.index import open_index
from tests.conftest import TINY_CORPUS, write_corpus


def job(index_dir: Path) -> IngestJob:
    embedder = HashEmbedder()
    return IngestJob(embedder=embedder, index_dir=index_dir,
                     chunker=StructureAwareChunker(count_tokens=embedder.count_tokens, chunk_tokens=64, overlap_tokens=8))


def test_report_and_manifest(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c", {**TINY_CORPUS, "docs/notes.xyz": "?", ".hidden/x.md": "# no"})
    report = job(tmp_path / "index").run([corpus])
    assert report.files == 4 and report.documents == 4  # the open ticket is left out
    assert report.by_doc_type == {"policy": 2, "doc": 1, "ticket": 1}
    assert report.skipped == [("docs/notes.xyz", "unsupported file type .xyz")]
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["embedding"] == {"model": "hash-64", "dimension": 64, "max_tokens": 256}
    assert manifest["chunking"]["chunk_tokens"] == 64 and manifest["parser"].startswith("unstructured-")
    assert manifest["counts"]["chunks"] == report.chunks == len(open_index(tmp_path / "index").store)
    assert manifest["version"] == report.version


def test_a_broken_file_is_reported_and_the_rest_ingested(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c", TINY_CORPUS)
    (corpus / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    report = job(tmp_path / "index").run([corpus])
    assert [source for source, _ in report.failed] == ["docs/broken.pdf"]
    assert "cannot parse" in report.failed[0][1]
    assert report.documents == 4


def test_empty_corpus_fails_and_keeps_the_existing_index(tmp_path: Path) -> None:
    good = job(tmp_path / "index").run([write_corpus(tmp_path / "c", TINY_CORPUS)])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IngestError, match="no text found"):
        job(tmp_path / "index").run([empty])
    assert open_index(tmp_path / "index").version == good.version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "empty", "index"]  # no staging left behind


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        job(tmp_path / "index").run([tmp_path / "nope"])
