"""An index folder: FAISS vectors, the chunk store and a manifest that describes them.

    <index_dir>/
        manifest.json     embedding model, dimension, chunker, parser, counts, version
        vectors.faiss     the CPU FAISS index (ID-mapped inner product)
        chunks.sqlite3    chunk text and metadata by id

A new index is written in a sibling temporary folder and moved into place at the end, so a
failed run never leaves a half-written index where a good one was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index.faiss_index import FaissIndex, GpuMode
from rag.index.store import ChunkStore

__all__ = ["FORMAT_VERSION", "IndexFiles", "LoadedIndex", "open_index", "replace_index_dir"]

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class IndexFiles:
    """The file names inside an index folder."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def vectors(self) -> Path:
        return self.root / "vectors.faiss"

    @property
    def chunks(self) -> Path:
        return self.root / "chunks.sqlite3"


@dataclass(slots=True)
class LoadedIndex:
    """An opened index folder, ready to search."""

    root: Path
    manifest: dict[str, Any]
    vectors: FaissIndex
    store: ChunkStore

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def embedding_model(self) -> str:
        return str(self.manifest["embedding"]["model"])

    def close(self) -> None:
        self.store.close()


def open_index(root: Path, *, gpu: GpuMode = "auto") -> LoadedIndex:
    """Open and cross-check an index folder written by `rag ingest`."""
    files = IndexFiles(root)
    if not files.manifest.exists():
        raise IndexNotFoundError(f"index not found at {root}: run `rag ingest PATH --index {root}`")
    manifest = _read_manifest(files.manifest)
    vectors = FaissIndex.load(files.vectors, gpu=gpu)
    store = ChunkStore(files.chunks)
    expected = manifest["counts"]["chunks"]
    if len(vectors) != expected or len(store) != expected:
        store.close()
        raise IndexCorruptError(
            f"index at {root} is inconsistent: manifest says {expected} chunks, FAISS has "
            f"{len(vectors)}, the chunk store {len(store)}. Rebuild it with `rag ingest`"
        )
    if vectors.dimension != manifest["embedding"]["dimension"]:
        store.close()
        raise IndexCorruptError(f"index at {root}: FAISS dimension disagrees with the manifest; rebuild it")
    return LoadedIndex(root, manifest, vectors, store)


def replace_index_dir(staging: Path, target: Path) -> None:
    """Move a fully written staging folder onto `target`, keeping the old one until the move."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, retired / "index")
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"cannot read {path}: {exc}. Rebuild the index with `rag ingest`") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path} has format version {manifest.get('format_version')}, this build reads "
            f"{FORMAT_VERSION}: rebuild the index with `rag ingest --full`"
        )
    return manifest
