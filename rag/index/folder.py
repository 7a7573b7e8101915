"""An index folder: numbered-by-time versions, one of them current, switched atomically.

    <index_dir>/
        CURRENT                 the id of the current version (one line), replaced by one rename
        versions/<id>/          one complete index:
            manifest.json       embedding model, chunker, parser, counts, parent version
            vectors.faiss       the exact CPU FAISS index (ID-mapped inner product): the source of truth
            vectors.ann.faiss   the approximate search index (HNSW or IVF), when the version has one (see
                                `rag.index.faiss_index`; the manifest's "search_index" describes it)
            chunks.sqlite3      chunk text, metadata and BM25 terms by id, and the files they came from
            bm25/               the BM25 index over the same chunks (see `rag.index.bm25_index`)
        versions/.staging-*     a version being written (a crashed run leaves one; the next run removes it)
        ingest.lock             held (flock) by the ingestion or rollback that is changing the folder

A version is never modified once CURRENT names it: a run writes a new one beside it and
switches CURRENT at the very end, so a crash at any moment (SIGKILL included) leaves the
current version intact, and readers (a running API server) never see a half-written index.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rag.errors import IndexCorruptError, IndexLockedError, IndexNotFoundError, InputError
from rag.index.bm25_index import Bm25Index
from rag.index.faiss_index import AnnOptions, FaissIndex, GpuMode
from rag.index.store import ChunkStore

__all__ = [
    "FORMAT_VERSION", "IndexFiles", "IndexFolder", "LoadedIndex", "VersionInfo", "open_index", "read_manifest",
]

FORMAT_VERSION = 3  # 3: adds bm25/ and the terms table


@dataclass(frozen=True, slots=True)
class IndexFiles:
    """The file names inside one version folder."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def vectors(self) -> Path:
        return self.root / "vectors.faiss"

    @property
    def ann_vectors(self) -> Path:
        return self.root / "vectors.ann.faiss"

    @property
    def chunks(self) -> Path:
        return self.root / "chunks.sqlite3"

    @property
    def bm25(self) -> Path:
        return self.root / "bm25"


@dataclass(frozen=True, slots=True)
class VersionInfo:
    """One version as `rag index list` shows it."""

    id: str
    created_at: str
    chunks: int
    documents: int
    parent: str | None
    current: bool


@dataclass(slots=True)
class LoadedIndex:
    """An opened index version, ready to search."""

    root: Path
    manifest: dict[str, Any]
    vectors: FaissIndex
    store: ChunkStore
    lexical: Bm25Index

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def embedding_model(self) -> str:
        return str(self.manifest["embedding"]["model"])

    @property
    def search_index(self) -> dict[str, Any]:
        """The manifest's description of the search index ({"kind": "flat"} for versions without one)."""
        return dict(self.manifest.get("search_index") or {"kind": "flat"})

    @property
    def tokenizer_settings(self) -> dict[str, Any]:
        """How the BM25 terms were made; queries must be tokenised the same way."""
        return dict(self.manifest["lexical"]["tokenizer"])

    def close(self) -> None:
        self.store.close()


class IndexFolder:
    """The versions of one index and the pointer to the current one."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def _pointer(self) -> Path:
        return self.root / "CURRENT"

    def current(self) -> str | None:
        """The current version id, or None when nothing was ingested yet."""
        try:
            text = self._pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorruptError(f"cannot read {self._pointer}: {exc}") from exc
        return text or None

    def path_of(self, version: str) -> Path:
        return self.versions_dir / version

    def versions(self) -> list[VersionInfo]:
        """Every complete version, oldest first."""
        current = self.current()
        found = []
        for folder in self.versions_dir.iterdir() if self.versions_dir.is_dir() else ():
            if folder.name.startswith(".") or not IndexFiles(folder).manifest.exists():
                continue
            try:
                manifest = read_manifest(IndexFiles(folder).manifest)
            except IndexCorruptError:
                continue
            counts = manifest.get("counts", {})
            found.append(VersionInfo(
                id=folder.name, created_at=str(manifest.get("created_at", "")), chunks=int(counts.get("chunks", 0)),
                documents=int(counts.get("documents", 0)), parent=manifest.get("parent"), current=folder.name == current,
            ))
        return sorted(found, key=lambda v: (v.created_at, v.id))

    def new_version_id(self) -> str:
        """A sortable, unique id: creation time to the microsecond."""
        return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh folder to write a version into; removed unless `publish` moved it away."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.versions_dir))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def remove_stale_staging(self) -> int:
        """Remove staging folders left by crashed runs; call only while holding the lock."""
        stale = [p for p in self.versions_dir.glob(".staging-*")] if self.versions_dir.is_dir() else []
        for path in stale:
            shutil.rmtree(path, ignore_errors=True)
        return len(stale)

    def publish(self, staging: Path, version: str) -> Path:
        """Make a fully written staging folder the current version (durable, then one rename)."""
        for name in os.listdir(staging):
            _fsync_file(staging / name)
        target = self.path_of(version)
        os.replace(staging, target)
        _fsync_dir(self.versions_dir)
        self.switch(version)
        return target

    def switch(self, version: str, *, verify: bool = False) -> None:
        """Point CURRENT at an existing version with one atomic rename (`verify`: open it first)."""
        if not IndexFiles(self.path_of(version)).manifest.exists():
            raise IndexNotFoundError(f"no version {version!r} in {self.root}: see `rag index list --index {self.root}`")
        if verify:
            open_index(self.path_of(version), gpu="off").close()
        temporary = self.root / f".CURRENT.{os.getpid()}"
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(version + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._pointer)
        _fsync_dir(self.root)

    def prune(self, keep: int) -> list[str]:
        """Delete all but the current version and the `keep` newest others; returns what went."""
        others = [v for v in self.versions() if not v.current]
        doomed = others[: max(0, len(others) - keep)]
        for version in doomed:
            shutil.rmtree(self.path_of(version.id), ignore_errors=True)
        return [v.id for v in doomed]

    def rollback(self, version: str | None = None, *, wait_s: float = 0.0) -> tuple[str | None, str]:
        """Make `version` (default: the previous one) current again, under the folder's lock, after opening it
        to check it is whole; returns (the version before, the version now)."""
        with self.lock(wait_s=wait_s, purpose="rollback"):
            before = self.current()
            target = version or self.previous()
            if target is None:
                raise IndexNotFoundError(f"nothing to roll back to: no kept version of {self.root} is older than "
                                         f"{before}; name one (see `rag index list`)")
            if target == before:
                raise InputError(f"{target} is already the current version")
            self.switch(target, verify=True)
            return before, target

    def previous(self) -> str | None:
        """The version CURRENT pointed at before the current one (its parent), if it is still kept."""
        current = self.current()
        versions = {v.id: v for v in self.versions()}
        if current is None or current not in versions:
            return None
        parent = versions[current].parent
        if parent in versions:
            return parent
        older = [v.id for v in versions.values() if v.id < current]
        return older[-1] if older else None

    @contextlib.contextmanager
    def lock(self, *, wait_s: float = 0.0, purpose: str = "ingestion") -> Iterator[None]:
        """Exclusive right to change this folder; released when the process ends, however it ends."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / "ingest.lock"
        with path.open("a+", encoding="utf-8") as handle:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        handle.seek(0)
                        holder = handle.read().strip() or "another process"
                        raise IndexLockedError(
                            f"{self.root} is locked by {holder}: wait for it to finish, or pass --wait SECONDS"
                        ) from None
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"{purpose} (pid {os.getpid()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)\n")
            handle.flush()
            try:
                yield
            finally:
                handle.seek(0)
                handle.truncate()
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def resolve_version_dir(root: Path) -> Path:
    """`root` itself when it is a version folder, else the current version of the index folder."""
    version = IndexFolder(root).current()
    if version is None and IndexFiles(root).manifest.exists():
        return root
    if version is None:
        raise IndexNotFoundError(f"index not found at {root}: run `rag ingest PATH --index {root}`")
    path = IndexFolder(root).path_of(version)
    if not path.is_dir():
        raise IndexCorruptError(f"{root}/CURRENT names version {version}, which is missing: `rag index rollback`")
    return path


def open_index(root: Path, *, gpu: GpuMode = "auto", ann: AnnOptions | None = None) -> LoadedIndex:
    """Open and cross-check the current version of an index folder (or one version folder).

    A version with an approximate search index is searched through it, with `ann`'s search-time options
    (ef_search, nprobe, refine, exact_below); `ann.kind == "flat"` searches the exact index instead.
    """
    path = resolve_version_dir(root)
    files = IndexFiles(path)
    manifest = read_manifest(files.manifest)
    approximate = (manifest.get("search_index") or {}).get("kind", "flat") != "flat"
    if approximate and not files.ann_vectors.exists():
        raise IndexCorruptError(f"index at {path}: the manifest names a search index {files.ann_vectors.name} that "
                                "is missing. Roll back with `rag index rollback` or rebuild with `rag ingest --full`")
    use_ann = approximate and (ann is None or ann.kind != "flat")
    vectors = FaissIndex.load(files.vectors, gpu=gpu, ann_path=files.ann_vectors if use_ann else None, options=ann)
    lexical = Bm25Index.load(files.bm25)
    store = ChunkStore(files.chunks)
    expected, stored = manifest["counts"]["chunks"], len(store)
    if not len(vectors) == stored == len(lexical) == expected:
        store.close()
        raise IndexCorruptError(
            f"index at {path} is inconsistent: manifest says {expected} chunks, FAISS has "
            f"{len(vectors)}, BM25 {len(lexical)}, the chunk store {stored}. Roll back with "
            "`rag index rollback` or rebuild with `rag ingest --full`"
        )
    if vectors.dimension != manifest["embedding"]["dimension"]:
        store.close()
        raise IndexCorruptError(f"index at {path}: FAISS dimension disagrees with the manifest; rebuild it")
    return LoadedIndex(path, manifest, vectors, store, lexical)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"cannot read {path}: {exc}. Rebuild the index with `rag ingest --full`") from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path} has format version {manifest.get('format_version')}, this build reads "
            f"{FORMAT_VERSION}: rebuild the index with `rag ingest --full`"
        )
    return manifest


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
