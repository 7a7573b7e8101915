"""The ingestion job with real unstructured and a hash embedder: report, manifest, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.errors import IngestError
from rag.index import IndexFiles, IndexFolder, open_index
from tests.conftest import TINY_CORPUS, make_job, roots_of, write_corpus


def test_report_and_manifest(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c", {**TINY_CORPUS, "docs/notes.xyz": "?", "docs/.hidden/x.md": "# no"})
    report = make_job(tmp_path / "index").run(roots_of(corpus))
    assert report.files["added"] == 4 and report.documents == {"added": 4}  # the open ticket is left out
    assert report.by_doc_type == {"policy": 2, "doc": 1, "ticket": 1}
    assert report.skipped == [("docs/notes.xyz", "unsupported file type .xyz")] and report.exit_code == 10
    assert report.published and report.previous_version is None
    folder = IndexFolder(tmp_path / "index")
    assert folder.current() == report.version
    manifest = json.loads(IndexFiles(folder.path_of(report.version)).manifest.read_text())
    assert manifest["embedding"] == {"model": "hash-64", "dimension": 64, "max_tokens": 256}
    assert manifest["chunking"]["chunk_tokens"] == 64 and manifest["parent"] is None
    assert manifest["counts"]["chunks"] == report.chunks == len(open_index(tmp_path / "index").store)
    assert manifest["counts"]["documents"] == 4 and manifest["roots"] == ["docs", "policies", "tickets"]
    assert manifest["version"] == report.version


def test_report_json_has_every_section(tmp_path: Path) -> None:
    report = make_job(tmp_path / "index").run(roots_of(write_corpus(tmp_path / "c", TINY_CORPUS)))
    data = report.to_json()
    assert data["files"] == {"added": 4, "changed": 0, "removed": 0, "unchanged": 0, "skipped": 0, "failed": 0}
    assert data["version"] == report.version and data["exit_code"] == 0
    assert set(data) >= {"documents", "changes", "skipped", "skipped_records", "failed", "chunks", "pii_redactions",
                         "duplicate_tickets_collapsed", "superseded_policies", "timings_s"}
    assert {"scan", "parse", "embed", "write"} <= set(data["timings_s"])
    json.dumps(data)


def test_a_broken_file_is_reported_and_the_rest_ingested(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "c", TINY_CORPUS)
    (corpus / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    report = make_job(tmp_path / "index").run(roots_of(corpus))
    assert [source for source, _ in report.failed] == ["docs/broken.pdf"]
    assert "broken.pdf" in report.failed[0][1] and report.exit_code == 11
    assert report.documents["added"] == 4


def test_empty_corpus_fails_and_keeps_the_existing_index(tmp_path: Path) -> None:
    good = make_job(tmp_path / "index").run(roots_of(write_corpus(tmp_path / "c", TINY_CORPUS)))
    with pytest.raises(IngestError, match="no text found"):
        make_job(tmp_path / "other").run([write_corpus(tmp_path / "empty", {"a.md": "  \n"})])
    assert open_index(tmp_path / "index").version == good.version
    assert IndexFolder(tmp_path / "other").current() is None
    assert list((tmp_path / "other").rglob(".staging-*")) == []  # no half-written version left behind


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist"):
        make_job(tmp_path / "index").run([tmp_path / "nope"])
