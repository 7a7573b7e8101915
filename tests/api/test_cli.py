"""The `rag` command as a user runs it: a subprocess, its exit code and what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_CORPUS, free_port, write_corpus


def rag(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-c", "from rag.cli import main; main()", *args], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=300)


def test_help_lists_every_command_with_an_example(tmp_path: Path) -> None:
    out = rag("--help", cwd=tmp_path)
    assert out.returncode == 0
    for command in ("ingest", "serve", "ask", "llm", "eval", "index"):
        assert command in out.stdout
    assert "Example: rag ingest" in rag("ingest", "--help", cwd=tmp_path).stdout


def test_ask_without_index_says_how_to_fix(tmp_path: Path) -> None:
    out = rag("ask", "hello?", "--index", str(tmp_path / "none"), cwd=tmp_path)
    assert out.returncode == 3
    assert out.stderr.strip().startswith("error: index not found at")
    assert "rag ingest" in out.stderr and "Traceback" not in out.stderr


def test_ingest_then_ask_with_llm_down(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", TINY_CORPUS)
    env = {"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64",
           "RAG_LLM__BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    ingested = rag("ingest", str(corpus), "--index", str(tmp_path / "index"), cwd=tmp_path, env=env)
    assert ingested.returncode == 0, ingested.stderr
    assert "chunks" in ingested.stderr and "policy 2" in ingested.stderr
    info = rag("index", "--index", str(tmp_path / "index"), cwd=tmp_path, env=env)
    assert '"model": "hash-64"' in info.stdout
    asked = rag("ask", "return window?", "--index", str(tmp_path / "index"), cwd=tmp_path, env=env)
    assert asked.returncode == 4
    assert "unreachable" in asked.stderr and "Traceback" not in asked.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (("ingest", "/no/such/folder"), "does not exist"),
    (("ingest", ".", "--doc-type", "memo"), "choose one of doc, policy, ticket"),
    (("ask", "hi", "--server", "http://127.0.0.1:9"), "cannot reach the API"),
])
def test_bad_arguments_get_one_clear_line(tmp_path: Path, args: tuple[str, ...], fragment: str) -> None:
    out = rag(*args, cwd=tmp_path, env={"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64"})
    assert out.returncode != 0
    assert fragment in " ".join(out.stderr.split()) and "Traceback" not in out.stderr


def test_an_invalid_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    out = rag("ask", "hi", cwd=tmp_path, env={"RAG_LLM__TIMEOUT_S": "soon"})
    assert out.returncode == 2
    assert out.stderr.strip().startswith("error: invalid setting RAG_LLM__TIMEOUT_S")
    assert len(out.stderr.strip().splitlines()) == 1
