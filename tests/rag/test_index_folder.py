"""The versioned index folder: atomic switch, history, pruning, the lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from rag.errors import IndexCorruptError, IndexLockedError, IndexNotFoundError
from rag.index import IndexFolder, open_index
from rag.index.folder import FORMAT_VERSION
from tests.conftest import TINY_CORPUS, make_job, roots_of, write_corpus


@pytest.fixture()
def three_versions(tmp_path: Path) -> tuple[IndexFolder, list[str]]:
    corpus = write_corpus(tmp_path / "corpus", TINY_CORPUS)
    versions = []
    for n in range(3):
        (corpus / "docs" / "n.md").write_text(f"# Run\n\nRun {n}.\n")
        versions.append(make_job(tmp_path / "index").run(roots_of(corpus)).version)
    return IndexFolder(tmp_path / "index"), versions


def test_versions_history_and_switch(three_versions: tuple[IndexFolder, list[str]]) -> None:
    folder, versions = three_versions
    listed = folder.versions()
    assert [v.id for v in listed] == versions and [v.current for v in listed] == [False, False, True]
    assert [v.parent for v in listed] == [None, versions[0], versions[1]]
    assert folder.previous() == versions[1]
    folder.switch(versions[0])
    assert folder.current() == versions[0] and open_index(folder.root).version == versions[0]
    assert folder.previous() is None  # the first version has no parent
    with pytest.raises(IndexNotFoundError, match="rag index list"):
        folder.switch("20990101T000000000000Z")


def test_prune_keeps_the_current_one_and_the_newest_others(three_versions: tuple[IndexFolder, list[str]]) -> None:
    folder, versions = three_versions
    folder.switch(versions[0])
    assert folder.prune(keep=1) == [versions[1]]
    assert [v.id for v in folder.versions()] == [versions[0], versions[2]]


def test_a_dangling_pointer_or_old_format_is_a_clear_error(three_versions: tuple[IndexFolder, list[str]]) -> None:
    folder, versions = three_versions
    (folder.root / "CURRENT").write_text("20990101T000000000000Z\n")
    with pytest.raises(IndexCorruptError, match="missing: `rag index rollback`"):
        open_index(folder.root)
    manifest = folder.path_of(versions[0]) / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"format_version": {FORMAT_VERSION}', '"format_version": 1'))
    with pytest.raises(IndexCorruptError, match="rag ingest --full"):
        open_index(folder.path_of(versions[0]))


def test_the_lock_refuses_or_waits(tmp_path: Path) -> None:
    folder = IndexFolder(tmp_path / "index")
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with folder.lock(purpose="ingestion"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    with pytest.raises(IndexLockedError, match=r"locked by ingestion \(pid \d+"), folder.lock():
        pass
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    with folder.lock(wait_s=10, purpose="rollback"):
        assert time.monotonic() - started >= 0.3
        assert "rollback" in (folder.root / "ingest.lock").read_text()
    thread.join()
