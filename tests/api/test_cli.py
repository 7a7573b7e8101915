"""The `rag` command as a user runs it: a subprocess, its exit code and what it prints."""

from __future__ import annotations

import json
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
    roots = [str(corpus / name) for name in ("docs", "policies", "tickets")]
    ingested = rag("ingest", *roots, "--index", str(tmp_path / "index"), cwd=tmp_path, env=env)
    assert ingested.returncode == 0, ingested.stderr
    assert "new version" in " ".join(ingested.stderr.split()) and "policy 2" in ingested.stderr
    info = rag("index", "show", "--index", str(tmp_path / "index"), cwd=tmp_path, env=env)
    assert '"model": "hash-64"' in info.stdout
    asked = rag("ask", "return window?", "--index", str(tmp_path / "index"), cwd=tmp_path, env=env)
    assert asked.returncode == 4
    assert "unreachable" in asked.stderr and "Traceback" not in asked.stderr


def test_dry_run_report_file_list_and_rollback(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", TINY_CORPUS)
    env = {"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64"}
    index = ["--index", str(tmp_path / "index")]
    roots = [f"doc={corpus / 'docs'}", str(corpus / "policies"), str(corpus / "tickets")]
    assert rag("ingest", *roots, *index, cwd=tmp_path, env=env).returncode == 0
    first = json.loads(rag("index", "list", "--json", *index, cwd=tmp_path, env=env).stdout)
    (corpus / "docs" / "aurora.md").write_text("# Aurora X2\n\nNow 700 lumens.\n")
    plan = rag("ingest", *roots, *index, "--dry-run", cwd=tmp_path, env=env)
    assert plan.returncode == 0 and "dry run: nothing written" in plan.stderr
    assert "changed docs/aurora.md (content)" in " ".join(plan.stderr.split())
    done = rag("ingest", *roots, *index, "--report", str(tmp_path / "report.json"), cwd=tmp_path, env=env)
    report = json.loads((tmp_path / "report.json").read_text())
    assert done.returncode == 0 and report["files"]["changed"] == 1 and report["files"]["unchanged"] == 3
    assert report["changes"] == [{"kind": "changed", "source": "docs/aurora.md", "reason": "content"}]
    listing = rag("index", "list", *index, cwd=tmp_path, env=env)
    assert report["version"] in listing.stdout and first[0]["id"] in listing.stdout
    rolled = rag("index", "rollback", *index, cwd=tmp_path, env=env)
    assert rolled.returncode == 0 and f"{report['version']} -> {first[0]['id']}" in " ".join(rolled.stdout.split())
    again = rag("index", "rollback", *index, cwd=tmp_path, env=env)
    assert again.returncode == 3 and "nothing to roll back to" in again.stderr
    forward = rag("index", "rollback", report["version"], *index, cwd=tmp_path, env=env)
    assert forward.returncode == 0
    bad = rag("index", "rollback", "nope", *index, cwd=tmp_path, env=env)
    assert bad.returncode == 3 and "no version 'nope'" in bad.stderr


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
