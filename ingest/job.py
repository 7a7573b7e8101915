"""The ingestion job: corpus folder -> documents -> chunks -> vectors -> index folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import StructureAwareChunker
from ingest.documents import SourceDocument
from ingest.sources import SourceFile, discover
from ingest.unstructured_loader import SUPPORTED_SUFFIXES, parser_version
from rag.errors import IngestError, RagError
from rag.index import ChunkStore, FaissIndex, IndexFiles, replace_index_dir
from rag.index.faiss_index import GpuMode
from rag.index.folder import FORMAT_VERSION
from rag.protocols import Embedder
from rag.types import Chunk, DocType

__all__ = ["IngestJob", "IngestReport", "Progress"]

Progress = Callable[[str, int, int], None]
"""Called as (stage, done, total) while the job runs."""


@dataclass(slots=True)
class IngestReport:
    """What a run did: counts, time, and every file it skipped or could not parse."""

    index_dir: Path
    version: str = ""
    files: int = 0
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0
    by_format: Counter[str] = field(default_factory=Counter)
    by_doc_type: Counter[str] = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


class IngestJob:
    """Builds a complete index folder from one or more corpus roots."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        chunker: StructureAwareChunker,
        index_dir: Path,
        gpu: GpuMode = "auto",
        batch_size: int = 64,
        include_unresolved_tickets: bool = False,
        progress: Progress | None = None,
    ) -> None:
        self._embedder = embedder
        self._chunker = chunker
        self._index_dir = index_dir
        self._gpu = gpu
        self._batch_size = batch_size
        self._include_unresolved = include_unresolved_tickets
        self._progress = progress or (lambda stage, done, total: None)

    def run(self, roots: Sequence[Path], *, doc_type: DocType | None = None) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(index_dir=self._index_dir)
        files = self._discover(roots, doc_type, report)
        documents = self._load(files, report)
        chunks = self._chunk(documents)
        if not chunks:
            raise IngestError(
                f"no text found in {', '.join(map(str, roots))}: supported files are "
                f"{', '.join(SUPPORTED_SUFFIXES)} and ticket exports (.jsonl, .csv)"
            )
        tick = time.perf_counter()
        vectors = self._embed(chunks)
        report.timings_s["embed"] = time.perf_counter() - tick
        report.chunks, report.documents = len(chunks), len(documents)
        report.by_doc_type.update(d.doc_type for d in documents)
        report.version = self._write(chunks, vectors, report)
        report.seconds = time.perf_counter() - started
        return report

    def _discover(self, roots: Sequence[Path], doc_type: DocType | None, report: IngestReport) -> list[SourceFile]:
        files: list[SourceFile] = []
        for root in roots:
            if not root.exists():
                raise IngestError(f"corpus path {root} does not exist: pass a folder or file to ingest")
            for item in discover(root, doc_type=doc_type, include_unresolved_tickets=self._include_unresolved):
                if item.loader is None:
                    report.skipped.append((item.source, item.skip_reason))
                else:
                    files.append(item)
        report.files = len(files)
        return files

    def _load(self, files: list[SourceFile], report: IngestReport) -> list[SourceDocument]:
        documents: list[SourceDocument] = []
        tick = time.perf_counter()
        for done, item in enumerate(files, start=1):
            assert item.loader is not None
            try:
                loaded = item.loader.load(item.path, source=item.source, doc_type=item.doc_type)
            except RagError as exc:
                report.failed.append((item.source, str(exc)))
                continue
            if loaded.documents:
                documents.extend(loaded.documents)
                report.by_format[item.path.suffix.lower().lstrip(".")] += 1
            else:
                report.skipped.append((item.source, "no text in file"))
            self._progress("parse", done, len(files))
        report.timings_s["parse"] = time.perf_counter() - tick
        return documents

    def _chunk(self, documents: list[SourceDocument]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for document in documents:
            for piece in self._chunker.split(document):
                chunks.append(Chunk(
                    id=len(chunks), text=piece.text, source=document.source, title=document.title,
                    doc_type=document.doc_type, language=document.language, section=piece.section,
                    page=piece.page, metadata=document.metadata,
                ))
        return chunks

    def _embed(self, chunks: list[Chunk]) -> Any:
        parts = []
        for start in range(0, len(chunks), self._batch_size):
            batch = chunks[start : start + self._batch_size]
            parts.append(self._embedder.embed_documents([c.text for c in batch]))
            self._progress("embed", start + len(batch), len(chunks))
        return np.vstack(parts)

    def _write(self, chunks: list[Chunk], vectors: Any, report: IngestReport) -> str:
        self._index_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self._index_dir.name}.new-", dir=self._index_dir.parent))
        try:
            manifest = self._write_files(IndexFiles(staging), chunks, vectors, report)
            replace_index_dir(staging, self._index_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(manifest["version"])

    def _write_files(self, files: IndexFiles, chunks: list[Chunk], vectors: Any, report: IngestReport) -> dict[str, Any]:
        index = FaissIndex(dimension=self._embedder.dimension, gpu=self._gpu)
        index.add([c.id for c in chunks], vectors)
        index.save(files.vectors)
        store = ChunkStore(files.chunks, create=True)
        store.add(chunks)
        store.close()
        manifest = self._manifest(chunks, report)
        files.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        return manifest

    def _manifest(self, chunks: list[Chunk], report: IngestReport) -> dict[str, Any]:
        created = datetime.now(UTC)
        digest = hashlib.sha256("\0".join(c.source + c.text for c in chunks).encode()).hexdigest()
        return {
            "format_version": FORMAT_VERSION,
            "version": f"{created:%Y%m%dT%H%M%SZ}-{digest[:8]}",
            "created_at": created.isoformat(timespec="seconds"),
            "embedding": {"model": self._embedder.name, "dimension": self._embedder.dimension,
                          "max_tokens": self._embedder.max_tokens},
            "chunking": self._chunker.settings,
            "parser": parser_version(),
            "counts": {"files": report.files, "documents": len({c.source for c in chunks}),
                       "chunks": len(chunks), "by_doc_type": dict(Counter(c.doc_type for c in chunks)),
                       "by_format": dict(report.by_format)},
            "skipped": [list(item) for item in report.skipped],
            "failed": [list(item) for item in report.failed],
        }
