"""What the query path costs around the model, measured against baselines in the same run.

    python -m bench.query_overhead [--index data/index] [--queries 40]

Rows (median over the queries, after a warm-up):
  retrieve          our DenseRetriever: embed + FAISS + chunk fetch        (baseline)
  langchain invoke  the same retriever through the LangChain adapter       ratio vs retrieve
  pipeline ask      full RagPipeline.ask with an in-process scripted LLM   ratio vs retrieve
  client per req    constructing an OpenAI client per request              ratio vs reusing one (≈0)
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
from rag.retrieval import DenseRetriever
from rag.testing import ScriptedLLM

QUESTIONS = [
    "How many days do I have to return an item?", "How long does the Aurora X2 take to charge?",
    "What does error E04 mean on the Volt 300?", "Do you ship to Canada?", "Is there a restocking fee?",
    "How do I reset the BrewPoint kettle?", "What is the warranty on tents?", "Which payment methods do you accept?",
]


def median_ms(func: Callable[[], object], runs: int) -> float:
    func()
    samples = []
    for _ in range(runs):
        tick = time.perf_counter()
        func()
        samples.append((time.perf_counter() - tick) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an index built with the MiniLM model [default: build one]")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    index_dir = args.index
    if index_dir is None:
        index_dir = Path(tempfile.mkdtemp()) / "index"
        IngestJob(embedder=embedder, index_dir=index_dir,
                  chunker=StructureAwareChunker(count_tokens=embedder.count_tokens)).run([Path("samples/corpus")])
    index = open_index(index_dir)
    ours = DenseRetriever(embedder=embedder, vectors=index.vectors, store=index.store)
    chain = LangChainRetriever(retriever=ours, top_k=4)
    pipeline = RagPipeline(retriever=ours, llm=ScriptedLLM(), prompt=prompts.load("answer"), index_version=index.version)
    counter = iter(range(10**9))

    def question() -> str:
        return QUESTIONS[next(counter) % len(QUESTIONS)]

    n = args.queries
    base = median_ms(lambda: ours.retrieve(question(), top_k=4), n)
    rows = [
        ("retrieve (baseline)", base, 1.0),
        ("langchain invoke", (lc := median_ms(lambda: chain.invoke(question()), n)), lc / base),
        ("pipeline ask", (pa := median_ms(lambda: asyncio.run(pipeline.ask(question())), n)), pa / base),
    ]
    reuse = OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m")
    per_request = median_ms(lambda: OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m"), n)
    rows.append(("client per request", per_request, per_request / base))
    print(f"{'case':<22}{'median ms':>12}{'x retrieve':>12}")
    for name, ms, ratio in rows:
        print(f"{name:<22}{ms:>12.2f}{ratio:>12.2f}")
    print(f"\nindex: {len(index.vectors)} chunks, {n} queries; reused client object: {reuse.model}")


if __name__ == "__main__":
    main()
