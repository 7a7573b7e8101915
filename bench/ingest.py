"""Our ingestion against a plain LangChain baseline, on the same model and files, in one run.

    python -m bench.ingest [--corpus samples/corpus] [--rounds 2] [--backends sentence-transformers:fp32,onnx:int8]

Rows (median over the rounds; the pipelines take turns so machine drift hits all):
  langchain    per-format LangChain loaders -> RecursiveCharacterTextSplitter ->
               FAISS.from_documents(HuggingFaceEmbeddings) on the same all-MiniLM-L6-v2   (baseline)
  ours <backend:precision>  `rag ingest --full`: unstructured, metadata, PII redaction, structure-aware
               chunks, MiniLM through that embedding backend, FAISS, versioned write     ratio vs baseline
  ours re-run  the same corpus again, unchanged: nothing is parsed or embedded              fraction of ours full

Writes bench/results/ingest.md (.json, .png).

chunks/s counts the chunks each pipeline produced per second of wall time; the two chunkers
cut differently (ours by model tokens, LangChain's by characters), so files/s is printed too.
Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._results import bar_chart, markdown_table, write
from ingest.chunking import StructureAwareChunker
from ingest.cli import build_redactor
from ingest.job import IngestJob
from ingest.unstructured_loader import use_packaged_spacy_model
from rag.embedders.sentence_transformer import resolve_model_path
from rag.factory import build_embedder
from rag.protocols import Embedder
from rag.settings import Settings


def langchain_baseline(corpus: Path, model_path: str) -> tuple[int, int]:
    """What a team gets from LangChain out of the box; returns (files, chunks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # langchain-community announces its sunset and deprecations
        from langchain_community.document_loaders import CSVLoader, PyPDFLoader, TextLoader, UnstructuredFileLoader
        from langchain_community.vectorstores import FAISS
        from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    use_packaged_spacy_model()  # offline: the same spaCy hand-over our loader makes

    loaders: dict[str, Callable[[str], object]] = {
        ".pdf": PyPDFLoader, ".csv": CSVLoader, ".jsonl": TextLoader, ".txt": TextLoader, ".md": TextLoader,
    }
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith(("_", ".")))
    documents = []
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loader = loaders.get(path.suffix.lower(), UnstructuredFileLoader)(str(path))
            documents.extend(loader.load())  # type: ignore[attr-defined]
    chunks = RecursiveCharacterTextSplitter(chunk_size=800, chunk_overlap=100).split_documents(documents)
    embeddings = HuggingFaceEmbeddings(model_name=model_path, encode_kwargs={"normalize_embeddings": True})
    FAISS.from_documents(chunks, embeddings)
    return len(files), len(chunks)


def ours(corpus: Path, index_dir: Path, embedder: Embedder, *, full: bool) -> tuple[int, int, bool]:
    """Our ingestion over the corpus's sub-folders; returns (files, chunks in the index, published)."""
    settings = Settings()
    job = IngestJob(embedder=embedder, chunker=StructureAwareChunker(count_tokens=embedder.count_tokens),
                    index_dir=index_dir, redactor=build_redactor(settings), gpu="off")
    roots = sorted(p for p in corpus.iterdir() if p.is_dir()) or [corpus]
    report = job.run(roots, full=full)
    return sum(report.files.values()), report.chunks, report.published


def timed(func: Callable[[], tuple[int, ...]]) -> tuple[float, tuple[int, ...]]:
    tick = time.perf_counter()
    result = func()
    return time.perf_counter() - tick, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("samples/corpus"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default="sentence-transformers:fp32",
                        help="comma-separated backend:precision, e.g. sentence-transformers:fp32,onnx:int8")
    args = parser.parse_args()
    embedders: dict[str, Embedder] = {}
    for spec in args.backends.split(","):
        backend, _, precision = spec.partition(":")
        embedder = build_embedder(Settings(embedding={"backend": backend, "precision": precision or "auto"}))
        embedder.embed_query("warm-up")  # every pipeline starts with its model loaded (and exported) once
        embedders[f"ours {backend}:{getattr(embedder, 'precision', precision or 'auto')}"] = embedder  # as resolved
    model_path = resolve_model_path("all-MiniLM-L6-v2")
    index_dir = Path(tempfile.mkdtemp()) / "index"
    runs: dict[str, list[float]] = {"langchain": [], **{name: [] for name in embedders}, "ours re-run": []}
    sizes: dict[str, tuple[int, ...]] = {}
    for round_ in range(args.rounds):
        order = ["langchain", *embedders]
        for name in order[round_ % len(order):] + order[: round_ % len(order)]:
            if name == "langchain":
                seconds, sizes[name] = timed(lambda: langchain_baseline(args.corpus, model_path))
            else:
                embedder = embedders[name]
                seconds, sizes[name] = timed(lambda: ours(args.corpus, index_dir, embedder, full=True))  # noqa: B023
                if name == next(iter(embedders)):
                    rerun, sizes["ours re-run"] = timed(
                        lambda: ours(args.corpus, index_dir, embedder, full=False))  # noqa: B023
                    runs["ours re-run"].append(rerun)
                    assert not sizes["ours re-run"][2], "an unchanged corpus must not publish a new version"
            runs[name].append(seconds)
    medians = {name: statistics.median(seconds_list) for name, seconds_list in runs.items()}
    speeds = {name: sizes[name][1] / seconds for name, seconds in medians.items() if name != "ours re-run"}
    base_speed, first = speeds["langchain"], medians[next(iter(embedders))]
    rows = []
    for name, seconds in medians.items():
        files, chunks = sizes[name][0], sizes[name][1]
        if name == "ours re-run":
            rows.append([name, files, chunks, f"{seconds:.2f}", "-", f"{files / seconds:.1f}",
                         f"{seconds / first:.3f} of a full run"])
        else:
            rows.append([name, files, chunks, f"{seconds:.2f}", f"{speeds[name]:.1f}", f"{files / seconds:.1f}",
                         f"{speeds[name] / base_speed:.2f}x langchain chunks/s"])
    header = ["pipeline", "files", "chunks", "median s", "chunks/s", "files/s", "ratio"]
    table = markdown_table(header, rows)
    print(table)
    chart = bar_chart("ingest", "Ingestion of the sample corpus (chunks/s)", list(speeds), list(speeds.values()),
                      "chunks per second")
    write("ingest", "Ingestion: ours per embedding backend vs LangChain", table + f"\n\n{args.rounds} rounds, median; "
          "ours includes unstructured parsing, PII redaction and the versioned write.",
          {"rounds": args.rounds, "runs_s": runs, "sizes": {k: list(v) for k, v in sizes.items()}}, chart=chart)


if __name__ == "__main__":
    main()
