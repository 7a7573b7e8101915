"""Approximate search indexes (HNSW, IVF, SQ8/PQ codes) beside the exact Flat: choice by size, recall, filters,
files, incremental ingestion over them, and the same answers through `rag search` and the HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.embedders import HashEmbedder
from rag.errors import ConfigError, IndexCorruptError
from rag.factory import ann_options, build_runtime
from rag.index import AnnOptions, FaissIndex, IndexFiles, IndexFolder, gpu_count, open_index
from rag.settings import Settings
from rag.testing import ScriptedOpenAIServer
from tests.conftest import TINY_CORPUS, make_job, roots_of, running, write_corpus

DIM, COUNT = 128, 5000
FORCED = [("hnsw", "none"), ("hnsw", "sq8"), ("ivf", "none"), ("ivf", "sq8"), ("ivf", "pq")]


def clustered(count: int, seed: int, centres: int = 20) -> np.ndarray:
    """Unit vectors of a Gaussian mixture (random ANN data is a worst case, not what embeddings look like)."""
    shape = np.random.default_rng(1)
    means = shape.normal(size=(centres, DIM))
    bases = shape.normal(size=(centres, 8, DIM)) / np.sqrt(DIM)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, centres, count)
    rows = means[labels] / np.sqrt(DIM) + np.einsum("nr,nrd->nd", rng.normal(size=(count, 8)) * 0.4, bases[labels])
    rows += rng.normal(size=(count, DIM)) * 0.25 / np.sqrt(DIM)
    return np.asarray(rows / np.linalg.norm(rows, axis=1, keepdims=True), dtype=np.float32)


@pytest.fixture(scope="module")
def flat() -> FaissIndex:
    index = FaissIndex(dimension=DIM, gpu="off")
    index.add(list(range(1000, 1000 + COUNT)), clustered(COUNT, seed=0))
    return index


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered(50, seed=99)


def built(flat: FaissIndex, folder: Path, options: AnnOptions) -> tuple[FaissIndex, dict[str, object]]:
    """Save a copy with `options` and open it the way serving does."""
    folder.mkdir(parents=True, exist_ok=True)
    described = flat.copy().save(folder / "vectors.faiss", ann_path=folder / "vectors.ann.faiss", options=options)
    ann = folder / "vectors.ann.faiss" if described["kind"] != "flat" else None
    return FaissIndex.load(folder / "vectors.faiss", gpu="off", ann_path=ann, options=options), described


def recall(exact: FaissIndex, approximate: FaissIndex, queries: np.ndarray, k: int = 10) -> float:
    truth, _ = exact.search_batch(queries, k)
    found = [[i for i, _ in approximate.search(q, k)] for q in queries]
    return float(np.mean([len(set(t) & set(f)) / k for t, f in zip(truth, found, strict=True)]))


def test_auto_is_flat_below_the_threshold_and_ivf_from_it(flat: FaissIndex, tmp_path: Path) -> None:
    options = AnnOptions(threshold=COUNT + 1)
    assert options.resolve(COUNT) == "flat" and options.resolve(COUNT + 1) == "ivf" and options.resolve(0) == "flat"
    assert AnnOptions(threshold=10, compression="pq").resolve(10) == "ivf"
    assert AnnOptions(kind="hnsw").resolve(10) == "hnsw"  # a kind set by hand is kept
    below, described = built(flat, tmp_path / "below", options)
    assert described == {"kind": "flat"} and below.search_kind == "flat"
    assert not (tmp_path / "below" / "vectors.ann.faiss").exists()
    above, described = built(flat, tmp_path / "above", AnnOptions(threshold=COUNT))
    assert described["kind"] == "ivf" and described["vectors"] == COUNT and above.search_kind == "ivf"


@pytest.mark.parametrize(("kind", "compression"), FORCED)
def test_forced_kinds_build_and_find_the_exact_neighbours(flat: FaissIndex, queries: np.ndarray, tmp_path: Path,
                                                          kind: str, compression: str) -> None:
    index, described = built(flat, tmp_path, AnnOptions(kind=kind, compression=compression))  # type: ignore[arg-type]
    assert (described["kind"], described["compression"], index.search_kind) == (kind, compression, kind)
    assert len(index) == COUNT and recall(flat, index, queries) >= 0.9
    hits = index.search(queries[0], 5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    exact = dict(flat.search(queries[0], 50))
    assert all(abs(score - exact[i]) < 1e-4 for i, score in hits if i in exact)  # compressed codes are re-scored


def test_compressed_codes_are_smaller(flat: FaissIndex, tmp_path: Path) -> None:
    sizes = {c: built(flat, tmp_path / c, AnnOptions(kind="ivf", compression=c))[1]["bytes"]  # type: ignore[arg-type]
             for c in ("none", "sq8", "pq")}
    assert sizes["pq"] < sizes["sq8"] < sizes["none"]  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
@pytest.mark.parametrize("allowed", [40, 3000])  # the exact path for few ids, the ANN with a selector for many
def test_filters_return_only_allowed_ids(flat: FaissIndex, queries: np.ndarray, tmp_path: Path, kind: str,
                                         allowed: int) -> None:
    index, _ = built(flat, tmp_path, AnnOptions(kind=kind, exact_below=2048))  # type: ignore[arg-type]
    ids = sorted(np.random.default_rng(3).choice(range(1000, 1000 + COUNT), size=allowed, replace=False).tolist())
    matches = 0
    for query in queries[:20]:
        found = [i for i, _ in index.search(query, 10, allowed_ids=ids)]
        exact = [i for i, _ in flat.search(query, 10, allowed_ids=ids)]
        assert set(found) <= set(ids) and len(found) == 10
        matches += len(set(found) & set(exact))
    assert matches / 200 >= (1.0 if allowed <= 2048 else 0.9)
    assert index.search(queries[0], 10, allowed_ids=[]) == []
    assert [i for i, _ in index.search(queries[0], 3, allowed_ids=[1000, 1001, 999_999])] != []  # unknown id


def test_save_and_load_round_trip_keeps_results(flat: FaissIndex, queries: np.ndarray, tmp_path: Path) -> None:
    first, described = built(flat, tmp_path, AnnOptions(kind="hnsw", hnsw_m=16, ef_search=64))
    assert described["hnsw_m"] == 16 and described["bytes"] == (tmp_path / "vectors.ann.faiss").stat().st_size
    again = FaissIndex.load(tmp_path / "vectors.faiss", gpu="off", ann_path=tmp_path / "vectors.ann.faiss")
    assert again.search_kind == "hnsw" and len(again) == COUNT and again.dimension == DIM
    again.configure(ef_search=64)
    for query in queries[:10]:
        assert again.search(query, 10) == first.search(query, 10)
    np.testing.assert_allclose(again.vectors_of([1000, 1007]), flat.vectors_of([1000, 1007]))


def test_removed_ids_become_tombstones_then_force_a_rebuild(flat: FaissIndex, tmp_path: Path) -> None:
    options = AnnOptions(kind="hnsw")
    index, _ = built(flat, tmp_path / "a", options)
    rows = flat.vectors_of([1000, 1001])
    assert index.remove([1000]) == 1 and len(index) == COUNT - 1
    assert 1000 not in [i for i, _ in index.search(rows[0], 10)]
    index.add([9_000_000], rows[:1])  # ids are never reused: a new id for the same text
    assert index.search(rows[0], 1)[0][0] == 9_000_000
    assert index.save(tmp_path / "b.faiss", ann_path=tmp_path / "b.ann.faiss", options=options)["build"] == "updated"
    index.remove(list(range(1001, 1001 + COUNT // 5)))  # past REBUILD_DEAD_FRACTION
    described = index.save(tmp_path / "c.faiss", ann_path=tmp_path / "c.ann.faiss", options=options)
    assert described["build"] == "rebuilt" and described["tombstones"] == 0
    assert described["vectors"] == len(index) == COUNT - COUNT // 5


@pytest.mark.skipif(gpu_count() > 0, reason="checks the no-GPU error; this machine has a GPU")
def test_gpu_on_without_gpu_says_how_to_fix_for_ann_too(flat: FaissIndex, queries: np.ndarray, tmp_path: Path) -> None:
    built(flat, tmp_path, AnnOptions(kind="hnsw"))
    index = FaissIndex.load(tmp_path / "vectors.faiss", gpu="on", ann_path=tmp_path / "vectors.ann.faiss")
    with pytest.raises(ConfigError, match="no GPU"):
        index.search(queries[0], 1)


@pytest.mark.gpu
@pytest.mark.skipif(gpu_count() == 0, reason="needs faiss with GPU support and a CUDA GPU")
def test_ivf_searches_on_the_gpu_like_on_the_cpu(flat: FaissIndex, queries: np.ndarray, tmp_path: Path) -> None:
    cpu, _ = built(flat, tmp_path, AnnOptions(kind="ivf"))
    gpu = FaissIndex.load(tmp_path / "vectors.faiss", gpu="on", ann_path=tmp_path / "vectors.ann.faiss")
    assert gpu.on_gpu and not cpu.on_gpu
    assert recall(cpu, gpu, queries) >= 0.99
    allowed = list(range(1000, 1000 + COUNT, 2))  # filtered searches stay on the CPU copy
    assert gpu.search(queries[0], 10, allowed_ids=allowed) == cpu.search(queries[0], 10, allowed_ids=allowed)


def test_hnsw_with_pq_codes_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="RAG_INDEX__KIND=ivf"):
        AnnOptions(kind="hnsw", compression="pq")


def test_settings_reach_the_options() -> None:
    settings = Settings(index={"kind": "ivf", "ann_threshold": 7, "compression": "sq8", "hnsw_m": 24,
                               "hnsw_ef_search": 99, "ivf_nprobe": 11})
    assert ann_options(settings) == AnnOptions(kind="ivf", threshold=7, compression="sq8", hnsw_m=24, ef_search=99,
                                               nprobe=11)


# -- through ingestion, `rag search` and the API -----------------------------------------------------------


HNSW = AnnOptions(kind="hnsw", threshold=0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("ann") / "corpus", TINY_CORPUS)


@pytest.fixture(scope="module")
def indexes(corpus: Path, tiny_index: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny corpus ingested twice: exact only (the shared `tiny_index`) and with an HNSW search index."""
    root = tmp_path_factory.mktemp("indexes")
    make_job(root / "hnsw", ann=HNSW).run(roots_of(corpus))
    return {"flat": tiny_index, "hnsw": root / "hnsw"}


def test_the_manifest_records_the_search_index(indexes: dict[str, Path]) -> None:
    flat, hnsw = open_index(indexes["flat"], gpu="off"), open_index(indexes["hnsw"], gpu="off")
    try:
        assert flat.search_index == {"kind": "flat"} and flat.vectors.search_kind == "flat"
        recorded = hnsw.search_index
        assert recorded["kind"] == "hnsw" and recorded["compression"] == "none" and recorded["hnsw_m"] == 32
        assert recorded["file"] == "vectors.ann.faiss" and recorded["vectors"] == len(hnsw.store)
        assert hnsw.vectors.search_kind == "hnsw" and IndexFiles(hnsw.root).ann_vectors.exists()
    finally:
        flat.close()
        hnsw.close()
    exact = open_index(indexes["hnsw"], gpu="off", ann=AnnOptions(kind="flat"))  # serving may force exact search
    assert exact.vectors.search_kind == "flat"
    exact.close()


def test_incremental_ingestion_over_an_ann_version(tmp_path: Path) -> None:
    extra = {f"docs/guide-{n}.md": f"# Guide {n}\n\nStep {n}: press button {n} on model Z{n} for {n} seconds.\n"
             for n in range(40)}  # enough chunks that this run's tombstones stay below the rebuild share
    corpus = write_corpus(tmp_path / "corpus", {**TINY_CORPUS, **extra})
    make_job(tmp_path / "index", ann=HNSW).run(roots_of(corpus))
    (corpus / "docs" / "aurora.md").write_text("# Aurora X2 headlamp\n\nNow 700 lumens, rated IPX8.\n")
    (corpus / "docs" / "kettle.md").write_text("# BrewPoint kettle\n\nDescale monthly with citric acid.\n")
    (corpus / "policies" / "shipping.txt").unlink()
    report = make_job(tmp_path / "index", ann=HNSW).run(roots_of(corpus))
    assert report.published and report.chunks_removed > 0
    fresh = tmp_path / "fresh"
    make_job(fresh).run(roots_of(corpus))  # the same corpus in one exact-only run
    updated, expected = open_index(tmp_path / "index", gpu="off"), open_index(fresh, gpu="off")
    try:
        assert updated.search_index["build"] == "updated" and updated.search_index["tombstones"] > 0
        chunks = {c.id: c for c in updated.store.all()}
        truth = FaissIndex.load(IndexFiles(updated.root).vectors, gpu="off")  # the Flat, read alone
        assert len(truth) == len(updated.vectors) == len(chunks)
        assert {i for i, _ in truth.search(truth.vectors_of([min(chunks)])[0], 100)} == set(chunks)
        embedder = HashEmbedder()
        for question in ("return window", "700 lumens", "descale the kettle", "standard shipping"):
            query = embedder.embed_query(question)
            found, wanted = updated.vectors.search(query, 5), expected.vectors.search(query, 5)
            assert chunks[found[0][0]].text == expected.store.get_many([wanted[0][0]])[wanted[0][0]].text
            np.testing.assert_allclose([s for _, s in found], [s for _, s in wanted], atol=1e-5)  # ties may swap
            assert not any("Standard shipping" in chunks[i].text for i, _ in found)
    finally:
        updated.close()
        expected.close()


def test_changing_the_index_kind_alone_publishes_a_version(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", TINY_CORPUS)
    first = make_job(tmp_path / "index").run(roots_of(corpus))
    again = make_job(tmp_path / "index").run(roots_of(corpus))
    assert not again.published
    switched = make_job(tmp_path / "index", ann=HNSW).run(roots_of(corpus))
    assert switched.published and switched.chunks_embedded == 0 and switched.version != first.version
    loaded = open_index(tmp_path / "index", gpu="off")
    assert loaded.search_index["kind"] == "hnsw"
    loaded.close()
    assert not make_job(tmp_path / "index", ann=HNSW).run(roots_of(corpus)).published


def test_a_missing_search_index_file_is_reported(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index", ann=HNSW).run(roots_of(corpus))
    folder = IndexFolder(tmp_path / "index")
    IndexFiles(folder.path_of(folder.current() or "")).ann_vectors.unlink()
    with pytest.raises(IndexCorruptError, match="rag index rollback"):
        open_index(tmp_path / "index", gpu="off")


QUESTIONS = ["How many days do I have to return an item?", "standard shipping", "kettle does not heat",
             "headlamp lumens"]


def test_rag_search_gives_the_same_hits_over_hnsw_and_flat(indexes: dict[str, Path], tmp_path: Path) -> None:
    from rag.cli import app

    runner = CliRunner(env={"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64",
                            "RAG_INDEX__GPU": "off", "RAG_CONFIG": str(tmp_path / "none.toml")})
    for question in QUESTIONS:
        rows = {}
        for name, index in indexes.items():
            result = runner.invoke(app, ["search", question, "--index", str(index), "--json", "--mode", "dense"])
            assert result.exit_code == 0, result.output
            rows[name] = [(r["source"], r["text"], r["signals"]["dense"]) for r in json.loads(result.stdout)]
        assert rows["hnsw"] == rows["flat"] and rows["flat"]


@pytest.fixture()
def apis(indexes: dict[str, Path], llm_server: ScriptedOpenAIServer) -> Iterator[dict[str, str]]:
    urls = {}
    with running(create_app(lambda: build_runtime(_settings(indexes["flat"], llm_server)), keys=KeyRing.off())) as a:
        urls["flat"] = a
        with running(create_app(lambda: build_runtime(_settings(indexes["hnsw"], llm_server)),
                                keys=KeyRing.off())) as b:
            urls["hnsw"] = b
            yield urls


def _settings(index: Path, llm: ScriptedOpenAIServer) -> Settings:
    return Settings(index={"dir": index, "gpu": "off"}, embedding={"backend": "hash", "model": "hash-64"},
                    llm={"base_url": llm.base_url, "model": "scripted", "timeout_s": 2.0})


def test_the_api_cites_the_same_passages_over_hnsw_and_flat(apis: dict[str, str]) -> None:
    for question in QUESTIONS:
        cited = {}
        for name, url in apis.items():
            reply = httpx.post(f"{url}/ask", json={"question": question})
            assert reply.status_code == 200, reply.text
            cited[name] = [(c["source"], c["n"]) for c in reply.json()["citations"]]
        assert cited["hnsw"] == cited["flat"] and cited["flat"]
