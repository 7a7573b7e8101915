"""Shared fixtures: a tiny hash-embedded index for fast tests, the real sample index for slow ones,
a scripted OpenAI-compatible server, and a real uvicorn server on localhost."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from fastapi import FastAPI

from rag.embedders import HashEmbedder
from rag.testing import ScriptedOpenAIServer

if TYPE_CHECKING:
    from ingest.job import IngestJob

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = REPO / "samples" / "corpus"
SAMPLE_SUITE = REPO / "eval" / "suites" / "sample.jsonl"

TINY_CORPUS = {
    "policies/returns.md": "# Returns policy\n\nEffective date: 2025-04-01.\n\n## Return window\n\n"
    "You can return most items within 45 days of delivery. Opened electronics carry a 15% restocking fee.\n",
    "policies/shipping.txt": "Shipping policy\n\nStandard shipping takes 3 to 5 business days. "
    "Orders over $75 ship free within the contiguous United States.\n",
    "docs/aurora.md": "# Aurora X2 headlamp\n\nThe Aurora X2 gives 650 lumens and is rated IPX7. "
    "It charges over USB-C in about 4 hours.\n",
    "tickets/tickets.jsonl": '{"ticket_id": "T-1", "status": "resolved", "subject": "Kettle will not turn on", '
    '"customer_message": "My BrewPoint kettle does not heat.", "agent_resolution": "Reset by holding the '
    'power button for 10 seconds; it heats again.", "product": "BrewPoint"}\n'
    '{"ticket_id": "T-2", "status": "open", "subject": "Where is my order", '
    '"customer_message": "Still waiting.", "agent_resolution": "", "product": ""}\n',
}


def write_corpus(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def roots_of(corpus: Path) -> list[Path]:
    """A corpus folder's sub-folders (docs, policies, tickets) as roots: ids stay `docs/...`."""
    return sorted(p for p in corpus.iterdir() if p.is_dir())


def make_job(index_dir: Path, *, embedder: object | None = None, chunk_tokens: int = 64, **options: object) -> IngestJob:
    """An ingestion job with real unstructured; a hash embedder unless one is given; no PII redactor."""
    from ingest.chunking import StructureAwareChunker
    from ingest.job import IngestJob
    from rag.protocols import Embedder

    model = embedder if embedder is not None else HashEmbedder()
    assert isinstance(model, Embedder)
    chunker = StructureAwareChunker(count_tokens=model.count_tokens, chunk_tokens=chunk_tokens,
                                    overlap_tokens=min(8 if chunk_tokens == 64 else 24, chunk_tokens - 1))
    return IngestJob(embedder=model, chunker=chunker, index_dir=index_dir, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus ingested with real unstructured and a hash embedder (fast)."""
    root = tmp_path_factory.mktemp("tiny")
    corpus = write_corpus(root / "corpus", TINY_CORPUS)
    make_job(root / "index").run(roots_of(corpus))
    return root / "index"


@pytest.fixture()
def llm_server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve `app` with a real uvicorn on localhost; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def minilm() -> object:
    """The real all-MiniLM-L6-v2, loaded once per test session."""
    from rag.embedders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def shipped() -> object:
    """The embedder the service ships with (EmbeddingSettings' defaults: OpenVINO int8 of all-MiniLM-L6-v2),
    exported into the user's cache as `rag ingest` would do it, loaded once per test session."""
    from rag.registry import create_embedder
    from rag.settings import EmbeddingSettings

    options = EmbeddingSettings()
    embedder = create_embedder(options.backend, model=options.model, precision=options.precision,
                               batch_size=options.batch_size, cache_dir=options.cache_dir.expanduser())
    embedder.load()  # type: ignore[attr-defined]
    return embedder


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, shipped: object) -> tuple[Path, object]:
    """The bundled sample corpus ingested as the CLI does it: the shipped embedder, unstructured, Presidio, FAISS."""
    from ingest.cli import build_redactor
    from rag.settings import Settings

    index_dir = tmp_path_factory.mktemp("sample") / "index"
    job = make_job(index_dir, embedder=shipped, chunk_tokens=160, redactor=build_redactor(Settings()))
    report = job.run(roots_of(SAMPLE_CORPUS))
    return index_dir, report
