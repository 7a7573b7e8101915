"""The ingestion job: corpus roots -> plan -> parse, redact, chunk, embed -> a new index version.

A run is incremental. Every source file is remembered in the index with its content hash and
the "recipe" that turned it into chunks (loader version, doc type, declared metadata,
redaction settings). The next run compares and only re-processes what differs:

    added       new file                       parsed, chunked, embedded
    changed     other content or recipe        its chunks replaced (unchanged chunk texts keep their vectors)
    removed     gone from a root of this run   its chunks deleted
    unchanged                                  nothing at all

The result is written as a new version beside the current one and published with one
atomic switch at the end (see `rag.index.folder`); an unchanged corpus publishes nothing.
A file that fails to parse keeps its previous chunks. Corpus-wide metadata (which policy
supersedes which, near-duplicate ticket groups) is recomputed over the whole new version.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ingest.chunking import StructureAwareChunker
from ingest.dedup import near_duplicate_groups
from ingest.distributed import Executor, FileParse, LocalExecutor, ParseTask, ParseTools, text_digest
from ingest.documents import SourceDocument
from ingest.metadata import declared_metadata, resolve_policy_versions
from ingest.report import Change, IngestReport
from ingest.sources import CorpusRoot, SourceFile, discover, file_sha256
from ingest.unstructured_loader import SUPPORTED_SUFFIXES
from rag.errors import ConfigError, IndexCorruptError, IndexNotFoundError, IngestError, RagError
from rag.index import AnnOptions, Bm25Index, ChunkStore, FaissIndex, IndexFiles, IndexFolder, LoadedIndex, open_index
from rag.index.faiss_index import GpuMode
from rag.index.folder import FORMAT_VERSION
from rag.protocols import Embedder, Vectors
from rag.tokenizer import TextTokenizer
from rag.types import Chunk, DocType

__all__ = ["IngestJob", "Progress", "Redactor"]

Progress = Callable[[str, int, int], None]
"""Called as (stage, done, total) while the job runs."""


class Redactor(Protocol):
    """Removes personal data from a document before anything of it is embedded or stored."""

    @property
    def settings(self) -> dict[str, Any]: ...

    def redact_document(self, document: SourceDocument) -> tuple[SourceDocument, Counter[str]]: ...


@dataclass(slots=True)
class _Planned:
    """A source file with its hash, recipe and what the plan does with it."""

    item: SourceFile
    sha256: str
    size: int
    recipe: dict[str, Any]
    change: Change
    declared: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Parsed:
    """A re-processed file's chunks (ids not yet assigned) and its record for the files table."""

    planned: _Planned
    chunks: list[Chunk]
    documents: dict[str, str]


class IngestJob:
    """Brings an index folder up to date with one or more corpus roots, as a new version."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        chunker: StructureAwareChunker,
        index_dir: Path,
        gpu: GpuMode = "auto",
        ann: AnnOptions | None = None,
        batch_size: int = 64,
        include_unresolved_tickets: bool = False,
        redactor: Redactor | None = None,
        redact_doc_types: Sequence[DocType] = ("ticket",),
        dedup_threshold: float = 0.8,
        tokenizer: TextTokenizer | None = None,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        max_file_mb: float = 50.0,
        keep_versions: int = 3,
        lock_wait_s: float = 0.0,
        today: date | None = None,
        progress: Progress | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._embedder = embedder
        self._folder = IndexFolder(index_dir)
        self._gpu = gpu
        self._ann = ann or AnnOptions()  # the search index each version gets (flat, HNSW or IVF)
        self._batch_size = batch_size
        self._include_unresolved = include_unresolved_tickets
        self._dedup_threshold = dedup_threshold
        self._tokenizer = tokenizer or TextTokenizer()
        self._bm25 = {"k1": bm25_k1, "b": bm25_b}
        self._max_bytes = int(max_file_mb * 1_000_000)
        self._keep_versions = keep_versions
        self._lock_wait_s = lock_wait_s
        self._today = today
        self._progress = progress or (lambda stage, done, total: None)
        self._tools = ParseTools(chunker, redactor, frozenset(redact_doc_types))  # what parsing needs, in one place
        self._executor = executor or LocalExecutor()  # or a RayExecutor: parse and embed fan out over workers

    # -- the run ---------------------------------------------------------------------------

    def run(
        self, roots: Sequence[CorpusRoot | Path], *, full: bool = False, dry_run: bool = False,
        allow_empty: bool = False,
    ) -> IngestReport:
        """Plan, then (unless `dry_run`) carry the plan out and publish a new version."""
        started = time.perf_counter()
        corpus = [root if isinstance(root, CorpusRoot) else CorpusRoot(root) for root in roots]
        _check_roots(corpus)
        report = IngestReport(index_dir=self._folder.root, dry_run=dry_run)
        if dry_run:
            with self._base(full=full) as base:
                self._plan(corpus, base, report, full=full, allow_empty=allow_empty)
                report.version = base.version if base else ""
        else:
            with self._folder.lock(wait_s=self._lock_wait_s), self._base(full=full) as base:
                self._folder.remove_stale_staging()
                planned = self._plan(corpus, base, report, full=full, allow_empty=allow_empty)
                self._execute(planned, base, report, full=full)
        report.seconds = time.perf_counter() - started
        return report

    @contextmanager
    def _base(self, *, full: bool) -> Iterator[LoadedIndex | None]:
        """The current version, opened read-only on the CPU; None when there is none, when it has
        an older format, or (with --full, the fix its errors suggest) when it cannot be opened:
        every file is then re-processed into a new version."""
        current = self._folder.current()
        if current is None or _older_format(IndexFiles(self._folder.path_of(current)).manifest):
            yield None
            return
        try:
            base = open_index(self._folder.root, gpu="off")
        except (IndexCorruptError, IndexNotFoundError):
            if not full:
                raise
            yield None
            return
        try:
            yield base
        finally:
            base.close()

    # -- planning --------------------------------------------------------------------------

    def _plan(
        self, roots: list[CorpusRoot], base: LoadedIndex | None, report: IngestReport, *, full: bool,
        allow_empty: bool,
    ) -> list[_Planned]:
        tick = time.perf_counter()
        known = base.store.files() if base else {}
        reason = self._global_change(base)
        if reason and base:
            others = sorted({record["root"] for source, record in known.items()
                             if not any(root.owns(source) for root in roots)})
            if others:
                raise ConfigError(
                    f"{reason}: every file must be re-embedded, but this run does not include the roots "
                    f"{', '.join(others)} that the index also holds. Ingest all roots in one run, or use a "
                    "new --index"
                )
        found = [item for root in roots for item in discover(
            root, include_unresolved_tickets=self._include_unresolved, max_bytes=self._max_bytes)]
        planned: list[_Planned] = []
        for done, item in enumerate(found, start=1):
            self._progress("scan", done, len(found))
            if item.loader is None:
                report.skipped.append((item.source, item.skip_reason))
                continue
            try:
                declared = declared_metadata(item.path, item.root.folder)
            except RagError as exc:
                report.failed.append((item.source, str(exc)))
                continue
            recipe = self._recipe(item, declared)
            sha = file_sha256(item.path)
            old = known.get(item.source)
            change = _change(item.source, old, sha, recipe, reason or ("--full" if full else ""))
            planned.append(_Planned(item, sha, item.path.stat().st_size, recipe, change, declared))
        seen = {item.source for item in found}
        removed = sorted(source for source in known if source not in seen and any(r.owns(source) for r in roots))
        _guard_empty_roots(roots, found, removed, allow_empty)
        report.plan = [p.change for p in planned] + [Change("removed", source) for source in removed]
        report.previous_version = base.version if base else None
        report.timings_s["scan"] = time.perf_counter() - tick
        return planned

    def _global_change(self, base: LoadedIndex | None) -> str:
        """Why every file must be re-processed (embedding model or chunking changed), or ''."""
        if base is None:
            return ""
        embedding = base.manifest["embedding"]
        if embedding["model"] != self._embedder.name or embedding["dimension"] != self._embedder.dimension:
            return f"embedding model changed ({embedding['model']} -> {self._embedder.name})"
        if base.manifest.get("chunking") != self._tools.chunker.settings:
            return "chunking settings changed"
        return ""

    def _recipe(self, item: SourceFile, declared: dict[str, Any]) -> dict[str, Any]:
        """Everything besides the file's bytes that decides its chunks."""
        assert item.loader is not None
        recipe: dict[str, Any] = {"loader": item.loader.version, "doc_type": item.doc_type,
                                  "metadata": text_digest(json.dumps(declared, sort_keys=True, default=str))}
        if item.doc_type in self._tools.redact_types and self._tools.redactor is not None:
            recipe["redaction"] = self._tools.redactor.settings
        if item.doc_type == "ticket":
            recipe["include_unresolved"] = self._include_unresolved
        return recipe

    # -- execution -------------------------------------------------------------------------

    def _execute(self, planned: list[_Planned], base: LoadedIndex | None, report: IngestReport, *, full: bool) -> None:
        parsed = self._parse([p for p in planned if p.change.kind in ("added", "changed")], report)
        left_out = {source for source, _ in report.failed + report.skipped}
        report.plan = [c for c in report.plan if c.source not in left_out]  # they are listed with their reasons
        removed = [c.source for c in report.plan if c.kind == "removed"]
        if base is not None and not parsed and not removed and base.manifest["lexical"] == self._lexical() and (
                self._ann.is_current(base.search_index, len(base.vectors), self._embedder.dimension)) and not (
                self._derived_updates(base.store, base.vectors, report=None)):
            report.version = base.version
            report.documents["unchanged"] = sum(len(r["documents"]) for r in base.store.files().values())
            self._fill_counts(base.store, report)
            return
        if not parsed and base is None:
            raise IngestError(
                "no text found in the given paths: supported files are "
                f"{', '.join(SUPPORTED_SUFFIXES)} and ticket exports (.jsonl, .csv)"
            )
        with self._folder.staging() as staging:
            version = self._build(staging, parsed, removed, base, report, reuse=not full)
            self._folder.publish(staging, version)
        report.version, report.published = version, True
        report.pruned = self._folder.prune(self._keep_versions)

    def _parse(self, planned: list[_Planned], report: IngestReport) -> list[_Parsed]:
        """Parse, redact and chunk the files on the executor; fold the results in, in plan order."""
        tick = time.perf_counter()
        results: list[_Parsed] = []
        outcomes = self._executor.parse([ParseTask(item.item, item.declared) for item in planned], self._tools)
        for done, (item, outcome) in enumerate(zip(planned, outcomes, strict=True), start=1):
            self._progress("parse", done, len(planned))
            parsed = self._fold(item, outcome, report)
            if parsed is not None:
                results.append(parsed)
        report.timings_s["parse"] = time.perf_counter() - tick
        return results

    def _fold(self, item: _Planned, outcome: FileParse, report: IngestReport) -> _Parsed | None:
        """One file's outcome into the report; its chunks, or None when it failed or had no text."""
        kept = " (its previous version stays indexed)" if item.change.kind == "changed" else ""
        if outcome.error is not None:
            report.failed.append((outcome.source, f"{outcome.error}{kept}"))
            return None
        report.skipped_records.extend(outcome.skipped_records)
        report.redactions.update(outcome.redactions)
        if outcome.redact_s is not None:
            report.timings_s["redact"] = report.timings_s.get("redact", 0.0) + outcome.redact_s
        if not outcome.documents:
            report.skipped.append((outcome.source, f"no text in file{kept}"))
            return None
        report.by_format[item.item.path.suffix.lower().lstrip(".")] += 1
        return _Parsed(item, outcome.chunks, outcome.documents)

    def _build(
        self, staging: Path, parsed: list[_Parsed], removed: list[str], base: LoadedIndex | None,
        report: IngestReport, *, reuse: bool,
    ) -> str:
        """Write the new version into `staging`: the base version minus what went, plus what came."""
        tick = time.perf_counter()
        files = IndexFiles(staging)
        compatible = base is not None and not self._global_change(base)
        if base is not None and compatible:
            base.store.copy_to(files.chunks)
            vectors = base.vectors.copy()
        else:
            vectors = FaissIndex(dimension=self._embedder.dimension, gpu="off")
        store = ChunkStore(files.chunks, create=True)
        try:
            known = store.files()
            replaced = [p.planned.item.source for p in parsed if p.planned.item.source in known]
            old_ids = [i for source in replaced + removed for i in known[source]["chunk_ids"]]
            cache = _vector_cache(store, vectors, old_ids) if reuse and compatible else {}
            self._document_changes(parsed, removed, known, report)
            vectors.remove(old_ids)
            store.remove(old_ids)
            for source in removed:
                store.drop_file(source)
            report.chunks_removed = len(old_ids)
            next_id = max(store.max_id() + 1, int(base.manifest.get("next_chunk_id", 0)) if base else 0)
            report.timings_s["write"] = time.perf_counter() - tick
            next_id = self._add(parsed, store, vectors, cache, next_id, report)
            tick = time.perf_counter()
            self._derived_updates(store, vectors, report=report)
            search_index = vectors.save(files.vectors, ann_path=files.ann_vectors, options=self._ann)
            self._index_terms(store, files.bm25, fresh=base is None or base.manifest["lexical"] != self._lexical())
            version = self._folder.new_version_id()
            manifest = {**self._manifest(version, base, store, next_id), "search_index": search_index}
            files.manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
            self._fill_counts(store, report)
        finally:
            store.close()
        report.timings_s["write"] += time.perf_counter() - tick
        return version

    def _add(
        self, parsed: list[_Parsed], store: ChunkStore, vectors: FaissIndex, cache: dict[str, Vectors],
        next_id: int, report: IngestReport,
    ) -> int:
        """Give new chunks ids, embed the texts not seen before, and store chunks, vectors and file records."""
        pending = [chunk for p in parsed for chunk in p.chunks]
        keys = [text_digest(chunk.text) for chunk in pending]  # in `pending` order
        texts = sorted({key: c.text for c, key in zip(pending, keys, strict=True) if key not in cache}.items())
        tick = time.perf_counter()
        batches = [texts[start : start + self._batch_size] for start in range(0, len(texts), self._batch_size)]
        embedded = self._executor.embed([[text for _, text in batch] for batch in batches], self._embedder)
        for done, (batch, rows) in enumerate(zip(batches, embedded, strict=True)):
            for (key, _), row in zip(batch, rows, strict=True):
                cache[key] = row
            self._progress("embed", min(len(texts), (done + 1) * self._batch_size), len(texts))
        report.timings_s["embed"] = time.perf_counter() - tick
        fresh = {key for key, _ in texts}
        report.chunks_embedded = len(texts)
        report.chunks_reused = sum(1 for key in keys if key not in fresh)
        tick = time.perf_counter()
        now = datetime.now(UTC).isoformat(timespec="seconds")
        at = 0
        for p in parsed:
            chunks = [replace(chunk, id=next_id + n) for n, chunk in enumerate(p.chunks)]
            next_id += len(chunks)
            if chunks:
                vectors.add([c.id for c in chunks], np.vstack([cache[key] for key in keys[at : at + len(chunks)]]))
                store.add(chunks)
            at += len(chunks)
            item = p.planned.item
            store.put_file(item.source, {
                "root": item.root.name, "root_path": str(item.root.folder), "sha256": p.planned.sha256,
                "bytes": p.planned.size, "recipe": p.planned.recipe, "documents": p.documents,
                "chunk_ids": [c.id for c in chunks], "ingested_at": now,
            })
        report.chunks_added = sum(len(p.chunks) for p in parsed)
        report.timings_s["write"] += time.perf_counter() - tick
        return next_id

    def _document_changes(
        self, parsed: list[_Parsed], removed: list[str], known: dict[str, dict[str, Any]], report: IngestReport
    ) -> None:
        """Count documents (a ticket export holds many) added, changed, removed and unchanged."""
        touched = {p.planned.item.source for p in parsed} | set(removed)
        for source, record in known.items():
            if source not in touched:
                report.documents["unchanged"] += len(record["documents"])
        for source in removed:
            report.documents["removed"] += len(known[source]["documents"])
        for p in parsed:
            before: dict[str, str] = known.get(p.planned.item.source, {}).get("documents", {})
            for document, digest in p.documents.items():
                kind = "added" if document not in before else "unchanged" if before[document] == digest else "changed"
                report.documents[kind] += 1
            report.documents["removed"] += len(set(before) - set(p.documents))
        report.documents = +report.documents  # drop zero counts

    def _derived_updates(self, store: ChunkStore, vectors: FaissIndex, *, report: IngestReport | None) -> int:
        """Recompute corpus-wide metadata; apply it when a report is given. Returns documents updated.

        Near-duplicate tickets are found by the cosine of their mean chunk embeddings: paraphrases
        of one problem share few words, so a lexical measure cannot group them.
        """
        current: dict[str, dict[str, Any]] = {}
        tickets: dict[str, list[Chunk]] = defaultdict(list)
        for chunk in store.of_doc_type("policy") + store.of_doc_type("ticket"):
            current.setdefault(chunk.source, chunk.metadata)
            if chunk.doc_type == "ticket":
                tickets[chunk.source].append(chunk)
        updates: dict[str, dict[str, Any]] = {}
        policies = {s: m for s, m in current.items() if s not in tickets}
        for source, values in resolve_policy_versions(policies, self._today or date.today()).items():
            updates.setdefault(source, {}).update(values)
        order = sorted(tickets)
        means = np.vstack([vectors.vectors_of([c.id for c in tickets[s]]).mean(axis=0) for s in order]) if order else None
        groups = near_duplicate_groups([(s, "\n".join(c.text for c in tickets[s])) for s in order],
                                       threshold=self._dedup_threshold, vectors=means)
        sizes = Counter(groups.values())
        for source, group in groups.items():
            updates.setdefault(source, {}).update({"duplicate_group": group, "duplicates": sizes[group]})
        changed = {s: u for s, u in updates.items() if any(current[s].get(k) != v for k, v in u.items())}
        if report is not None:
            for source, values in changed.items():
                store.update_metadata(source, values)
            report.duplicates_collapsed = sum(size - 1 for size in sizes.values())
            report.superseded = sorted(s for s, m in policies.items() if {**m, **updates.get(s, {})}.get("superseded"))
        return len(changed)

    def _index_terms(self, store: ChunkStore, folder: Path, *, fresh: bool) -> None:
        """Tokenise the chunks that have no stored terms yet (all when tokenising changed), build BM25."""
        if fresh:
            store.clear_terms()
        pending = store.without_terms()
        for start in range(0, len(pending), 512):
            batch = pending[start : start + 512]
            store.put_terms((chunk_id, self._tokenizer.tokens(text)) for chunk_id, text in batch)
            self._progress("bm25", start + len(batch), len(pending))
        ids, terms = store.terms()
        Bm25Index.build(ids, terms, **self._bm25).save(folder)

    def _lexical(self) -> dict[str, Any]:
        return {"tokenizer": self._tokenizer.settings, **self._bm25}

    def _fill_counts(self, store: ChunkStore, report: IngestReport) -> None:
        report.chunks = len(store)
        report.by_doc_type = Counter(store.documents_by_doc_type())

    def _manifest(self, version: str, base: LoadedIndex | None, store: ChunkStore, next_id: int) -> dict[str, Any]:
        files = store.files()
        formats = Counter(Path(source).suffix.lower().lstrip(".") for source in files)
        chunks = len(store)
        return {
            "format_version": FORMAT_VERSION,
            "version": version,
            "parent": base.version if base else None,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "embedding": {"model": self._embedder.name, "dimension": self._embedder.dimension,
                          "max_tokens": self._embedder.max_tokens},
            "chunking": self._tools.chunker.settings,
            "redaction": self._tools.redactor.settings if self._tools.redactor else None,
            "lexical": self._lexical(),
            "next_chunk_id": next_id,
            "counts": {"files": len(files), "documents": sum(len(r["documents"]) for r in files.values()),
                       "chunks": chunks, "by_format": dict(sorted(formats.items()))},
            "roots": sorted({r["root"] for r in files.values()}),
            "filter_values": {"product": store.distinct("product"), "language": store.distinct("language")},
        }


def _change(source: str, old: dict[str, Any] | None, sha: str, recipe: dict[str, Any], forced: str) -> Change:
    if old is None:
        return Change("added", source)
    if forced:
        return Change("changed", source, forced)
    if old["sha256"] != sha:
        return Change("changed", source, "content")
    differing = [key for key in sorted(set(recipe) | set(old["recipe"])) if recipe.get(key) != old["recipe"].get(key)]
    if differing:
        return Change("changed", source, ", ".join(_describe(key, old["recipe"].get(key), recipe.get(key))
                                                   for key in differing))
    return Change("unchanged", source)


def _describe(key: str, before: Any, after: Any) -> str:
    names = {"loader": "parser", "metadata": "declared metadata", "redaction": "redaction settings"}
    if isinstance(before, str) and isinstance(after, str) and key in ("loader", "doc_type"):
        return f"{names.get(key, key)} {before} -> {after}"
    return names.get(key, key.replace("_", " "))


def _vector_cache(store: ChunkStore, vectors: FaissIndex, ids: list[int]) -> dict[str, Vectors]:
    """Vectors of chunks about to be replaced, by text digest, so unchanged texts are not re-embedded."""
    chunks = store.get_many(ids)
    if not chunks:
        return {}
    order = sorted(chunks)
    rows = vectors.vectors_of(order)
    return {text_digest(chunks[i].text): rows[n] for n, i in enumerate(order)}


def _older_format(manifest: Path) -> bool:
    try:
        found = json.loads(manifest.read_text(encoding="utf-8")).get("format_version")
    except (OSError, ValueError):
        return False  # opening it reports the problem with its fix
    return isinstance(found, int) and found < FORMAT_VERSION


def _check_roots(roots: list[CorpusRoot]) -> None:
    if not roots:
        raise ConfigError("give at least one corpus folder or file to ingest")
    names = Counter(root.name for root in roots if root.path.is_dir())
    clashes = [name for name, count in names.items() if count > 1]
    if clashes:
        raise ConfigError(
            f"two roots are both named {clashes[0]!r}: source ids start with the root folder's name, so "
            "give the folders distinct names"
        )


def _guard_empty_roots(roots: list[CorpusRoot], found: list[SourceFile], removed: list[str], allow: bool) -> None:
    """Refuse to empty a root by accident (an unmounted share looks like an empty folder)."""
    for root in roots:
        if root.path.is_dir() and not any(item.root == root for item in found):
            lost = [source for source in removed if root.owns(source)]
            if lost and not allow:
                raise IngestError(
                    f"{root.path} has no files, but the index holds {len(lost)} from it: refusing to remove "
                    "them all. Pass --allow-empty if that is what you want"
                )
