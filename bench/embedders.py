"""Embedding backends side by side: torch fp32 (the baseline), ONNX Runtime fp32/int8, OpenVINO fp32/int8.

    python -m bench.embedders [--variants torch-fp32,onnx-int8] [--batch-sizes 8,16,32,64,128] [--rounds 2]
                              [--threads 0] [--index DIR] [--quick]

example:
    python -m bench.embedders --quick     # batch size 32 only, one round, the sample suite (a few minutes)

Texts: every chunk of the sample corpus (samples/corpus), ingested once with the torch model into a temporary
folder as tests/conftest.py's sample_index does (160-token chunks, PII redacted), or the index given with --index.
Columns, per variant (`<backend>-<precision>`):
  export s       making the variant in an empty cache: onnx-fp32 from the torch weights, onnx-int8 and
                 openvino-fp32 from onnx-fp32, openvino-int8 from openvino-fp32 (each step alone)
  load s         opening it once cached (torch: loading the model), up to the first vector
  docs/s         all chunk texts through embed_documents, at each batch size; best of --rounds, the variants
                 taking turns within a round so machine drift hits all alike
  query p50/p95  embed_query on each question of eval/suites/sample.jsonl alone, variants taking turns
  cosine         mean and lowest cosine of the variant's chunk vectors to torch fp32's
  nDCG@10, recall@10  DENSE retrieval (FAISS over the variant's chunk vectors, questions embedded by it) on
                 eval/suites/sample.jsonl and golden.jsonl, scored by eval.retrieval.evaluate; ratio to torch fp32
A variant is eligible as the default when its nDCG@10 ratio is at least 0.99 on every suite; the recommendation is
the eligible one with the most docs/s. Every runtime gets the same thread count (`rag.threads`, 0 = the cores
this process may use). Writes bench/results/embedders.md and .json (and .png with matplotlib).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from bench._results import bar_chart, markdown_table, write
from eval.retrieval import evaluate
from eval.suite import load_suite
from ingest.chunking import StructureAwareChunker
from ingest.cli import build_redactor
from ingest.job import IngestJob
from rag.index import FaissIndex, LoadedIndex, open_index
from rag.protocols import Embedder, Vectors
from rag.registry import create_embedder
from rag.retrieval import HybridRetriever
from rag.settings import Settings
from rag.threads import configure_threads
from rag.tokenizer import TextTokenizer

MODEL = "all-MiniLM-L6-v2"
BASELINE = "torch-fp32"
VARIANTS = ("torch-fp32", "onnx-fp32", "onnx-int8", "openvino-fp32", "openvino-int8")
BACKENDS = {"torch": "sentence-transformers", "onnx": "onnx", "openvino": "openvino"}
MADE_FROM = {"torch-fp32": "-", "onnx-fp32": "torch weights", "onnx-int8": "onnx-fp32",
             "openvino-fp32": "onnx-fp32", "openvino-int8": "openvino-fp32"}
CORPUS = Path("samples/corpus")
SUITES = {"sample": Path("eval/suites/sample.jsonl"), "golden": Path("eval/suites/golden.jsonl")}
ELIGIBLE_RATIO = 0.99
DEFAULT_BATCH = 32
GAIN = 0.10  # another batch size must beat the default one by 10% (median over rounds), and in every round


@dataclass
class Variant:
    """One backend-precision pair: its embedder at the default batch size, and what was measured."""

    name: str
    threads: int
    cache_dir: Path
    embedder: Embedder | None = None
    export_s: float | None = None
    load_s: float = 0.0
    docs_per_s: dict[int, list[float]] = field(default_factory=dict)
    query_ms: list[float] = field(default_factory=list)
    vectors: Vectors | None = None
    quality: dict[str, dict[str, float]] = field(default_factory=dict)

    def build(self, batch_size: int) -> Embedder:
        backend, precision = self.name.split("-")
        return create_embedder(BACKENDS[backend], model=MODEL, precision=precision, batch_size=batch_size,
                               threads=self.threads, cache_dir=self.cache_dir)

    @property
    def resident(self) -> Embedder:
        assert self.embedder is not None
        return self.embedder

    def best(self, batch: int) -> float:
        return max(self.docs_per_s[batch])

    def relative(self, batch: int) -> list[float]:
        """docs/s at `batch` over docs/s at the default batch size in the same round (minutes apart, not hours)."""
        return [a / b for a, b in zip(self.docs_per_s[batch], self.docs_per_s[DEFAULT_BATCH], strict=True)]

    def batch_size(self, batches: Sequence[int]) -> int:
        """The default batch size unless another is faster in every round and by GAIN at the median."""
        steady = [b for b in batches if min(self.relative(b)) > 1 and statistics.median(self.relative(b)) >= 1 + GAIN]
        return max(steady, key=lambda b: statistics.median(self.relative(b)), default=DEFAULT_BATCH)


def seconds(func: Callable[[], object]) -> float:
    tick = time.perf_counter()
    func()
    return time.perf_counter() - tick


def prepare(names: Sequence[str], threads: int, cache_dir: Path) -> list[Variant]:
    """Each variant made in an empty cache (timed), then opened again from it (timed)."""
    variants = []
    for name in names:
        variant = Variant(name, threads, cache_dir)
        if not name.startswith("torch"):
            variant.export_s = seconds(partial(variant.build(DEFAULT_BATCH).embed_query, "warm-up"))
        variant.embedder = variant.build(DEFAULT_BATCH)
        variant.load_s = seconds(partial(variant.resident.embed_query, "warm-up"))
        variants.append(variant)
        print(f"{name}: export {variant.export_s or 0:.1f} s, load {variant.load_s:.1f} s", flush=True)
    return variants


def rotated(items: Sequence[Variant], turn: int) -> list[Variant]:
    return list(items[turn % len(items):]) + list(items[: turn % len(items)])


def throughput(variants: Sequence[Variant], texts: list[str], batches: Sequence[int], rounds: int) -> None:
    """docs/s per variant and batch size; the variants take turns, in an order that rotates every pass.

    An embedder per batch size other than the default is opened for its pass and dropped after (memory), and
    warmed up first on the batch's longest texts, so its buffers are grown before the clock starts."""
    longest = sorted(texts, key=len, reverse=True)
    turn = 0
    for round_ in range(rounds):
        for batch in batches:
            for variant in rotated(variants, turn):
                embedder = variant.resident if batch == DEFAULT_BATCH else variant.build(batch)
                embedder.embed_documents(longest[:batch])
                tick = time.perf_counter()
                vectors = embedder.embed_documents(texts)
                variant.docs_per_s.setdefault(batch, []).append(len(texts) / (time.perf_counter() - tick))
                if batch == DEFAULT_BATCH or variant.vectors is None:
                    variant.vectors = vectors
                del embedder
            turn += 1
            row = "  ".join(f"{v.name} {v.docs_per_s[batch][-1]:.1f}" for v in variants)
            print(f"round {round_ + 1}, batch {batch}: docs/s {row}", flush=True)


def query_latency(variants: Sequence[Variant], questions: Sequence[str]) -> None:
    for turn, question in enumerate(questions):
        for variant in rotated(variants, turn):
            embedder = variant.resident
            tick = time.perf_counter()
            embedder.embed_query(question)
            variant.query_ms.append((time.perf_counter() - tick) * 1000)


def quality(variants: Sequence[Variant], index: LoadedIndex, ids: list[int], suites: dict[str, Path]) -> None:
    """Cosine to the baseline's vectors, and dense nDCG@10 / recall@10 on each suite with each variant's vectors."""
    base = variants[0].vectors
    assert base is not None
    aliases = index.store.duplicate_groups()
    tokenizer = TextTokenizer.from_settings(index.tokenizer_settings)
    cases = {name: load_suite(path) for name, path in suites.items()}
    for variant in variants:
        assert variant.vectors is not None
        cosines = np.einsum("ij,ij->i", variant.vectors, base)
        variant.quality["cosine"] = {"mean": float(cosines.mean()), "min": float(cosines.min())}
        dense = FaissIndex(dimension=variant.vectors.shape[1], gpu="off")
        dense.add(ids, variant.vectors)
        retriever = HybridRetriever(embedder=variant.resident, vectors=dense, store=index.store,
                                    lexical=index.lexical, tokenizer=tokenizer, mode="dense")
        for suite, suite_cases in cases.items():
            metrics = evaluate({"dense": retriever}, suite_cases, k=10, aliases=aliases).modes["dense"].metrics()
            variant.quality[suite] = {"ndcg@10": float(metrics["ndcg@10"] or 0.0),
                                      "recall@10": float(metrics["recall@10"] or 0.0)}


def sample_texts(given: Path | None, scratch: Path) -> tuple[LoadedIndex, list[int], list[str]]:
    """The chunk ids and texts of the sample corpus's index (ingested now with the torch model unless given)."""
    index_dir = given
    if index_dir is None:
        index_dir = scratch / "index"
        torch = Variant(BASELINE, 0, scratch).build(DEFAULT_BATCH)
        chunker = StructureAwareChunker(count_tokens=torch.count_tokens, chunk_tokens=160, overlap_tokens=24)
        took = seconds(lambda: IngestJob(embedder=torch, chunker=chunker, index_dir=index_dir, gpu="off",
                                         redactor=build_redactor(Settings())).run(sorted(
                                             p for p in CORPUS.iterdir() if p.is_dir())))
        print(f"ingested {CORPUS} with {MODEL} (torch) in {took:.0f} s", flush=True)
    index = open_index(index_dir, gpu="off")
    chunks = index.store.all()
    return index, [c.id for c in chunks], [c.text for c in chunks]


def summary(variants: Sequence[Variant], batches: Sequence[int]) -> dict[str, Any]:
    """Every figure per variant, ratios to the baseline, eligibility, per-variant batch size and the pick."""
    base = variants[0]
    rows: dict[str, Any] = {}
    for variant in variants:
        best_batch = variant.batch_size(batches)
        ratios = {suite: {metric: _ratio(value, base.quality[suite][metric]) for metric, value in figures.items()}
                  for suite, figures in variant.quality.items() if suite != "cosine"}
        rows[variant.name] = {
            "made_from": MADE_FROM.get(variant.name, "-"), "export_s": variant.export_s, "load_s": variant.load_s,
            "docs_per_s": {str(b): variant.best(b) for b in batches}, "docs_per_s_runs": variant.docs_per_s,
            "batch_size": best_batch, "docs_per_s_at_batch": variant.best(best_batch),
            "relative_to_default_batch": {str(b): statistics.median(variant.relative(b)) for b in batches},
            "speedup": variant.best(best_batch) / base.best(base.batch_size(batches)),
            "query_p50_ms": statistics.median(variant.query_ms),
            "query_p95_ms": float(np.percentile(variant.query_ms, 95)),
            "quality": variant.quality, "ratios": ratios,
            "eligible": variant is base or all(r["ndcg@10"] >= ELIGIBLE_RATIO for r in ratios.values()),
        }
    for row in rows.values():
        row["query_p50_ratio"] = row["query_p50_ms"] / rows[base.name]["query_p50_ms"]
    eligible = [name for name, row in rows.items() if row["eligible"]]
    return {"variants": rows, "recommended": max(eligible, key=lambda n: rows[n]["docs_per_s_at_batch"])}


def _ratio(value: float, base: float) -> float:
    return value / base if base else float("nan")


def tables(result: dict[str, Any], batches: Sequence[int]) -> str:
    rows = result["variants"]
    speed = markdown_table(
        ["variant", "made from", "export s", "load s", "batch", "docs/s", "x torch", "query p50 ms", "p95 ms",
         "x torch p50"],
        [[name, r["made_from"], "-" if r["export_s"] is None else f"{r['export_s']:.1f}", f"{r['load_s']:.1f}",
          r["batch_size"], f"{r['docs_per_s_at_batch']:.1f}", f"{r['speedup']:.2f}", f"{r['query_p50_ms']:.1f}",
          f"{r['query_p95_ms']:.1f}", f"{r['query_p50_ratio']:.2f}"] for name, r in rows.items()])
    suites = [s for s in next(iter(rows.values()))["quality"] if s != "cosine"]
    quality = markdown_table(
        ["variant", "cosine mean / min", *[f"{s} {m}" for s in suites for m in ("nDCG@10 (ratio)", "recall@10 (ratio)")],
         "eligible"],
        [[name, f"{r['quality']['cosine']['mean']:.5f} / {r['quality']['cosine']['min']:.4f}",
          *[f"{r['quality'][s][m]:.4f} ({r['ratios'][s][m]:.3f})" for s in suites for m in ("ndcg@10", "recall@10")],
          "yes" if r["eligible"] else "no"] for name, r in rows.items()])
    sizes = markdown_table(["variant", *[f"batch {b}" for b in batches], "default"],
                           [[name, *[f"{r['docs_per_s'][str(b)]:.1f} ({r['relative_to_default_batch'][str(b)]:.2f})"
                                     for b in batches], r["batch_size"]] for name, r in rows.items()])
    load = result["load_average"]
    speed_note = (f"**Speed** (docs/s at the variant's default batch size, best of {result['rounds']} rounds; "
                  f"{result['texts']} chunk texts; {result['threads']} threads; 1-minute load average "
                  f"{load['before']:.1f} before, {load['after']:.1f} after)")
    quality_note = ("**Quality** (dense retrieval, k=10; ratio to torch fp32; eligible: nDCG@10 ratio >= "
                    f"{ELIGIBLE_RATIO} on every suite)")
    sizes_note = (f"**docs/s by batch size** (best of the rounds; in brackets the median over rounds of docs/s "
                  f"relative to batch {DEFAULT_BATCH} in the same round. Another batch size becomes a variant's default "
                  f"only when it is faster in every round and by {GAIN:.0%} at the median)")
    return "\n\n".join([speed_note, speed, quality_note, quality, sizes_note, sizes])


def report(result: dict[str, Any], batches: Sequence[int]) -> None:
    body = tables(result, batches)
    pick = result["recommended"]
    row = result["variants"][pick]
    verdict = (f"Recommended default: **{pick}** (the fastest eligible: {row['docs_per_s_at_batch']:.1f} docs/s, "
               f"{row['speedup']:.2f}x torch fp32; query p50 {row['query_p50_ms']:.1f} ms), batch size {row['batch_size']}.")
    print(f"\n{body}\n\n{verdict}")
    chart = bar_chart("embedders", "Embedding docs/s by backend", list(result["variants"]),
                      [r["docs_per_s_at_batch"] for r in result["variants"].values()], "docs/s")
    path = write("embedders", f"Embedding backends: {MODEL} on the sample corpus", f"{body}\n\n{verdict}", result,
                 chart=chart)
    print(f"wrote {path} and {path.with_suffix('.json').name}")


def parse_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.embedders", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="backend-precision pairs; torch-fp32 first")
    parser.add_argument("--batch-sizes", default="8,16,32,64,128", help="[default: 8,16,32,64,128]")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the texts per batch size [default: 2]")
    parser.add_argument("--threads", type=int, default=0, help="threads for every runtime; 0 = the cores [default: 0]")
    parser.add_argument("--index", type=Path, help="an index of the sample corpus [default: ingest it now]")
    parser.add_argument("--quick", action="store_true", help="batch size 32, one round, the sample suite only")
    args = parser.parse_args()
    names = [BASELINE, *[n for n in parse_list(args.variants) if n != BASELINE]]
    batches = [DEFAULT_BATCH] if args.quick else sorted({int(b) for b in parse_list(args.batch_sizes)} | {DEFAULT_BATCH})
    rounds = 1 if args.quick else args.rounds
    suites = {"sample": SUITES["sample"]} if args.quick else SUITES
    threads = configure_threads(args.threads)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-embedders-") as scratch:
        index, ids, texts = sample_texts(args.index, Path(scratch))
        variants = prepare(names, threads, Path(scratch) / "cache")
        throughput(variants, texts, batches, rounds)
        questions = [case.question for case in load_suite(SUITES["sample"])]
        query_latency(variants, questions)
        quality(variants, index, ids, suites)
        index.close()
    result = {"model": MODEL, "texts": len(texts), "questions": len(questions), "threads": threads, "rounds": rounds,
              "batch_sizes": batches, "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
              **summary(variants, batches)}
    report(result, batches)


if __name__ == "__main__":
    main()
