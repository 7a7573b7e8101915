"""Ingestion on Ray writes the same index as in process: chunks, ids, metadata, vectors, BM25, manifest.

One local Ray instance (3 CPUs, logs in a temporary folder) serves the module; the hash embedder
keeps most tests fast, and one test proves with the real MiniLM that vectors computed in other
processes are bit-for-bit those computed here.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from ingest.cli import parse_tools
from ingest.distributed import LocalExecutor, ParseTask, RayExecutor, _shares
from ingest.documents import Loaded
from ingest.report import IngestReport
from ingest.sources import CorpusRoot, SourceFile, discover
from rag.errors import ConfigError
from rag.factory import build_embedder
from rag.index import IndexFiles, IndexFolder, open_index
from rag.index.folder import resolve_version_dir
from rag.registry import create_embedder
from rag.settings import ChunkingSettings, IngestSettings, Settings
from rag.types import DocType
from tests.conftest import REPO, TINY_CORPUS, make_job, roots_of, write_corpus

MORE = {
    "docs/kettle.txt": "BrewPoint kettle care\n\nDescale the BrewPoint kettle every month with white vinegar. "
    "Rinse twice before boiling water for drinks.\n\nThe kettle switches off when it runs dry.\n",
    "docs/tent.html": "<html><body><h1>Cascade 2P tent</h1><p>The Cascade 2P pitches in five minutes with two poles."
    "</p><h2>Care</h2><p>Dry the fly before storing it to avoid mildew.</p></body></html>",
    "docs/solis.md": "# Solis 60 solar panel\n\n## Output\n\nThe Solis 60 gives 60 watts in full sun.\n\n"
    "## Charging\n\nIt charges the Volt 300 power station in about seven hours.\n",
    "policies/warranty.md": "# Warranty policy\n\nEvery product carries a two-year warranty against defects.\n\n"
    "## Claims\n\nFile a claim with the order number and a photo of the defect.\n",
    "tickets/more.jsonl": '{"ticket_id": "T-3", "status": "resolved", "subject": "Kettle does not heat", '
    '"customer_message": "The BrewPoint kettle stays cold.", "agent_resolution": "Holding the power button '
    'for 10 seconds reset it.", "product": "BrewPoint"}\n'
    '{"ticket_id": "T-4", "status": "resolved", "subject": "Tent pole bent", "customer_message": "A pole of '
    'my Cascade 2P bent.", "agent_resolution": "Sent a replacement pole under warranty.", "product": "Cascade 2P"}\n',
}
TICKETS = "".join(json.dumps({"ticket_id": f"T-{n}", "status": "resolved", "subject": subject, "customer_message":
                              f"Hello, {subject.lower()}. Order {1000 + n}.", "agent_resolution": fix, "product": product})
                  + "\n" for n, (subject, fix, product) in enumerate([
    ("Kettle will not heat", "Hold the power button for 10 seconds to reset it.", "BrewPoint"),
    ("Headlamp flickers", "Clean the USB-C port and charge it fully once.", "Aurora X2"),
    ("Tent pole bent", "Sent a replacement pole under warranty.", "Cascade 2P"),
    ("Speaker will not pair", "Forget the device in Bluetooth settings and pair again.", "Tidal BT5"),
    ("Power station beeps", "Error E3 means overheating: let it cool down in the shade.", "Volt 300"),
    ("Panel gives little power", "Angle the panel at the sun and clean its surface.", "Solis 60"),
    ("Stove will not light", "Replace the igniter battery under the front cover.", "Hearth T4"),
    ("Cooler lid cracked", "Shipped a new lid; the old one need not be returned.", "Driftwood 20"),
]))
WORKERS, BATCH = 3, 2
SETTINGS = Settings(chunking=ChunkingSettings(chunk_tokens=64, overlap_tokens=8),  # what make_job builds
                    ingest=IngestSettings(redact_doc_types=[]))


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """A local Ray for the whole module; the executors join it and leave it running."""
    ray = pytest.importorskip("ray")
    logs = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             _temp_dir=logs)
    yield ray
    ray.shutdown()
    shutil.rmtree(logs, ignore_errors=True)


@pytest.fixture(scope="module")
def hash_executor(ray_instance: Any) -> Iterator[RayExecutor]:
    """Three actors, each with its own hash embedder and chunker, shared by the hash-embedder tests."""
    with RayExecutor(address="local", workers=WORKERS, embedder=partial(create_embedder, "hash"),
                     tools=partial(parse_tools, SETTINGS)) as executor:
        yield executor


def corpus(root: Path) -> Path:
    folder = write_corpus(root, {**TINY_CORPUS, **MORE})
    (folder / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    return folder


def snapshot(index_dir: Path) -> dict[str, Any]:
    """Everything a version holds, less what names or dates it: BM25 both by content (each term's chunks and
    scores) and as the bytes of its files (its vocabulary is sorted, whatever process built it)."""
    index, bm25 = open_index(index_dir, gpu="off"), IndexFiles(resolve_version_dir(index_dir)).bm25
    try:
        chunks = index.store.all()
        files = {source: {k: v for k, v in record.items() if k != "ingested_at"}
                 for source, record in index.store.files().items()}
        ids, terms = index.store.terms()
        vocabulary = sorted({term for chunk_terms in terms for term in chunk_terms})
        return {
            "chunks": chunks, "files": files, "vectors": index.vectors.vectors_of([c.id for c in chunks]),
            "terms": (ids, terms), "bm25": {term: index.lexical.search([term], k=len(ids)) for term in vocabulary},
            "bm25 files": {f.name: f.read_bytes() for f in sorted(bm25.iterdir())},
            "manifest": {k: v for k, v in index.manifest.items() if k not in ("version", "parent", "created_at")},
        }
    finally:
        index.close()


def assert_same_index(local: Path, distributed: Path) -> None:
    here, there = snapshot(local), snapshot(distributed)
    assert np.array_equal(here.pop("vectors"), there.pop("vectors"))  # bitwise: same model, same batches
    assert here == there


def outcome(report: IngestReport) -> dict[str, Any]:
    """The report less its timings and version ids."""
    data = report.to_json()
    return {k: v for k, v in data.items() if k not in ("timings_s", "version", "previous_version", "index_dir",
                                                        "seconds", "pruned")}


@pytest.mark.slow
def test_ray_writes_the_same_index_as_a_local_run(tmp_path: Path, hash_executor: RayExecutor) -> None:
    roots = roots_of(corpus(tmp_path / "corpus"))
    local = make_job(tmp_path / "local", batch_size=BATCH).run(roots)
    seen: list[tuple[str, int, int]] = []
    job = make_job(tmp_path / "ray", batch_size=BATCH, executor=hash_executor,
                   progress=lambda stage, done, total: seen.append((stage, done, total)))
    distributed = job.run(roots)
    assert_same_index(tmp_path / "local", tmp_path / "ray")
    assert outcome(distributed) == outcome(local)
    assert [source for source, _ in distributed.failed] == ["docs/broken.pdf"]  # failed on a worker, as here
    assert distributed.failed == local.failed and distributed.exit_code == 11
    assert distributed.chunks_embedded > WORKERS * BATCH  # enough batches for every actor
    parsed = [s for s in seen if s[0] == "parse"]
    assert [done for _, done, _ in parsed] == list(range(1, len(parsed) + 1)) and parsed[-1][2] == len(parsed)
    assert ("embed", distributed.chunks_embedded, distributed.chunks_embedded) in seen


@pytest.mark.slow
def test_incremental_runs_on_ray_embed_only_what_changed(tmp_path: Path, hash_executor: RayExecutor) -> None:
    folder = corpus(tmp_path / "corpus")
    job = make_job(tmp_path / "ray", batch_size=BATCH, executor=hash_executor)
    first = job.run(roots_of(folder))
    again = job.run(roots_of(folder))
    assert again.chunks_embedded == 0 and not again.published and again.version == first.version
    local = make_job(tmp_path / "local", batch_size=BATCH)
    local.run(roots_of(folder))
    (folder / "docs" / "solis.md").write_text(MORE["docs/solis.md"] + "\n## Storage\n\nStore it dry and flat.\n")
    edited, edited_here = job.run(roots_of(folder)), local.run(roots_of(folder))
    assert 0 < edited.chunks_embedded == edited_here.chunks_embedded < edited.chunks_added + 1
    assert outcome(edited) == outcome(edited_here)
    assert_same_index(tmp_path / "local", tmp_path / "ray")


@pytest.mark.slow
def test_workers_that_cannot_be_placed_are_an_error(tmp_path: Path, hash_executor: RayExecutor) -> None:
    list(hash_executor.embed([["warm up"]], create_embedder("hash")))  # its actors now hold every CPU
    with RayExecutor(address="local", workers=1, embedder=partial(create_embedder, "hash"),
                     tools=partial(parse_tools, SETTINGS), start_timeout_s=3) as executor:
        job = make_job(tmp_path / "index", executor=executor)
        with pytest.raises(ConfigError, match="Ray did not start 1 of 1 workers within 3 s"):
            job.run(roots_of(write_corpus(tmp_path / "corpus", TINY_CORPUS)))


class DyingLoader:
    """Kills the process that loads with it (never the test's own): a parser crashing in native code."""

    version = "dies-1"

    def __init__(self) -> None:
        self._driver = os.getpid()

    def load(self, path: Path, *, source: str, doc_type: DocType) -> Loaded:
        if os.getpid() == self._driver:
            raise AssertionError("meant to run on a Ray worker")
        os._exit(1)


@pytest.mark.slow
def test_a_worker_that_dies_fails_only_its_file(tmp_path: Path, hash_executor: RayExecutor) -> None:
    root = CorpusRoot(write_corpus(tmp_path / "docs", {name.split("/")[1]: text for name, text in MORE.items()
                                                        if name.startswith("docs/")}))
    files = list(discover(root))
    crash = SourceFile(files[0].path, "docs/crash.md", "doc", root, DyingLoader())
    tasks = [ParseTask(files[0]), ParseTask(crash), *(ParseTask(item) for item in files[1:])]
    tools = parse_tools(SETTINGS, create_embedder("hash"))
    results = list(hash_executor.parse(tasks, tools))
    assert results[1].error is not None and "worker parsing it died" in results[1].error
    here = list(LocalExecutor().parse(tasks[:1] + tasks[2:], tools))
    assert [(r.source, r.chunks, r.error) for r in results[:1] + results[2:]] == [
        (r.source, r.chunks, r.error) for r in here]  # the others parsed, on the survivors and a replacement


@pytest.mark.slow
def test_workers_with_other_settings_are_refused(tmp_path: Path, hash_executor: RayExecutor) -> None:
    job = make_job(tmp_path / "index", chunk_tokens=128, executor=hash_executor)
    with pytest.raises(ConfigError, match="Ray workers built other chunking/redaction settings"):
        job.run(roots_of(write_corpus(tmp_path / "corpus", TINY_CORPUS)))


@pytest.mark.slow
def test_rag_ingest_on_ray(tmp_path: Path, ray_instance: Any, hash_executor: RayExecutor) -> None:
    from rag.cli import _register_plugins, app

    if not any(command.name == "ingest" for command in app.registered_commands):
        _register_plugins()  # `rag ingest` comes from the ingest package's entry point, as in `main()`
    hash_executor.close()  # its actors hold every CPU of the module's Ray
    roots = [str(tmp_path / "tickets")]  # ticket exports only: the worker starts without unstructured
    write_corpus(tmp_path, {"tickets/tickets.jsonl": TICKETS})
    env = {"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64", "RAG_INGEST__REDACT_DOC_TYPES": "[]",
           "RAG_CHUNKING__CHUNK_TOKENS": "64", "RAG_CHUNKING__OVERLAP_TOKENS": "8"}
    result = CliRunner(env=env).invoke(app, ["ingest", *roots, "--index", str(tmp_path / "index"), "--ray", "local",
                                             "--ray-workers", "1"])
    assert result.exit_code == 0, result.output
    assert IndexFolder(tmp_path / "index").current() is not None
    assert ray_instance.is_initialized()  # this process started Ray, not the command: it stays up
    make_job(tmp_path / "local").run([Path(r) for r in roots])
    assert_same_index(tmp_path / "local", tmp_path / "index")


@pytest.mark.slow
def test_shipped_model_vectors_match_across_processes(tmp_path: Path, hash_executor: RayExecutor, shipped: Any) -> None:
    """The shipped model (OpenVINO int8 MiniLM) in three actor processes, each exporting nothing (the cache is
    shared) and on its own share of the cores, gives bit-identical vectors to the model here."""
    hash_executor.close()  # its actors hold every CPU of the module's Ray
    roots = roots_of(write_corpus(tmp_path / "corpus", {"tickets/tickets.jsonl": TICKETS}))  # no unstructured
    make_job(tmp_path / "local", embedder=shipped, batch_size=BATCH).run(roots)
    with RayExecutor(address="local", workers=WORKERS, embedder=partial(build_embedder, SETTINGS),
                     tools=partial(parse_tools, SETTINGS)) as executor:
        report = make_job(tmp_path / "ray", embedder=shipped, batch_size=BATCH, executor=executor).run(roots)
    assert report.chunks_embedded > WORKERS * BATCH
    assert_same_index(tmp_path / "local", tmp_path / "ray")


def test_ray_is_imported_only_when_asked_for() -> None:
    """`rag ingest` works without Ray; asking for Ray without it installed says how to install it."""
    script = (
        "import sys\n"
        "import ingest.cli\n"
        "assert 'ray' not in sys.modules, 'ray imported without being asked for'\n"
        "sys.modules['ray'] = None  # as if not installed\n"
        "from ingest.distributed import RayExecutor\n"
        "from rag.errors import ConfigError\n"
        "try:\n"
        "    RayExecutor(address='auto', embedder=print, tools=print)\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert "pip install '.[ray]'" in run.stdout


def test_only_the_distributed_module_imports_ray() -> None:
    users = sorted(str(path.relative_to(REPO)) for package in ("rag", "ingest", "eval")
                   for path in (REPO / package).rglob("*.py")
                   if any(line.lstrip().startswith(("import ray", "from ray")) for line in path.read_text().splitlines()))
    assert users == ["ingest/distributed.py"]


@pytest.mark.parametrize("resources,workers,expected", [
    ({"CPU": 2.0}, 3, (3, {"num_cpus": 0.6666})),  # three actors fit on two CPUs
    ({"CPU": 16.0}, 0, (16, {"num_cpus": 1.0})),  # 0 = one per CPU
    ({"CPU": 8.0, "GPU": 1.0}, 4, (4, {"num_cpus": 1.0, "num_gpus": 0.25})),  # the GPU shared by the embedders
])
def test_actors_ask_for_a_share_that_fits(resources: dict[str, float], workers: int,
                                          expected: tuple[int, dict[str, float]]) -> None:
    assert _shares(resources, workers) == expected

