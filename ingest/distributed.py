"""Where the ingestion job's parse and embed work runs: in this process, or fanned out on Ray.

The job hands an executor two kinds of work and folds what comes back, in the order given,
into the new index version on the driver exactly as it always has (ids, FAISS, chunk store,
BM25, manifest):

    parse   one task per file: load, canonical metadata, redact, chunk     -> FileParse
    embed   one batch of chunk texts, with the job's own batch boundaries  -> vectors

`LocalExecutor` (the default) does both here, with the job's chunker, redactor and embedder.
`RayExecutor` does them on Ray actors. Each actor builds its own embedder and parse tools once,
in its own process, from picklable factories (`functools.partial` over `Settings`), never from
the driver's live objects; before any work it checks that what it built matches the driver's.
Both executors run `parse_file` and embed the same batches, so a Ray run writes the same
chunks, ids, metadata and vectors as a local one.

This is the only module that imports ray, and only when a `RayExecutor` is made, so
`rag ingest` runs without Ray installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ingest.chunking import StructureAwareChunker
from ingest.documents import SourceDocument
from ingest.metadata import canonical_metadata
from ingest.sources import SourceFile
from rag.errors import ConfigError, IngestError, RagError
from rag.protocols import Embedder, Vectors
from rag.types import Chunk

if TYPE_CHECKING:
    from ingest.job import Redactor

__all__ = ["Executor", "FileParse", "LocalExecutor", "ParseTask", "ParseTools", "RayExecutor", "parse_file"]


@dataclass(frozen=True, slots=True)
class ParseTools:
    """What turns a loaded file into chunks: the chunker, the redactor and the doc types it redacts."""

    chunker: StructureAwareChunker
    redactor: Redactor | None
    redact_types: frozenset[str]

    @property
    def settings(self) -> dict[str, Any]:
        """What decides the chunks; Ray workers must build tools with the same settings as the driver."""
        redactor = self.redactor
        return {"chunking": self.chunker.settings, "redaction": redactor.settings if redactor else None,
                "redact_doc_types": sorted(self.redact_types) if redactor else []}


@dataclass(frozen=True, slots=True)
class ParseTask:
    """One file to parse. Picklable: its loader is a small value object that `discover` chose."""

    file: SourceFile
    declared: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FileParse:
    """What parsing one file gave: chunks (ids not yet assigned) and document digests, or an error.

    `documents` maps each document's source to its content digest; empty means no text in the file.
    `redact_s` is None when nothing was redacted.
    """

    source: str
    chunks: list[Chunk] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)
    skipped_records: list[tuple[str, str]] = field(default_factory=list)
    redactions: Counter[str] = field(default_factory=Counter)
    redact_s: float | None = None
    error: str | None = None


def parse_file(task: ParseTask, tools: ParseTools) -> FileParse:
    """Load, then canonical metadata and redaction per document, then chunks; a file that cannot be read is an error."""
    item = task.file
    assert item.loader is not None
    try:
        loaded = item.loader.load(item.path, source=item.source, doc_type=item.doc_type)
    except RagError as exc:
        return FileParse(item.source, error=str(exc))
    result = FileParse(item.source, skipped_records=list(loaded.skipped))
    documents = [_prepare(document, task, tools, result) for document in loaded.documents]
    result.chunks = [chunk for document in documents for chunk in _chunk(document, tools.chunker)]
    result.documents = {d.source: text_digest(d.title + "\n" + d.text + json.dumps(d.metadata, sort_keys=True, default=str))
                        for d in documents}
    return result


def _prepare(document: SourceDocument, task: ParseTask, tools: ParseTools, result: FileParse) -> SourceDocument:
    """Canonical metadata, then redaction, before the document is chunked."""
    document = replace(document, metadata=canonical_metadata(document, task.declared))
    if document.doc_type in tools.redact_types and tools.redactor is not None:
        tick = time.perf_counter()
        document, counts = tools.redactor.redact_document(document)
        result.redactions.update(counts)
        result.redact_s = (result.redact_s or 0.0) + time.perf_counter() - tick
    return document


def _chunk(document: SourceDocument, chunker: StructureAwareChunker) -> list[Chunk]:
    return [
        Chunk(id=-1, text=piece.text, source=document.source, title=document.title, doc_type=document.doc_type,
              language=document.language, section=piece.section, page=piece.page, metadata=document.metadata)
        for piece in chunker.split(document)
    ]


def text_digest(text: str) -> str:
    """The sha256 of a text (chunk texts key their vectors by it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Executor(Protocol):
    """Runs the job's parse and embed work; results come back in the order the work was given."""

    def parse(self, tasks: Sequence[ParseTask], tools: ParseTools) -> Iterator[FileParse]: ...

    def embed(self, batches: Sequence[list[str]], embedder: Embedder) -> Iterator[Vectors]: ...


class LocalExecutor:
    """In this process, one file and one batch at a time, with the job's own tools (the default)."""

    def parse(self, tasks: Sequence[ParseTask], tools: ParseTools) -> Iterator[FileParse]:
        return (parse_file(task, tools) for task in tasks)

    def embed(self, batches: Sequence[list[str]], embedder: Embedder) -> Iterator[Vectors]:
        return (embedder.embed_documents(batch) for batch in batches)


class _Worker:
    """One Ray actor: an embedder and parse tools built once, in the actor's own process."""

    def __init__(self, embedder: Callable[[], Embedder], tools: Callable[[Embedder], ParseTools]) -> None:
        self._factories = (embedder, tools)
        self._built: tuple[Embedder, ParseTools] | None = None

    def ping(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        """Build the tools (errors surface here, not as a dead actor) and say what was built."""
        if self._built is None:
            embedder = self._factories[0]()
            self._built = (embedder, self._factories[1](embedder))
        embedder, tools = self._built
        return {"embedding": [embedder.name, embedder.dimension], "parsing": tools.settings}

    def parse(self, task: ParseTask) -> FileParse:
        assert self._built is not None
        if not task.file.path.is_file():
            return FileParse(task.file.source, error=f"{task.file.path} is not readable on Ray node {socket.gethostname()}:"
                             " the corpus must be on storage that every node mounts at the same path")
        return parse_file(task, self._built[1])

    def embed(self, texts: list[str]) -> Vectors:
        assert self._built is not None
        return self._built[0].embed_documents(texts)


class RayExecutor:
    """Parse and embed on Ray actors, one embedder and one set of parse tools per actor.

    `address`: "local" starts a Ray instance in this process, "auto" or "ray://host:port" joins a
    cluster; when Ray is already initialised in this process, that connection is used. `workers`:
    actors to start (0 = one per CPU that Ray sees); each asks for an equal share of the CPUs, up
    to one, and of the GPUs when the cluster has any; actors that Ray cannot place within
    `start_timeout_s` are an error, not a wait without end. Use it as a context manager: on exit
    the actors are killed, and Ray is shut down (or disconnected) only when this executor started it.
    """

    def __init__(self, *, address: str, embedder: Callable[[], Embedder], tools: Callable[[Embedder], ParseTools],
                 workers: int = 0, start_timeout_s: float = 300.0) -> None:
        self._ray = _import_ray(address)
        self._address = address
        self._factories = (embedder, tools)
        self._count = workers
        self._start_timeout_s = start_timeout_s
        self._owned = False
        self._actors: list[Any] = []
        self._described: dict[str, Any] | None = None
        self._remote: Any = None
        self._pool: Any = None

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def parse(self, tasks: Sequence[ParseTask], tools: ParseTools) -> Iterator[FileParse]:
        if not tasks:
            return iter(())
        self._check("parsing", tools.settings, "chunking/redaction settings")
        return self._ordered("parse", tasks, _died_parsing)

    def embed(self, batches: Sequence[list[str]], embedder: Embedder) -> Iterator[Vectors]:
        if not batches:
            return iter(())
        self._check("embedding", [embedder.name, embedder.dimension], "embedding model settings")
        return (np.asarray(rows, dtype=np.float32) for rows in self._ordered("embed", batches, _died_embedding))

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors, self._described, self._pool = [], None, None
        if self._owned:
            self._ray.shutdown()
            self._owned = False

    def _check(self, key: str, expected: Any, what: str) -> None:
        """Start the actors if needed; refuse to go on when they built other tools than the driver's."""
        described = self._start()
        if described[key] != expected:
            raise ConfigError(
                f"the Ray workers built other {what} than this job uses ({described[key]} vs {expected}): "
                "build the job and the workers' factories from the same settings"
            )

    def _start(self) -> dict[str, Any]:
        """Connect, start the actors and build their tools, once; what the first actor built."""
        if self._described is None:
            from ray.util import ActorPool

            self._owned = _connect(self._ray, self._address)
            try:
                actors = self._place()
                with _project_errors():
                    described: list[dict[str, Any]] = self._ray.get([actor.describe.remote() for actor in actors])
            except BaseException:
                self.close()
                raise
            self._described, self._pool = described[0], ActorPool(actors)
        return self._described

    def _place(self) -> list[Any]:
        """Start the actors; an error when Ray cannot place them all in time (a wait without end otherwise)."""
        resources = self._ray.cluster_resources()
        count, options = _shares(resources, self._count)
        self._remote = self._ray.remote(**options)(_Worker)
        actors = [self._spawn() for _ in range(count)]
        _, waiting = self._ray.wait([actor.ping.remote() for actor in actors], num_returns=count,
                                    timeout=self._start_timeout_s)
        if waiting:
            raise ConfigError(
                f"Ray did not start {len(waiting)} of {count} workers within {self._start_timeout_s:.0f} s: each asks "
                f"for {options} of a cluster with {_brief(resources)}, and other work may hold them. Free resources, "
                "or ask for fewer workers (--ray-workers, RAG_INGEST__RAY_WORKERS)"
            )
        return actors

    def _spawn(self) -> Any:
        actor = self._remote.remote(*self._factories)
        self._actors.append(actor)
        return actor

    def _ordered(self, method: str, items: Sequence[Any], on_death: Callable[[Any, Exception], Any]) -> Iterator[Any]:
        """`method` on the actors for every item (a free actor takes the next one); results in item order.

        A worker that dies (a crash in native code, out of memory) is replaced; `on_death` says
        what its item gives instead.
        """
        from ray.exceptions import ActorDiedError

        pool = self._pool
        while pool.has_next():  # results of a run that stopped early: not ours
            with suppress(Exception):
                pool.get_next(timeout=0, ignore_if_timedout=True)
        for item in items:
            pool.submit(lambda actor, value: getattr(actor, method).remote(value), item)
        for item in items:
            try:
                with _project_errors():
                    result = pool.get_next()
            except ActorDiedError as exc:
                replacement = self._spawn()
                with _project_errors():
                    self._ray.get(replacement.describe.remote())
                pool.push(replacement)
                result = on_death(item, exc)
            yield result


@contextmanager
def _project_errors() -> Iterator[None]:
    """A project error raised in an actor is raised here as itself, so the CLI maps it as usual."""
    from ray.exceptions import RayTaskError

    try:
        yield
    except RayTaskError as exc:
        if isinstance(exc.cause, RagError):
            raise exc.cause from None
        raise


def _died_parsing(task: ParseTask, exc: Exception) -> FileParse:
    return FileParse(task.file.source, error="the Ray worker parsing it died (a crash in native code, or out of memory: "
                     "see the worker logs in the Ray session's logs folder); it was replaced and the other files went on")


def _died_embedding(batch: list[str], exc: Exception) -> Vectors:
    raise IngestError(f"a Ray worker died while embedding a batch of {len(batch)} texts ({type(exc).__name__}): give "
                      "the workers more memory, or use fewer (RAG_INGEST__RAY_WORKERS)") from exc


def _import_ray(address: str) -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(f"ingestion on Ray (ray_address={address!r}) needs Ray, which is not installed: "
                          "pip install '.[ray]', or unset RAG_INGEST__RAY_ADDRESS") from exc
    return ray


def _connect(ray: Any, address: str) -> bool:
    """Initialise Ray unless this process already has; True when this call did it."""
    if ray.is_initialized():
        return False
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address == "local":
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot connect to Ray at {address!r}: {exc}. Start a cluster with `ray start --head` "
                          "(then use 'auto'), or use 'local' to start Ray in this process") from exc
    return True


def _shares(resources: dict[str, float], workers: int) -> tuple[int, dict[str, float]]:
    """How many actors, and each one's share of the CPUs (and GPUs): equal, at most one each."""
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    count = workers or max(1, int(cpus))
    options = {"num_cpus": _share(cpus, count)}
    if gpus:
        options["num_gpus"] = _share(gpus, count)
    return count, options


def _brief(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources[key]:g} {key}" for key in ("CPU", "GPU") if key in resources) or "no CPUs"


def _share(amount: float, count: int) -> float:
    """amount / count, at most 1, rounded down to Ray's resource precision so that `count` of them fit."""
    return min(1.0, math.floor(amount / count * 10_000) / 10_000)
