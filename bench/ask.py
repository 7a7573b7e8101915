"""What /ask costs beyond the model, over HTTP against a real uvicorn, next to embedding + search alone.

    python -m bench.ask [--index data/index] [--questions 135] [--threads 1]

The service: `rag serve` as a subprocess (real uvicorn, JSON logs, API key, the real all-MiniLM-L6-v2) over
the sample corpus ingested as the tests' `sample_index` does (real model, unstructured, Presidio, 160-token
chunks) into a temporary folder, or --index, or data/index when it was built with MiniLM; the scripted
OpenAI-compatible LLM in this process, answering at once. One client, one keep-alive connection, one question
at a time: no queueing, so every figure is a cost, not a wait. Threads: torch and faiss get 1 thread in both
processes by default (--threads; 0 = the libraries' own): with more, the server's OpenMP threads still
spinning after an answer and this process's fight over the 2 cores (the in-process p90 went to ~400 ms).
Questions: eval/suites/sample.jsonl, in order. Each round asks the same question both ways, in an order that
alternates, after a warm-up round of each.

Rows (median and p90 over the questions):
  embed + search       build_retriever(settings).retrieve(q, top_k=4) in this process            (baseline)
  server retrieve      /ask's timings_ms["retrieve"]: the same work in the server, via its worker thread
  server minus LLM     the server's access-log duration of the request (middleware in to last byte out)
                       minus timings_ms generate + condense: auth, rate limit, validation, retrieval,
                       prompt, verification, storing the turn, the response
  HTTP minus LLM       the client's wall time minus generate + condense: what a caller waits beyond the
                       model (the overhead)
  HTTP GET /health     a request through uvicorn and the middleware that does no work
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss  # type: ignore[import-untyped]  # only to set its thread count, as bench/retrieval.py does
import httpx
import torch

from bench.load import Service, served
from rag.factory import build_retriever
from rag.retrieval import HybridRetriever
from rag.settings import Settings
from rag.testing import ScriptedOpenAIServer

SUITE = Path("eval/suites/sample.jsonl")
CORPUS = Path("samples/corpus")
MINILM = "all-MiniLM-L6-v2"
TOP_K = 4
BASELINE = "embed + search"
OVERHEAD = "HTTP minus LLM"
Samples = dict[str, list[float]]


def load_questions(limit: int | None) -> list[str]:
    lines = [line for line in SUITE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line)["question"] for line in lines][:limit]


def pick_index(given: Path | None, scratch: Path) -> Path:
    """--index, else data/index if MiniLM built it, else the sample corpus ingested now."""
    from rag.index import open_index

    if given is not None:
        return given
    default = Path("data/index")
    if default.exists():
        index = open_index(default, gpu="off")
        model = index.embedding_model
        index.close()
        if model == MINILM:
            print(f"using {default} (built with {model})")
            return default
    return ingest_sample(scratch)


def ingest_sample(scratch: Path) -> Path:
    """The sample corpus as tests/conftest.py's `sample_index` builds it: MiniLM, Presidio, 160-token chunks."""
    from ingest.chunking import StructureAwareChunker
    from ingest.cli import build_redactor
    from ingest.job import IngestJob
    from rag.embedders import SentenceTransformerEmbedder

    tick = time.perf_counter()
    embedder, settings = SentenceTransformerEmbedder(), Settings()
    chunker = StructureAwareChunker(count_tokens=embedder.count_tokens, chunk_tokens=settings.chunking.chunk_tokens,
                                    overlap_tokens=settings.chunking.overlap_tokens)
    index_dir = scratch / "index"
    IngestJob(embedder=embedder, chunker=chunker, index_dir=index_dir, gpu="off", redactor=build_redactor(settings),
              ).run(sorted(p for p in CORPUS.iterdir() if p.is_dir()))
    print(f"ingested {CORPUS} with MiniLM in {time.perf_counter() - tick:.1f} s", flush=True)
    return index_dir


def ask_once(client: httpx.Client, service: Service, question: str, samples: Samples, llm_of: dict[str, float]) -> None:
    """One /ask; records the client's time minus the LLM's, the server's retrieve stage, the LLM time by request id."""
    tick = time.perf_counter()
    reply = client.post(f"{service.url}/ask", json={"question": question})
    wall = (time.perf_counter() - tick) * 1000
    if reply.status_code != 200:
        raise RuntimeError(f"/ask answered {reply.status_code}: {reply.text[:300]}")
    timings = reply.json()["timings_ms"]
    llm = timings.get("generate", 0.0) + timings.get("condense", 0.0)
    samples[OVERHEAD].append(wall - llm)
    samples["server retrieve"].append(timings["retrieve"])
    llm_of[reply.headers["x-request-id"]] = llm


def search_once(retriever: HybridRetriever, question: str, samples: Samples) -> None:
    tick = time.perf_counter()
    retriever.retrieve(question, top_k=TOP_K)
    samples[BASELINE].append((time.perf_counter() - tick) * 1000)


def health_once(client: httpx.Client, service: Service, samples: Samples) -> None:
    tick = time.perf_counter()
    client.get(f"{service.url}/health").raise_for_status()
    samples["HTTP GET /health"].append((time.perf_counter() - tick) * 1000)


def measure(service: Service, retriever: HybridRetriever, questions: Sequence[str]) -> tuple[Samples, dict[str, float]]:
    """Each question over HTTP and in process, alternating which goes first; a warm-up round first."""
    samples: Samples = {name: [] for name in (BASELINE, "server retrieve", OVERHEAD, "HTTP GET /health")}
    llm_of: dict[str, float] = {}
    with httpx.Client(headers=service.headers, timeout=60) as client:
        ask_once(client, service, questions[-1], {name: [] for name in samples}, {})
        search_once(retriever, questions[-1], {BASELINE: []})
        for n, question in enumerate(questions):
            if n % 2:
                search_once(retriever, question, samples)
            ask_once(client, service, question, samples, llm_of)
            if not n % 2:
                search_once(retriever, question, samples)
            health_once(client, service, samples)
    return samples, llm_of


def server_minus_llm(log: Path, llm_of: dict[str, float]) -> list[float]:
    """From the server's access log: each timed /ask's duration minus its LLM time."""
    durations: list[float] = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        if record.get("logger") == "rag.access" and record.get("request_id") in llm_of:
            durations.append(record["duration_ms"] - llm_of[record["request_id"]])
    return durations


def p90(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def report(samples: Samples, questions: int, llm_ms: Sequence[float]) -> None:
    base = samples[BASELINE]
    print(f"\n{'row':<28}{'median ms':>11}{'p90 ms':>9}{'x base med':>12}{'x base p90':>12}")
    for name, values in samples.items():
        label = f"{name} (baseline)" if name == BASELINE else name
        print(f"{label:<28}{statistics.median(values):>11.2f}{p90(values):>9.2f}"
              f"{statistics.median(values) / statistics.median(base):>12.2f}{p90(values) / p90(base):>12.2f}")
    over = samples[OVERHEAD]
    print(f"\noverhead / (embed + search): {statistics.median(over) / statistics.median(base):.2f} at the median, "
          f"{p90(over) / p90(base):.2f} at p90; {questions} questions, scripted LLM median "
          f"{statistics.median(llm_ms):.1f} ms (subtracted)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ask", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an index built with MiniLM [default: data/index or ingest]")
    parser.add_argument("--questions", type=int, help="the first N questions of the suite [default: all]")
    parser.add_argument("--threads", type=int, default=1, help="torch and faiss threads, here and in the server, "
                        "0 for the libraries' own [default: 1]")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # the server's
    started, questions = time.perf_counter(), load_questions(args.questions)
    with tempfile.TemporaryDirectory(prefix="bench-ask-") as folder, ScriptedOpenAIServer() as llm:
        scratch = Path(folder)
        index_dir = pick_index(args.index, scratch)
        retriever, loaded = build_retriever(Settings(index={"dir": index_dir}, embedding={"model": MINILM}))
        with served(index_dir, llm.base_url, scratch, embedder="minilm") as service:
            samples, llm_of = measure(service, retriever, questions)
        loaded.close()
        samples["server minus LLM"] = server_minus_llm(service.log, llm_of)
    order = (BASELINE, "server retrieve", "server minus LLM", OVERHEAD, "HTTP GET /health")
    report({name: samples[name] for name in order}, len(questions), list(llm_of.values()))
    print(f"{os.cpu_count()} cores; server and this process on the same machine; torch {torch.get_num_threads()} "
          f"and faiss {faiss.omp_get_max_threads()} threads; total run {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
