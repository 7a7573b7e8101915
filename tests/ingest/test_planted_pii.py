"""No planted personal value survives ingestion: not in the chunk store, the FAISS file, the
manifest, the ingest output and report, nor in answers built from the index."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import prompts
from ingest.report import IngestReport
from rag.index import open_index
from rag.pipeline import RagPipeline
from rag.retrieval import HybridRetriever
from rag.testing import ScriptedLLM
from tests.conftest import SAMPLE_CORPUS

pytestmark = pytest.mark.slow

PLANTED = json.loads((SAMPLE_CORPUS.parent / "planted_pii.json").read_text(encoding="utf-8"))
VALUES = [value for key, values in PLANTED.items() if not key.startswith("_") for value in values]


def leaked(text: str) -> list[str]:
    lowered = text.lower()
    return [value for value in VALUES if value.lower() in lowered]


def test_the_planted_list_is_really_in_the_raw_tickets() -> None:
    raw = "\n".join(p.read_text(encoding="utf-8") for p in (SAMPLE_CORPUS / "tickets").iterdir())
    assert len(VALUES) > 100 and leaked(raw) == VALUES  # the check below can fail: every value is there to leak


def test_no_planted_value_in_the_index_files(sample_index: tuple[Path, IngestReport]) -> None:
    index_dir, report = sample_index
    assert report.redactions["EMAIL"] and report.redactions["PHONE"] and report.redactions["CARD"]
    version = open_index(index_dir, gpu="off").root
    files = [p for p in version.rglob("*") if p.is_file()]  # chunks.sqlite3 (text, terms, metadata, files), faiss,
    assert {p.name for p in files} >= {"chunks.sqlite3", "vectors.faiss", "manifest.json", "vocab.index.json"}  # + bm25/
    for path in files:
        assert leaked(path.read_bytes().decode("utf-8", errors="replace")) == [], path.name
    assert leaked(json.dumps(report.to_json())) == []


def test_no_planted_value_in_the_bm25_vocabulary(sample_index: tuple[Path, IngestReport]) -> None:
    """BM25 stores single terms, so a value leaks when every one of its distinctive terms is there."""
    from rag.tokenizer import TextTokenizer

    index = open_index(sample_index[0], gpu="off")
    vocabulary = set(json.loads((index.root / "bm25" / "vocab.index.json").read_text(encoding="utf-8")))
    tokenizer = TextTokenizer.from_settings(index.tokenizer_settings)
    distinctive = {value: [t for t in tokenizer.tokens(value) if len(t) >= 4 or t.isdigit()] for value in VALUES}
    def found(terms_of_corpus: set[str]) -> list[str]:
        return [value for value, terms in distinctive.items() if terms and all(t in terms_of_corpus for t in terms)]

    raw = " ".join(p.read_text(encoding="utf-8") for p in (SAMPLE_CORPUS / "tickets").iterdir())
    assert found(set(tokenizer.tokens(raw))) == VALUES  # the check can fail: unredacted, every value would be found
    assert found(vocabulary) == []


def test_no_planted_value_in_the_ingest_output(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", "RAG_EMBEDDING__BACKEND": "hash",
           "RAG_EMBEDDING__MODEL": "hash-64"}
    run = subprocess.run([sys.executable, "-c", "from rag.cli import main; main()", "ingest",
                          str(SAMPLE_CORPUS / "tickets"), "--index", str(tmp_path / "index"),
                          "--report", str(tmp_path / "report.json")],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "PII redacted" in run.stderr
    assert leaked(run.stdout + run.stderr + (tmp_path / "report.json").read_text()) == []


def test_answers_quote_only_redacted_text(sample_index: tuple[Path, IngestReport], shipped: object) -> None:
    index = open_index(sample_index[0], gpu="off")
    retriever = HybridRetriever.over(index, embedder=shipped)  # type: ignore[arg-type]
    llm = ScriptedLLM()
    pipeline = RagPipeline(retriever=retriever, llm=llm, prompt=prompts.load("answer"),
                           index_version=index.version, max_top_k=20)
    questions = ["My Volt 300 arrived with a cracked case, what now?", "Can I get a refund to my card?",
                 "Where do you ship my replacement?", "What is the phone number of the customer?",
                 "What is my order number?", "Who wrote this ticket?"]
    for question in questions:
        answer = asyncio.run(pipeline.ask(question, top_k=20))
        prompt = "".join(message.content for message in llm.calls[-1])  # what the model was shown
        shown = answer.answer + json.dumps([c.snippet for c in answer.citations]) + prompt
        assert "Customer:" in prompt
        assert leaked(shown) == [], question
