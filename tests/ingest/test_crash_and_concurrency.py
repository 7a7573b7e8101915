"""Real `rag ingest` processes: SIGKILL at any stage leaves the current version intact and a re-run
completes; a second ingestion on the same index waits or exits with a clear message."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.index import IndexFolder, open_index
from tests.conftest import SAMPLE_CORPUS

pytestmark = pytest.mark.slow

HASH = {"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64"}


def start(index: Path, roots: list[Path], *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    command = [sys.executable, "-c", "from rag.cli import main; main()", "ingest", *map(str, roots),
               "--index", str(index), *args]
    return subprocess.Popen(command, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = process.communicate(timeout=600)
    return process.returncode, " ".join(err.split())


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, f"ingestion ended before the kill point: {finish(process)}"
        assert time.monotonic() < deadline
        time.sleep(0.01)


def holds_lock(index: Path) -> bool:
    lock = index / "ingest.lock"
    return lock.exists() and "ingestion (pid" in lock.read_text()


def staging_exists(index: Path) -> bool:
    return any((index / "versions").glob(".staging-*"))


@pytest.fixture()
def corpus(tmp_path: Path) -> list[Path]:
    shutil.copytree(SAMPLE_CORPUS, tmp_path / "corpus")
    return sorted(p for p in (tmp_path / "corpus").iterdir() if p.is_dir())


def test_sigkill_while_parsing_or_embedding_keeps_the_current_version(tmp_path: Path, corpus: list[Path]) -> None:
    index = tmp_path / "index"
    policies = [root for root in corpus if root.name == "policies"]
    code, err = finish(start(index, policies))  # the real model: embedding takes long enough to be killed in
    assert code == 0, err
    folder = IndexFolder(index)
    before = folder.current()
    chunks_before = len(open_index(index, gpu="off").store)

    for kill_point in (lambda: holds_lock(index), lambda: staging_exists(index)):
        process = start(index, corpus)
        wait_until(kill_point, process)
        time.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert folder.current() == before
        reopened = open_index(index, gpu="off")
        assert reopened.version == before and len(reopened.store) == chunks_before
        reopened.close()

    code, err = finish(start(index, corpus))
    assert code == 0, err
    assert folder.current() != before and not staging_exists(index)
    assert len(open_index(index, gpu="off").store) > chunks_before
    assert "Ingested into" in err and "added 30" in err  # docs and tickets files, none lost to the kills


def test_a_second_ingestion_exits_or_waits(tmp_path: Path, corpus: list[Path]) -> None:
    index = tmp_path / "index"
    first = start(index, corpus, env=HASH)
    wait_until(lambda: holds_lock(index), first)
    code, err = finish(start(index, corpus, env=HASH))
    assert code == 75
    assert f"is locked by ingestion (pid {first.pid}" in err and "--wait" in err
    waiting = start(index, corpus, "--wait", "300", env=HASH)
    assert finish(first)[0] == 0
    code, err = finish(waiting)
    assert code == 0 and "Nothing changed" in err, err
