"""What the query path costs around the model, measured against baselines in the same run.

    python -m bench.query_overhead [--index data/index] [--queries 40]

Rows (median over the queries, after a warm-up):
  retrieve          our HybridRetriever: embed + FAISS + BM25 + chunk fetch        (baseline)
  langchain invoke  the same retriever through the LangChain adapter       ratio vs retrieve
  pipeline ask      full RagPipeline.ask with an in-process scripted LLM   ratio vs retrieve
  client per req    constructing an OpenAI client (the service builds one per process) ratio vs retrieve
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import prompts
from ingest.chunking import StructureAwareChunker
from ingest.job import IngestJob
from rag.embedders import SentenceTransformerEmbedder
from rag.index import open_index
from rag.langchain import LangChainRetriever
from rag.llm import OpenAICompatibleLLM
from rag.pipeline import RagPipeline
from rag.retrieval import HybridRetriever
from rag.testing import ScriptedLLM

QUESTIONS = [
    "How many days do I have to return an item?", "How long does the Aurora X2 take to charge?",
    "What does error E04 mean on the Volt 300?", "Do you ship to Canada?", "Is there a restocking fee?",
    "How do I reset the BrewPoint kettle?", "What is the warranty on tents?", "Which payment methods do you accept?",
]


def medians_ms(cases: dict[str, Callable[[str], object]], runs: int) -> dict[str, float]:
    """Median time of each case, interleaved round by round on the same question so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for run in range(runs + 1):
        question = QUESTIONS[run % len(QUESTIONS)]
        names = list(cases)[run % len(cases):] + list(cases)[: run % len(cases)]
        for name in names:
            tick = time.perf_counter()
            cases[name](question)
            if run:  # round 0 warms up
                samples[name].append((time.perf_counter() - tick) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an index built with the MiniLM model [default: build one]")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    index_dir = args.index
    if index_dir is None:
        index_dir = Path(tempfile.mkdtemp()) / "index"
        corpus = Path("samples/corpus")
        IngestJob(embedder=embedder, index_dir=index_dir, chunker=StructureAwareChunker(count_tokens=embedder.count_tokens),
                  ).run(sorted(p for p in corpus.iterdir() if p.is_dir()))
    index = open_index(index_dir)
    ours = HybridRetriever.over(index, embedder=embedder)
    chain = LangChainRetriever(retriever=ours, top_k=4)
    pipeline = RagPipeline(retriever=ours, llm=ScriptedLLM(), prompt=prompts.load("answer"), index_version=index.version)
    cases: dict[str, Callable[[str], object]] = {
        "retrieve (baseline)": lambda q: ours.retrieve(q, top_k=4),
        "langchain invoke": chain.invoke,
        "pipeline ask": lambda q: asyncio.run(pipeline.ask(q)),
        "client per request": lambda q: OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m"),
    }
    results = medians_ms(cases, args.queries)
    base = results["retrieve (baseline)"]
    rows = [(name, ms, ms / base) for name, ms in results.items()]
    print(f"{'case':<22}{'median ms':>12}{'x retrieve':>12}")
    for name, ms, ratio in rows:
        print(f"{name:<22}{ms:>12.2f}{ratio:>12.2f}")
    print(f"\nindex: {len(index.vectors)} chunks, {args.queries} interleaved rounds after one warm-up round")


if __name__ == "__main__":
    main()
