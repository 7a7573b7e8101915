"""Incremental ingestion: only what changed is processed; versions, dry runs and bad files lose nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ingest.unstructured_loader as unstructured_loader
from ingest.sources import CorpusRoot
from rag.embedders import HashEmbedder
from rag.errors import ConfigError, IngestError
from rag.index import IndexFolder, open_index
from tests.conftest import TINY_CORPUS, make_job, roots_of, write_corpus


def chunks_by_source(index_dir: Path) -> dict[str, list[tuple[int, str]]]:
    index = open_index(index_dir, gpu="off")
    try:
        found: dict[str, list[tuple[int, str]]] = {}
        for chunk in index.store.all():
            found.setdefault(chunk.source, []).append((chunk.id, chunk.text))
        return found
    finally:
        index.close()


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", TINY_CORPUS)


def test_a_second_run_on_an_unchanged_corpus_changes_nothing(tmp_path: Path, corpus: Path) -> None:
    first = make_job(tmp_path / "index").run(roots_of(corpus))
    assert first.published and first.files["added"] == 4 and first.chunks_embedded > 0
    second = make_job(tmp_path / "index").run(roots_of(corpus))
    assert not second.published and second.version == first.version
    assert second.files["unchanged"] == 4 and second.chunks_embedded == 0 and second.chunks_added == 0
    assert second.exit_code == 0
    assert [v.id for v in IndexFolder(tmp_path / "index").versions()] == [first.version]


def test_added_changed_removed_and_the_rest_untouched(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    before = chunks_by_source(tmp_path / "index")
    (corpus / "docs" / "aurora.md").write_text("# Aurora X2 headlamp\n\nNow 700 lumens, rated IPX8.\n")
    (corpus / "docs" / "kettle.md").write_text("# BrewPoint kettle\n\nDescale monthly with citric acid.\n")
    (corpus / "policies" / "shipping.txt").unlink()
    report = make_job(tmp_path / "index").run(roots_of(corpus))
    assert {(c.kind, c.source) for c in report.plan if c.kind != "unchanged"} == {
        ("changed", "docs/aurora.md"), ("added", "docs/kettle.md"), ("removed", "policies/shipping.txt")}
    assert report.changes("changed")[0].reason == "content"
    after = chunks_by_source(tmp_path / "index")
    assert "policies/shipping.txt" not in after and "docs/kettle.md" in after
    assert any("700 lumens" in text for _, text in after["docs/aurora.md"])
    for untouched in ("policies/returns.md", "tickets/tickets.jsonl#T-1"):
        assert after[untouched] == before[untouched]  # same ids, same text: not re-processed
    assert report.documents == {"unchanged": 2, "changed": 1, "added": 1, "removed": 1}


def test_one_changed_ticket_re_embeds_only_that_ticket(tmp_path: Path, corpus: Path) -> None:
    tickets = corpus / "tickets" / "tickets.jsonl"
    extra = {"ticket_id": "T-3", "status": "resolved", "subject": "Tent pole snapped",
             "customer_message": "A pole of my Cascade 2P snapped.", "agent_resolution": "Sent a replacement pole."}
    tickets.write_text(tickets.read_text() + json.dumps(extra) + "\n")
    make_job(tmp_path / "index").run(roots_of(corpus))
    extra["agent_resolution"] = "Sent a replacement pole kit with a splint."
    lines = tickets.read_text().splitlines()
    tickets.write_text("\n".join([*lines[:-1], json.dumps(extra)]) + "\n")
    report = make_job(tmp_path / "index").run(roots_of(corpus))
    assert report.changes("changed")[0].source == "tickets/tickets.jsonl"
    assert report.documents["changed"] == 1 and report.documents["unchanged"] >= 1
    assert report.chunks_embedded == 1 and report.chunks_reused == report.chunks_added - 1


def test_chunking_or_embedding_changes_invalidate_everything(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    rechunked = make_job(tmp_path / "index", chunk_tokens=48).run(roots_of(corpus))
    assert {c.reason for c in rechunked.plan} == {"chunking settings changed"}
    remodelled = make_job(tmp_path / "index", embedder=HashEmbedder(dimension=32), chunk_tokens=48).run(roots_of(corpus))
    assert {c.reason for c in remodelled.plan} == {"embedding model changed (hash-64 -> hash-32)"}
    assert remodelled.chunks_reused == 0 and open_index(tmp_path / "index", gpu="off").vectors.dimension == 32


def test_a_parser_upgrade_re_parses_only_the_files_it_reads(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    monkeypatch.setattr(unstructured_loader, "_ADAPTER_VERSION", 999)
    report = make_job(tmp_path / "index").run(roots_of(corpus))
    changed = {c.source: c.reason for c in report.changes("changed")}
    assert set(changed) == {"docs/aurora.md", "policies/returns.md", "policies/shipping.txt"}
    assert all(reason.startswith("parser unstructured-") and reason.endswith("+999") for reason in changed.values())
    assert [c.source for c in report.changes("unchanged")] == ["tickets/tickets.jsonl"]
    assert report.chunks_embedded == 0  # same text, same vectors: nothing to embed


def test_full_re_processes_and_re_embeds(tmp_path: Path, corpus: Path) -> None:
    first = make_job(tmp_path / "index").run(roots_of(corpus))
    full = make_job(tmp_path / "index").run(roots_of(corpus), full=True)
    assert {c.reason for c in full.plan} == {"--full"} and full.chunks_embedded == first.chunks_embedded
    assert full.published and full.version != first.version


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, corpus: Path) -> None:
    first = make_job(tmp_path / "index").run(roots_of(corpus))
    (corpus / "docs" / "new.md").write_text("# New\n\nSomething new.\n")
    (corpus / "policies" / "returns.md").unlink()
    listing = sorted(p.relative_to(tmp_path) for p in (tmp_path / "index").rglob("*"))
    plan = make_job(tmp_path / "index").run(roots_of(corpus), dry_run=True)
    assert plan.dry_run and not plan.published and plan.version == first.version
    assert {(c.kind, c.source) for c in plan.plan if c.kind != "unchanged"} == {
        ("added", "docs/new.md"), ("removed", "policies/returns.md")}
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "index").rglob("*")) == listing


def test_roots_are_namespaces_with_their_own_doc_types(tmp_path: Path, corpus: Path) -> None:
    memo = write_corpus(tmp_path / "memos", {"holiday.md": "# Holiday hours\n\nClosed on 25 December.\n"})
    make_job(tmp_path / "index").run([*roots_of(corpus), CorpusRoot(memo, "policy")])
    by_source = {c.source: c for c in open_index(tmp_path / "index", gpu="off").store.all()}
    assert by_source["memos/holiday.md"].doc_type == "policy"
    (memo / "holiday.md").write_text("# Holiday hours\n\nClosed on 25 and 26 December.\n")
    report = make_job(tmp_path / "index").run([CorpusRoot(memo, "policy")])  # only this root
    assert [(c.kind, c.source) for c in report.plan] == [("changed", "memos/holiday.md")]
    assert "docs/aurora.md" in chunks_by_source(tmp_path / "index")  # other roots are left alone
    with pytest.raises(ConfigError, match="both named 'docs'"):
        make_job(tmp_path / "index").run([corpus / "docs", write_corpus(tmp_path / "other" / "docs", {"a.md": "# A"})])
    with pytest.raises(ConfigError, match="does not include the roots"):
        make_job(tmp_path / "index", chunk_tokens=48).run([CorpusRoot(memo, "policy")])


def test_an_empty_root_does_not_wipe_what_it_held(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    for path in (corpus / "policies").iterdir():
        path.unlink()
    with pytest.raises(IngestError, match="refusing to remove them all"):
        make_job(tmp_path / "index").run(roots_of(corpus))
    assert "policies/returns.md" in chunks_by_source(tmp_path / "index")
    report = make_job(tmp_path / "index").run(roots_of(corpus), allow_empty=True)
    assert len(report.changes("removed")) == 2


def test_a_file_that_turns_bad_keeps_its_previous_version(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    (corpus / "docs" / "aurora.md").write_bytes(b"\x00\x01\x02 binary junk \x00" * 100)
    (corpus / "docs" / "manual.pdf").write_bytes(b"%PDF-1.4 truncated")
    (corpus / "docs" / "notes.xyz").write_text("?")
    report = make_job(tmp_path / "index").run(roots_of(corpus))
    failed = dict(report.failed)
    assert set(failed) == {"docs/aurora.md", "docs/manual.pdf"}
    assert failed["docs/aurora.md"].endswith("(its previous version stays indexed)")
    assert report.skipped == [("docs/notes.xyz", "unsupported file type .xyz")]
    assert report.exit_code == 11
    assert any("650 lumens" in text for _, text in chunks_by_source(tmp_path / "index")["docs/aurora.md"])


def test_old_versions_are_pruned_to_the_configured_number(tmp_path: Path, corpus: Path) -> None:
    versions = []
    for n in range(4):
        (corpus / "docs" / "counter.md").write_text(f"# Counter\n\nRun number {n}.\n")
        versions.append(make_job(tmp_path / "index", keep_versions=2).run(roots_of(corpus)).version)
    kept = IndexFolder(tmp_path / "index").versions()
    assert [v.id for v in kept] == versions[1:] and kept[-1].current
    assert kept[-1].parent == versions[2]


def test_redaction_settings_are_part_of_the_recipe(tmp_path: Path, corpus: Path) -> None:
    class Upper:
        def __init__(self, version: int) -> None:
            self.settings = {"rules": version}

        def redact_document(self, document: object) -> tuple[object, dict[str, int]]:
            return document, {"EMAIL": 1}

    make_job(tmp_path / "index", redactor=Upper(1)).run(roots_of(corpus))
    report = make_job(tmp_path / "index", redactor=Upper(2)).run(roots_of(corpus))
    assert [(c.source, c.reason) for c in report.changes("changed")] == [("tickets/tickets.jsonl", "redaction settings")]
    assert report.redactions == {"EMAIL": 1}



def test_a_file_over_the_size_limit_is_skipped_with_its_reason(tmp_path: Path, corpus: Path) -> None:
    (corpus / "docs" / "huge.txt").write_text("All about tents. " * 200)
    report = make_job(tmp_path / "index", max_file_mb=0.002).run(roots_of(corpus))
    assert report.skipped == [("docs/huge.txt", "file is 0.0034 MB, over the 0.002 MB limit (RAG_INGEST__MAX_FILE_MB)")]
    assert report.exit_code == 10 and "docs/huge.txt" not in chunks_by_source(tmp_path / "index")
