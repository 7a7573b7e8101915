"""Retrieval latency, ours against LangChain's FAISS vector store, over the same vectors in one run.

    python -m bench.retrieval [--index data/index] [--sizes sample,100k] [--queries 60] [--seed 0] [--json FILE]

example:
    python -m bench.retrieval --sizes sample,100k --queries 60 --json retrieval.json
    python -m bench.retrieval --index data/index --sizes sample --threads 0   # the libraries' own thread counts

Threads default to 1 (torch and faiss): on a busy machine a call split over every core waits for the core
another process holds (MiniLM went from ~15 ms to ~500 ms a question on 2 shared cores, and swung between
the two within a run), which drowns the difference being measured. One thread per query is also what a
service with one worker per core runs.

Sizes:
  sample  the sample corpus (samples/corpus/{docs,policies,tickets}) ingested by IngestJob with the real
          all-MiniLM-L6-v2 model into a temporary folder, or the index given with --index
  100k    100,000 synthetic chunks (any "<n>k" works). Embedding them with MiniLM would take about an hour on
          a 2-core machine, so their vectors are random unit vectors (float32, seeded, 384-d like MiniLM's);
          their texts are 60-120 words drawn from the sample corpus's vocabulary with a Zipf law (realistic
          BM25 posting lists), and 1% of them copy a real sample chunk's text so the questions match words.
          Dense hits are meaningless at this size; the timings are not.
Questions: eval/suites/sample.jsonl, cycled. At both sizes the query embedding is REAL: MiniLM embeds each
question at query time, in both systems, through the same SentenceTransformerEmbedder instance.

Rows (p50 and p95 over the queries after a warm-up; every row runs on each question in turn, in an order
that rotates per question, so machine noise hits all alike):
  langchain             FAISS.similarity_search(q, k=4) over an IndexFlatIP of the same vectors   (baseline)
  ours hybrid           HybridRetriever.retrieve(q, top_k=4): embed + FAISS + BM25 + RRF + chunk fetch
  ours dense            the same in mode="dense": hybrid minus dense is what BM25 and fusion cost
  ours hybrid+policy filter  with Filters(doc_types=("policy",)), applied in SQL before both searches
  ours hybrid, <default backend>  ours hybrid with the service's default embedder (RAG_EMBEDDING__* defaults:
          OpenVINO int8) embedding the question, over the same index: what a question costs as shipped
Search only: the same rows with the question's vector computed beforehand (ours through an embedder that
returns it, LangChain's similarity_search_by_vector), against LangChain's by-vector search as baseline.
Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss  # type: ignore[import-untyped]  # bench builds the baseline's own index, outside rag's adapter
import numpy as np
import torch
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from ingest.chunking import StructureAwareChunker
from ingest.job import IngestJob
from rag.embedders import SentenceTransformerEmbedder
from rag.index import Bm25Index, ChunkStore, FaissIndex, gpu_count, open_index
from rag.protocols import Embedder, Vectors
from rag.registry import create_embedder
from rag.retrieval import HybridRetriever, RetrievalMode
from rag.settings import EmbeddingSettings
from rag.threads import available_cores
from rag.tokenizer import TextTokenizer
from rag.types import DOC_TYPES, Chunk, DocType, Filters

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # langchain-community announces its sunset
    from langchain_community.docstore.in_memory import InMemoryDocstore
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

TOP_K = 4
POLICY = Filters(doc_types=("policy",))
SUITE = Path("eval/suites/sample.jsonl")
CORPUS = Path("samples/corpus")
END_TO_END, SEARCH_ONLY = "query embedding + search", "search only (query vector precomputed)"
BASELINE = "langchain"
Case = Callable[[str], object]
Factory = Callable[[Embedder, RetrievalMode], HybridRetriever]


class LangChainEmbeddings(Embeddings):
    """LangChain's view of our embedder instance: the same model, lists of floats."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        rows: list[list[float]] = self._embedder.embed_documents(texts).tolist()
        return rows

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = self._embedder.embed_query(text).tolist()
        return vector


class PrecomputedEmbedder:
    """Our embedder with the questions' vectors computed beforehand, to time the search without the model."""

    def __init__(self, embedder: Embedder, questions: Sequence[str]) -> None:
        self._embedder = embedder
        self._vectors = {question: embedder.embed_query(question) for question in dict.fromkeys(questions)}
        self._lists: dict[str, list[float]] = {q: v.tolist() for q, v in self._vectors.items()}

    @property
    def name(self) -> str:
        return self._embedder.name

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    @property
    def max_tokens(self) -> int:
        return self._embedder.max_tokens

    def count_tokens(self, text: str) -> int:
        return self._embedder.count_tokens(text)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._embedder.embed_documents(texts)

    def embed_query(self, text: str) -> Vectors:
        vector = self._vectors.get(text)
        return vector if vector is not None else self._embedder.embed_query(text)

    def as_list(self, text: str) -> list[float]:
        """The precomputed vector as LangChain takes it."""
        return self._lists[text]


@dataclass(slots=True)
class Corpus:
    """One size's searchable pieces: ours through `make`, and what LangChain's store is built from."""

    make: Factory
    dense: FaissIndex
    chunks: list[Chunk]
    matrix: Vectors  # one row per chunk, in `chunks` order
    build_s: dict[str, float]


def load_questions(path: Path = SUITE) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def sample_index(embedder: SentenceTransformerEmbedder, given: Path | None, scratch: Path) -> Path:
    """The index to use at the sample size: --index, or the sample corpus ingested now."""
    if given is not None:
        return given
    tick = time.perf_counter()
    index_dir = scratch / "sample-index"
    job = IngestJob(embedder=embedder, index_dir=index_dir, gpu="off",
                    chunker=StructureAwareChunker(count_tokens=embedder.count_tokens))
    job.run(sorted(p for p in CORPUS.iterdir() if p.is_dir()))
    print(f"ingested {CORPUS} with MiniLM in {time.perf_counter() - tick:.1f} s", flush=True)
    return index_dir


def sample_corpus(index_dir: Path) -> Corpus:
    index = open_index(index_dir, gpu="off")
    chunks = index.store.all()
    matrix = index.vectors.vectors_of([c.id for c in chunks])

    def make(embedder: Embedder, mode: RetrievalMode) -> HybridRetriever:
        return HybridRetriever.over(index, embedder=embedder, mode=mode)

    return Corpus(make, index.vectors, chunks, matrix, {})


def vocabulary(chunks: Sequence[Chunk]) -> list[str]:
    """The sample corpus's (Latin-script) words, most frequent first."""
    counts = Counter(word for chunk in chunks for word in re.findall(r"[a-z][a-z']*", chunk.text.casefold()))
    return [word for word, _ in counts.most_common()]


def synthetic_chunks(real: Sequence[Chunk], n: int, rng: np.random.Generator) -> list[Chunk]:
    """n chunks, 8 per document: Zipf-sampled words, 1% copying a real chunk's text."""
    words = np.asarray(vocabulary(real), dtype=object)
    zipf = 1.0 / np.arange(1, len(words) + 1) ** 1.07
    lengths = rng.integers(60, 121, size=n)
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=zipf / zipf.sum())
    ends = np.cumsum(lengths)
    texts = [" ".join(words[drawn[end - length:end]]) for end, length in zip(ends, lengths, strict=True)]
    for row in rng.choice(n, size=max(1, n // 100), replace=False):
        texts[row] = real[int(rng.integers(len(real)))].text
    shares = Counter(c.doc_type for c in real)
    kinds: list[DocType] = [kind for kind in DOC_TYPES if shares[kind]]
    doc_kinds = rng.choice(len(kinds), size=n // 8 + 1, p=np.asarray([shares[k] for k in kinds]) / len(real))
    products = sorted({str(c.metadata["product"]) for c in real if c.metadata.get("product")}) or [""]
    doc_products = rng.integers(len(products), size=n // 8 + 1)
    return [Chunk(id=i, text=text, source=f"synthetic/doc-{i // 8}.txt", title=f"Synthetic document {i // 8}",
                  doc_type=kinds[doc_kinds[i // 8]], metadata={"product": products[doc_products[i // 8]]})
            for i, text in enumerate(texts)]


def timed(seconds: dict[str, float], name: str, func: Callable[[], Any]) -> Any:
    tick = time.perf_counter()
    result = func()
    seconds[name] = time.perf_counter() - tick
    return result


def synthetic_corpus(real: Sequence[Chunk], n: int, seed: int, folder: Path, dimension: int) -> Corpus:
    """A synthetic index of n chunks, built piece by piece as IngestJob would, each step timed."""
    rng = np.random.default_rng(seed)
    build: dict[str, float] = {}
    chunks: list[Chunk] = timed(build, "texts", lambda: synthetic_chunks(real, n, rng))
    matrix = rng.standard_normal((n, dimension), dtype=np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    ids = [c.id for c in chunks]
    tokenizer = TextTokenizer()
    terms = timed(build, "tokenise", lambda: [tokenizer.tokens(c.text) for c in chunks])
    lexical = timed(build, "bm25 build", lambda: Bm25Index.build(ids, terms))
    dense = FaissIndex(dimension=dimension, gpu="off")
    timed(build, "faiss add", lambda: dense.add(ids, matrix))
    store = ChunkStore(folder / "chunks.sqlite3", create=True)
    timed(build, "chunk store", lambda: store.add(chunks))

    def make(embedder: Embedder, mode: RetrievalMode) -> HybridRetriever:
        return HybridRetriever(embedder=embedder, vectors=dense, store=store, lexical=lexical,
                               tokenizer=tokenizer, mode=mode)

    return Corpus(make, dense, chunks, matrix, build)


def langchain_store(embedder: Embedder, corpus: Corpus) -> FAISS:
    """LangChain's FAISS vector store over the same vectors and texts, as `FAISS.from_documents` lays it out."""
    flat = faiss.IndexFlatIP(corpus.matrix.shape[1])
    flat.add(np.ascontiguousarray(corpus.matrix, dtype=np.float32))
    documents = {str(c.id): Document(id=str(c.id), page_content=c.text, metadata={"source": c.source, "doc_type": c.doc_type,
                                                                    **c.metadata}) for c in corpus.chunks}
    return FAISS(embedding_function=LangChainEmbeddings(embedder), index=flat, docstore=InMemoryDocstore(documents),
                 index_to_docstore_id={row: str(c.id) for row, c in enumerate(corpus.chunks)},
                 distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)


def check_same_vectors(corpus: Corpus, chain: FAISS, cached: PrecomputedEmbedder, question: str) -> None:
    """Both stores must return the same nearest chunks for a question, or the comparison is void."""
    ours = [str(i) for i, _ in corpus.dense.search(cached.embed_query(question), TOP_K)]
    theirs = [doc.id for doc in chain.similarity_search_by_vector(cached.as_list(question), k=TOP_K)]
    if ours != theirs:
        raise AssertionError(f"our FAISS and LangChain's disagree on {question!r}: {ours} vs {theirs}")


def cases(corpus: Corpus, chain: FAISS, embedder: Embedder, cached: PrecomputedEmbedder,
          default: Embedder) -> dict[tuple[str, str], Case]:
    """Every timed call, keyed by (group, system); each group's baseline is LangChain."""
    result: dict[tuple[str, str], Case] = {}
    for group, source in ((END_TO_END, embedder), (SEARCH_ONLY, cached)):
        hybrid, dense = corpus.make(source, "hybrid"), corpus.make(source, "dense")
        if group == END_TO_END:
            result[group, BASELINE] = lambda q: chain.similarity_search(q, k=TOP_K)
        else:
            result[group, BASELINE] = lambda q: chain.similarity_search_by_vector(cached.as_list(q), k=TOP_K)
        result[group, "ours hybrid"] = retrieving(hybrid)
        result[group, "ours dense"] = retrieving(dense)
        result[group, "ours hybrid+policy filter"] = retrieving(hybrid, POLICY)
    result[END_TO_END, f"ours hybrid, {_variant(default)}"] = retrieving(corpus.make(default, "hybrid"))
    return result


def _variant(embedder: Embedder) -> str:
    return str(getattr(embedder, "variant", type(embedder).__name__))


def retrieving(retriever: HybridRetriever, filters: Filters | None = None) -> Case:
    return lambda question: retriever.retrieve(question, top_k=TOP_K, filters=filters)


def latencies_ms(timed_cases: dict[tuple[str, str], Case], questions: Sequence[str],
                 queries: int) -> dict[tuple[str, str], list[float]]:
    """Each case on each question in turn, in an order rotating per question; after one warm-up call each."""
    names = list(timed_cases)
    for name in names:
        timed_cases[name](questions[-1])
    samples: dict[tuple[str, str], list[float]] = {name: [] for name in names}
    for run in range(queries):
        question = questions[run % len(questions)]
        for name in names[run % len(names):] + names[: run % len(names)]:
            tick = time.perf_counter()
            timed_cases[name](question)
            samples[name].append((time.perf_counter() - tick) * 1000)
    return samples


def summarise(samples: dict[tuple[str, str], list[float]]) -> dict[str, dict[str, dict[str, float]]]:
    """p50/p95 per system and the ratio to its group's LangChain baseline."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for (group, system), values in samples.items():
        table.setdefault(group, {})[system] = {"p50_ms": statistics.median(values),
                                               "p95_ms": float(np.percentile(values, 95))}
    for rows in table.values():
        base = rows[BASELINE]
        for row in rows.values():
            row["ratio_p50"] = row["p50_ms"] / base["p50_ms"]
            row["ratio_p95"] = row["p95_ms"] / base["p95_ms"]
    return table


def print_table(label: str, chunks: int, queries: int, table: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"\n== {label}: {chunks:,} chunks, {queries} queries ==")
    for group, rows in table.items():
        print(f"{group:<44}{'p50 ms':>9}{'p95 ms':>9}{'x LC p50':>10}{'x LC p95':>10}")
        for system, row in rows.items():
            name = f"  {system}{' (baseline)' if system == BASELINE else ''}"
            print(f"{name:<44}{row['p50_ms']:>9.2f}{row['p95_ms']:>9.2f}{row['ratio_p50']:>10.2f}{row['ratio_p95']:>10.2f}")


def machine(embedder: SentenceTransformerEmbedder) -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.M)
        cpu = names[0].strip() if names else cpu
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cores": os.cpu_count(), "cpu": cpu, "gpu": gpu, "embedder_device": embedder.device,
            "faiss_gpus": gpu_count(), "torch_threads": torch.get_num_threads(),
            "faiss_threads": faiss.omp_get_max_threads()}


def parse_sizes(text: str) -> list[tuple[str, int | None]]:
    """"sample,100k" -> [("sample", None), ("100k", 100000)]."""
    sizes: list[tuple[str, int | None]] = []
    for name in (part.strip() for part in text.split(",") if part.strip()):
        match = re.fullmatch(r"(\d+)k", name)
        if name != "sample" and match is None:
            raise argparse.ArgumentTypeError(f"unknown size {name!r}: use sample or <n>k, e.g. sample,100k")
        sizes.append((name, int(match.group(1)) * 1000 if match else None))
    return sizes


def run_size(corpus: Corpus, embedder: Embedder, questions: Sequence[str], queries: int,
             default: Embedder) -> dict[str, Any]:
    chain = langchain_store(embedder, corpus)
    cached = PrecomputedEmbedder(embedder, [questions[i % len(questions)] for i in range(queries)] + [questions[-1]])
    check_same_vectors(corpus, chain, cached, questions[0])
    table = summarise(latencies_ms(cases(corpus, chain, embedder, cached, default), questions, queries))
    return {"chunks": len(corpus.chunks), "queries": queries, "build_s": corpus.build_s, "table": table}


def print_build(label: str, build: dict[str, float]) -> None:
    if not build:
        return
    index_s = build["tokenise"] + build["bm25 build"] + build["faiss add"]
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in build.items())
    print(f"{label} synthetic index built in {index_s:.1f} s (tokenise + BM25 build + FAISS add); {parts}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an index built with the MiniLM model [default: ingest the samples]")
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("sample,100k"), help="[default: sample,100k]")
    parser.add_argument("--queries", type=int, default=60, help="timed queries per size, suite cycled [default: 60]")
    parser.add_argument("--seed", type=int, default=0, help="seeds the synthetic chunks and vectors [default: 0]")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and faiss threads, 0 for the libraries' own [default: 1]")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--markdown", action="store_true", help="also write bench/results/retrieval.md (and .json)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder()
    embedder.embed_query("warm-up")  # the model loads once, before anything is timed
    options = EmbeddingSettings()
    default = create_embedder(options.backend, precision=options.precision, batch_size=options.batch_size,
                              threads=args.threads or available_cores(), cache_dir=options.cache_dir.expanduser())
    default.embed_query("warm-up")  # exported once into the cache if needed, loaded, before anything is timed
    questions = load_questions()
    results: dict[str, Any] = {"machine": machine(embedder), "seed": args.seed, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as scratch:
        sample = sample_corpus(sample_index(embedder, args.index, Path(scratch)))
        for label, n in args.sizes:
            corpus = sample if n is None else synthetic_corpus(sample.chunks, n, args.seed, Path(scratch),
                                                               embedder.dimension)
            print_build(label, corpus.build_s)
            results["sizes"][label] = run_size(corpus, embedder, questions, args.queries, default)
            print_table(label, len(corpus.chunks), args.queries, results["sizes"][label]["table"])
    report(results, time.perf_counter() - started, args.json)
    if args.markdown:
        write_markdown(results)


def write_markdown(results: dict[str, Any]) -> None:
    """The tables as Markdown in bench/results/retrieval.md, with the machine described."""
    from bench._results import bar_chart, markdown_table, write

    parts = []
    for label, size in results["sizes"].items():
        for group, rows in size["table"].items():
            parts.append(f"**{label}, {group}**\n\n" + markdown_table(
                ["system", "p50 ms", "p95 ms", "x LangChain p50", "x LangChain p95"],
                [[system + (" (baseline)" if system == BASELINE else ""), f"{row['p50_ms']:.2f}", f"{row['p95_ms']:.2f}",
                  f"{row['ratio_p50']:.2f}", f"{row['ratio_p95']:.2f}"] for system, row in rows.items()]))
    first = next(iter(results["sizes"]))
    rows = results["sizes"][first]["table"][END_TO_END]
    chart = bar_chart("retrieval", f"Question to top-{TOP_K} passages, p50 ms ({first})", list(rows),
                      [row["p50_ms"] for row in rows.values()], "ms (lower is better)")
    write("retrieval", "Query embedding + search: ours vs LangChain similarity_search", "\n\n".join(parts), results,
          chart=chart)


def report(results: dict[str, Any], total_s: float, path: Path | None) -> None:
    info = results["machine"]
    print(f"\nmachine: {info['cores']} cores ({info['cpu']}), GPU: {info['gpu']}; MiniLM on {info['embedder_device']}, "
          f"faiss CPU ({info['faiss_threads']} threads), torch {info['torch_threads']} threads")
    print("synthetic sizes: random unit vectors and Zipf-sampled texts; the query embedding is real MiniLM at every size")
    summary = "; ".join(
        f"{label} {sizes['table'][END_TO_END]['ours hybrid']['ratio_p50']:.2f}x "
        f"(search only {sizes['table'][SEARCH_ONLY]['ours hybrid']['ratio_p50']:.2f}x)"
        for label, sizes in results["sizes"].items())
    print(f"ours hybrid / langchain p50: {summary}; total run {total_s:.0f} s")
    results["total_s"] = total_s
    if path is not None:
        path.write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
