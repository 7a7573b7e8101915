"""Approximate search indexes against the exact Flat index: build time, QPS, recall@10 and bytes, in one run.

    python -m bench.ann [--sizes 10k,100k,1m] [--queries 1000] [--threads 2] [--quick] [--store-index DIR]

example:
    python -m bench.ann --quick                 # 10k and 100k, a few minutes
    python -m bench.ann --sizes 1m --threads 2  # the 1M row alone (about half an hour on 2 cores)

Vectors: synthetic 384-d unit vectors (MiniLM's dimension) with structure like text embeddings: a hierarchical
Gaussian mixture in a 48-d latent space (one topic per 2,500 vectors, sub-topics of 250 around them), mapped to
384-d by a random linear map, normalised, plus isotropic noise, normalised again. Over 100k of them a query's top-1
cosine is ~0.55-0.63 and its 10th ~0.54, random pairs ~0.01 (99th percentile 0.35). Uniform random vectors, a
known worst case for ANN, would understate it; strongly separated clusters (random orthogonal centres) overstate
IVF and starve HNSW (see "separated clusters" in the report). The 1,000 queries are held out: same mixture,
another seed.

Every index is built through `FaissIndex.save(..., ann_path=..., options=AnnOptions(...))`, as ingestion builds
it, and searched through `FaissIndex.search` one query at a time (what the service does per question: "single
QPS", Python overhead included; the best of 5 passes over 200 queries, every index taking its turn in each round,
since other processes share these cores) and
`FaissIndex.search_batch` over all queries at once ("batch QPS", the best of 3). Recall@10 is
against the Flat's exact top-10 of the same queries. Bytes per vector are the index file's (what serving holds in
memory: the Flat is memory-mapped only for exact re-scoring of SQ8/PQ codes and for filters that allow few ids).
Bytes per chunk add the chunk store (chunks.sqlite3 + bm25/) of the sample corpus ingested with the real
all-MiniLM-L6-v2 and the default chunking (160 tokens), or of --store-index.

FAISS runs on --threads OpenMP threads (default 2, this machine's cores), set explicitly, for building and batches;
single queries (and filtered ones) are timed at 1 and at 2 threads and the better counts, the count shown: a Flat
search of one query splits over both cores, which halves its time on an idle machine and triples it when another
process holds a core (this machine is shared; the report shows the load average while timing). Results go to
bench/results/ann.md, .json and .png (recall against single-query QPS at the largest size).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from rag.index import AnnOptions, FaissIndex
from rag.index.faiss_index import set_threads
from rag.protocols import Vectors

DIMENSION, LATENT, PER_TOPIC, PER_SUBTOPIC, K = 384, 48, 2500, 250, 10
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
FILTER_SHARES = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)  # of the vectors a filter allows, at the largest size
THREAD_CHOICES = (1, 2)  # FAISS threads single queries are timed at (the better one counts); batches use --threads
EXACT_UP_TO = 100_000  # allowed ids beyond which the exact path is not measured (it copies their vectors)


@dataclass(frozen=True)
class Config:
    """One index and the search settings swept over it."""

    name: str
    options: AnnOptions
    sweep: list[dict[str, int]] = field(default_factory=list)


CONFIGS = [
    Config("HNSW32", AnnOptions(kind="hnsw", threshold=0, hnsw_m=32),
           [{"ef_search": ef} for ef in (16, 32, 64, 128, 256)]),
    Config("IVF-Flat", AnnOptions(kind="ivf", threshold=0),
           [{"nprobe": p} for p in (4, 8, 16, 32, 64, 128)]),
    Config("IVF-SQ8", AnnOptions(kind="ivf", threshold=0, compression="sq8"),
           [{"nprobe": p} for p in (8, 16, 32, 64)]),
    Config("IVF-PQ48x8", AnnOptions(kind="ivf", threshold=0, compression="pq"),
           [{"nprobe": p} for p in (8, 16, 32, 64, 128)] + [{"nprobe": 32, "refine": r} for r in (1, 2, 8)]),
]


def hierarchical(count: int, seed: int, *, size: int) -> Vectors:
    """Unit vectors of the mixture described above, shaped for a corpus of `size` (the same for every seed)."""
    shape = np.random.default_rng(12345)
    topics = shape.normal(size=(max(4, size // PER_TOPIC), LATENT))
    subtopics = topics[shape.integers(0, len(topics), max(16, size // PER_SUBTOPIC))]
    subtopics += 0.6 * shape.normal(size=subtopics.shape)
    projection = shape.normal(size=(LATENT, DIMENSION)) / np.sqrt(LATENT)
    rng = np.random.default_rng(seed)
    out = np.empty((count, DIMENSION), dtype=np.float32)
    for start in range(0, count, 65_536):
        part = subtopics[rng.integers(0, len(subtopics), min(65_536, count - start))]
        signal = (part + rng.normal(size=part.shape)) @ projection
        rows = signal / np.linalg.norm(signal, axis=1, keepdims=True)
        rows += 0.6 * rng.normal(size=rows.shape) / np.sqrt(DIMENSION)
        out[start : start + len(part)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out


def recall(truth: np.ndarray, found: np.ndarray) -> float:
    return float(np.mean([len(set(t) & set(f[f >= 0])) / len(t) for t, f in zip(truth, found, strict=True)]))


def single_pass(index: FaissIndex, sample: Vectors, *, budget_s: float = 10.0) -> float:
    """Queries per second one at a time over `sample` (stopping after `budget_s`, once 20 are done)."""
    tick, done = time.perf_counter(), 0
    for query in sample:
        index.search(query, K)
        done += 1
        if done >= 20 and time.perf_counter() - tick > budget_s:
            break
    return done / (time.perf_counter() - tick)


def batch_qps(index: FaissIndex, queries: Vectors, *, rounds: int = 3) -> tuple[float, np.ndarray]:
    """Queries per second, all queries in one call: the best of `rounds`."""
    best = 0.0
    for _ in range(rounds):
        tick = time.perf_counter()
        ids, _ = index.search_batch(queries, K)
        best = max(best, len(queries) / (time.perf_counter() - tick))
    return best, ids


@contextmanager
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="bench-ann-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Row:
    """One index at one search setting, and what was measured of it."""

    index: FaissIndex
    setting: dict[str, int]
    figures: dict[str, Any]


def run_size(label: str, count: int, folder: Path, *, n_queries: int, threads: int, quick: bool,
             largest: bool) -> dict[str, Any]:
    tick = time.perf_counter()
    vectors, queries = hierarchical(count, count, size=count), hierarchical(n_queries, 999_999, size=count)
    print(f"\n== {label}: {count:,} vectors ({time.perf_counter() - tick:.0f} s to generate)", flush=True)
    tick = time.perf_counter()
    flat = FaissIndex(dimension=DIMENSION, gpu="off")
    flat.add(range(count), vectors)  # type: ignore[arg-type]
    build_s = time.perf_counter() - tick
    del vectors
    flat_path = folder / "vectors.faiss"
    flat.save(flat_path)
    batch, truth = batch_qps(flat, queries)
    rows = [Row(flat, {}, {"index": "Flat", "setting": "exact", "build_s": round(build_s, 2), "batch_qps": batch,
                           "recall10": 1.0, "bytes_per_vector": flat_path.stat().st_size / count})]
    for config in CONFIGS:
        rows += build_config(config, flat, flat_path, queries, truth, folder, count, quick=quick)
        gc.collect()
    load = os.getloadavg()[0]
    measure_single(rows, queries, threads=threads)
    load = max(load, os.getloadavg()[0])  # runnable processes on 2 cores: above ~2, others were busy too
    print(f"  load average while measuring single queries: up to {load:.1f}", flush=True)
    figures = [row.figures for row in rows]
    for row in figures:
        print(row_text(row, figures[0]), flush=True)
    searched = {kind: next(r.index for r in rows if r.figures["index"] == name)
                for kind, name in (("hnsw", "HNSW32"), ("ivf", "IVF-Flat"))}
    filtered = run_filtered(flat, searched, queries, count, threads=threads) if largest else []
    return {"vectors": count, "rows": figures, "filtered": filtered, "load_average": load}


def build_config(config: Config, flat: FaissIndex, flat_path: Path, queries: Vectors, truth: np.ndarray,
                 folder: Path, count: int, *, quick: bool) -> list[Row]:
    """Build one index as ingestion does, open it as serving does; batch QPS and recall of each setting."""
    ann_path = folder / f"{config.name}.faiss"
    twin = flat.copy()
    built = twin.save(folder / "twin.faiss", ann_path=ann_path, options=config.options)
    del twin
    (folder / "twin.faiss").unlink()
    gc.collect()
    print(f"  built {config.name} in {built['build_s']:.1f} s", flush=True)
    index = FaissIndex.load(flat_path, gpu="off", ann_path=ann_path, options=config.options)
    rows = []
    for setting in config.sweep if not quick else config.sweep[::2]:
        index.configure(**setting)
        batch, found = batch_qps(index, queries)
        rows.append(Row(index, setting, {
            "index": config.name, "setting": ", ".join(f"{k} {v}" for k, v in setting.items()),
            "build_s": built["build_s"], "batch_qps": batch, "recall10": recall(truth, found),
            "bytes_per_vector": built["bytes"] / count,
            **{k: v for k, v in built.items() if k in ("nlist", "pq_m", "hnsw_m")}, **setting}))
    return rows


def measure_single(rows: list[Row], queries: Vectors, *, threads: int, rounds: int = 5) -> None:
    """Single-query QPS of every row: the best of `rounds` passes over the same 200 queries, the rows taking turns
    within each round so that other processes on these cores disturb them all alike, at 1 and at 2 FAISS threads
    (a Flat search of one query splits over both cores, and stalls when another process holds one of them)."""
    sample = queries[:200]
    for row in rows:
        row.figures.update({"single_qps_1t": 0.0, "single_qps_2t": 0.0})
    for _ in range(rounds):
        for threads in THREAD_CHOICES:
            set_threads(threads)
            for row in rows:
                row.index.configure(**row.setting)
                row.index.search(sample[0], K)
                key = f"single_qps_{threads}t"
                row.figures[key] = max(row.figures[key], single_pass(row.index, sample))
    set_threads(threads)
    for row in rows:
        best = max(THREAD_CHOICES, key=lambda t: row.figures[f"single_qps_{t}t"])
        row.figures.update({"single_qps": row.figures[f"single_qps_{best}t"], "single_threads": best})


def run_filtered(flat: FaissIndex, searched: dict[str, FaissIndex], queries: Vectors, count: int, *,
                 threads: int) -> list[dict[str, Any]]:
    """Filtered search at each share of allowed ids: the Flat with a selector, exact search over the allowed ids'
    vectors, and HNSW and IVF (default ef_search, nprobe) with a selector; recall against the Flat's filtered
    top-10."""
    defaults = AnnOptions()
    for index in searched.values():
        index.configure(ef_search=defaults.ef_search, nprobe=defaults.nprobe)
    rng, rows, sample = np.random.default_rng(7), [], queries[:50]
    print(f"\nfiltered search (ms a query; recall@10 against the exact filtered top-10), HNSW ef_search "
          f"{defaults.ef_search}, IVF nprobe {defaults.nprobe}, default exact_below {defaults.exact_below}:")
    for share in FILTER_SHARES:
        allowed = sorted(rng.choice(count, size=max(1, int(share * count)), replace=False).tolist())
        exact, flat_s = timed(flat, allowed, sample, threads)
        row: dict[str, Any] = {"allowed": len(allowed), "share": share, "flat_ms": flat_s * 1000}
        paths = [("exact", searched["ivf"], 2**62)] if len(allowed) <= EXACT_UP_TO else []
        for path, index, below in [*paths, *((kind, index, 0) for kind, index in searched.items())]:
            index.configure(exact_below=below)
            found, seconds = timed(index, allowed, sample, threads)
            index.configure(exact_below=defaults.exact_below)
            row[f"{path}_ms"] = seconds * 1000
            row[f"{path}_recall10"] = float(np.mean([len({i for i, _ in f} & {i for i, _ in e}) / max(1, len(e))
                                                     for f, e in zip(found, exact, strict=True)]))
        print("  " + "  ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in row.items()),
              flush=True)
        rows.append(row)
    return rows


def timed(index: FaissIndex, allowed: list[int], sample: Vectors, threads: int) -> tuple[list[Any], float]:
    """Results and seconds per query of a filtered search: the best pass of 2 at each thread count."""
    index.search(sample[0], K, allowed_ids=allowed)
    best = float("inf")
    for threads in THREAD_CHOICES:
        set_threads(threads)
        for _ in range(2):
            tick = time.perf_counter()
            found = [index.search(q, K, allowed_ids=allowed) for q in sample]
            best = min(best, (time.perf_counter() - tick) / len(sample))
    set_threads(threads)
    return found, best


def row_text(row: dict[str, Any], base: dict[str, Any]) -> str:
    return (f"  {row['index']:<12} {row['setting']:<22} build {row['build_s']:7.1f} s  single {row['single_qps']:9.1f} "
            f"(x{row['single_qps'] / base['single_qps']:6.1f}, {row['single_threads']}t)  batch {row['batch_qps']:9.1f} "
            f"(x{row['batch_qps'] / base['batch_qps']:6.1f})  recall@10 {row['recall10']:.3f}  "
            f"{row['bytes_per_vector']:7.0f} B/vector")


def store_bytes_per_chunk(index_dir: Path | None) -> dict[str, Any]:
    """chunks.sqlite3 + bm25/ per chunk, of the given index or the sample corpus ingested here with MiniLM."""
    from rag.index import IndexFiles, open_index

    with scratch() as folder:
        if index_dir is None:
            index_dir = folder / "index"
            ingest_sample(index_dir)
        loaded = open_index(index_dir, gpu="off")
        try:
            files = IndexFiles(loaded.root)
            chunks = len(loaded.store)
            store = files.chunks.stat().st_size
            bm25 = sum(p.stat().st_size for p in files.bm25.rglob("*") if p.is_file())
        finally:
            loaded.close()
    return {"chunks": chunks, "sqlite_bytes_per_chunk": store / chunks, "bm25_bytes_per_chunk": bm25 / chunks,
            "store_bytes_per_chunk": (store + bm25) / chunks}


def ingest_sample(index_dir: Path) -> None:
    from ingest.chunking import StructureAwareChunker
    from ingest.job import IngestJob
    from rag.embedders import SentenceTransformerEmbedder
    from rag.settings import Settings

    chunking, embedder = Settings().chunking, SentenceTransformerEmbedder()
    chunker = StructureAwareChunker(count_tokens=embedder.count_tokens, chunk_tokens=chunking.chunk_tokens,
                                    overlap_tokens=chunking.overlap_tokens)
    corpus = Path("samples/corpus")
    IngestJob(embedder=embedder, chunker=chunker, index_dir=index_dir, gpu="off", redactor=None).run(
        sorted(p for p in corpus.iterdir() if p.is_dir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10k,100k,1m", help="comma-separated: 10k, 100k, 1m [default: all]")
    parser.add_argument("--queries", type=int, default=1000, help="held-out queries [default: 1000]")
    parser.add_argument("--threads", type=int, default=2, help="FAISS OpenMP threads [default: 2]")
    parser.add_argument("--quick", action="store_true", help="10k and 100k, every other sweep point")
    parser.add_argument("--store-index", type=Path, help="measure the chunk store of this index instead")
    parser.add_argument("--report", type=Path, help="only write the report again from this results JSON")
    args = parser.parse_args()
    if args.report is not None:
        if not args.report.is_file():
            parser.error(f"--report {args.report}: no such file (give a results JSON, e.g. bench/results/ann.json)")
        report(json.loads(args.report.read_text(encoding="utf-8")))
        return
    set_threads(args.threads)
    sizes = ["10k", "100k"] if args.quick else args.sizes.split(",")
    started, results = time.perf_counter(), {"threads": args.threads, "queries": args.queries, "k": K, "sizes": {}}
    for label in sizes:
        with scratch() as folder:
            results["sizes"][label] = run_size(label, SIZES[label], folder, n_queries=args.queries, threads=args.threads,
                                               quick=args.quick, largest=label == sizes[-1])
    results["store"] = store_bytes_per_chunk(args.store_index)
    results["seconds"] = round(time.perf_counter() - started, 1)
    report(results)


def report(results: dict[str, Any]) -> None:
    from bench._results import markdown_table, write

    store = results["store"]["store_bytes_per_chunk"]
    parts, largest = [], list(results["sizes"])[-1]
    for label, size in results["sizes"].items():
        base = size["rows"][0]
        parts.append(f"### {label} ({size['vectors']:,} vectors; load average up to "
                     f"{size.get('load_average', 0):.1f} while timing single queries)\n\n" + markdown_table(
            ["index", "setting", "build s", "single QPS (threads)", "x Flat", "batch QPS", "x Flat", "recall@10",
             "bytes/vector", "x Flat", "bytes/chunk incl. store"],
            [[r["index"], r["setting"], f"{r['build_s']:.1f}", f"{r['single_qps']:,.0f} ({r['single_threads']})",
              f"{r['single_qps'] / base['single_qps']:.1f}", f"{r['batch_qps']:,.0f}",
              f"{r['batch_qps'] / base['batch_qps']:.1f}", f"{r['recall10']:.3f}", f"{r['bytes_per_vector']:,.0f}",
              f"{r['bytes_per_vector'] / base['bytes_per_vector']:.2f}", f"{r['bytes_per_vector'] + store:,.0f}"]
             for r in size["rows"]]))
        if size["filtered"]:
            parts.append(f"Filtered search at {label}: ms a query (50 queries, allowed ids drawn at random) and recall@10 "
                         "against the exact filtered top-10; `exact` = the allowed ids' vectors from the memory-mapped "
                         "Flat, one matrix product:\n\n" + markdown_table(
                ["allowed ids", "share", "Flat + selector ms", "exact ms", "exact recall", "IVF + selector ms",
                 "IVF recall", "HNSW + selector ms", "HNSW recall"],
                [[f"{r['allowed']:,}", f"{r['share']:.1%}", f"{r['flat_ms']:.2f}", _cell(r, "exact_ms", ".2f"),
                  _cell(r, "exact_recall10", ".3f"), _cell(r, "ivf_ms", ".2f"), _cell(r, "ivf_recall10", ".3f"),
                  f"{r['hnsw_ms']:.2f}", f"{r['hnsw_recall10']:.3f}"]
                 for r in size["filtered"]]))
    parts.append(target_text(results["sizes"][largest], largest))
    if "separated" in results:
        parts.append(separated_text(results["separated"]))
    if results.get("notes"):
        parts.insert(0, "## Findings\n\n" + results["notes"] + "\n\n## Figures")
    s = results["store"]
    parts.insert(0, f"{results['queries']} held-out queries, k = {results['k']}, FAISS on {results['threads']} OpenMP "
                 f"threads. Chunk store: {s['store_bytes_per_chunk']:,.0f} bytes/chunk ({s['sqlite_bytes_per_chunk']:,.0f} "
                 f"SQLite + {s['bm25_bytes_per_chunk']:,.0f} BM25, {s['chunks']} chunks of the sample corpus). "
                 f"Took {results['seconds']:.0f} s.")
    chart = recall_chart(results["sizes"][largest], largest)
    path = write("ann", "Approximate search: recall@10 against QPS", "\n\n".join(parts), results, chart=chart)
    print(f"\n{target_text(results['sizes'][largest], largest)}\nwrote {path}")


def separated_text(size: dict[str, Any]) -> str:
    """The same indexes over strongly separated clusters (an earlier run, kept in the JSON as "separated")."""
    from bench._results import markdown_table

    base = size["rows"][0]
    return (f"### Separated clusters, {size['vectors']:,} vectors\n\n{size['about']}\n\n" + markdown_table(
        ["index", "setting", "build s", "single QPS", "x Flat", "recall@10"],
        [[r["index"], r["setting"], f"{r['build_s']:.1f}", f"{r['single_qps']:,.0f}",
          f"{r['single_qps'] / base['single_qps']:.1f}", f"{r['recall10']:.3f}"] for r in size["rows"]]))


def _cell(row: dict[str, Any], key: str, form: str) -> str:
    return format(row[key], form) if key in row else "-"


def target_text(size: dict[str, Any], label: str) -> str:
    base = size["rows"][0]
    meeting = [r for r in size["rows"][1:] if r["recall10"] >= 0.95 and r["single_qps"] >= 10 * base["single_qps"]]
    listed = "; ".join(f"{r['index']} {r['setting']} (recall {r['recall10']:.3f}, "
                       f"x{r['single_qps'] / base['single_qps']:.0f})" for r in meeting)
    return (f"Target (recall@10 >= 0.95 at >= 10x Flat's single-query QPS) at {label}: "
            + (f"met by {listed}." if meeting else "not met."))


def recall_chart(size: dict[str, Any], label: str) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from bench._results import RESULTS

    figure, axes = plt.subplots(figsize=(7.5, 4.8))
    names = dict.fromkeys(r["index"] for r in size["rows"])
    for name in names:
        rows = sorted((r for r in size["rows"] if r["index"] == name and r.get("refine", 0) in (0, 4)),
                      key=lambda r: r["single_qps"])
        axes.plot([r["single_qps"] for r in rows], [r["recall10"] for r in rows], marker="o", label=name)
    base = size["rows"][0]["single_qps"]
    axes.axvline(10 * base, color="grey", linestyle="--", linewidth=1, label="10x Flat QPS")
    axes.axhline(0.95, color="grey", linestyle=":", linewidth=1, label="recall 0.95")
    axes.set_xscale("log")
    axes.set_xlabel("single-query QPS (log)")
    axes.set_ylabel("recall@10")
    axes.set_title(f"Recall@10 against single-query QPS, {label} vectors")
    axes.legend(fontsize=8)
    figure.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / "ann.png"
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


if __name__ == "__main__":
    main()
