"""Our ingestion against a plain LangChain baseline, on the same model and files, in one run.

    python -m bench.ingest [--corpus samples/corpus] [--rounds 2]

Rows (median over the rounds; the two pipelines alternate so machine drift hits both):
  langchain    per-format LangChain loaders -> RecursiveCharacterTextSplitter ->
               FAISS.from_documents(HuggingFaceEmbeddings) on the same all-MiniLM-L6-v2   (baseline)
  ours full    `rag ingest --full`: unstructured, metadata, PII redaction, structure-aware
               chunks, MiniLM, FAISS, versioned write                                      ratio vs baseline
  ours re-run  the same corpus again, unchanged: nothing is parsed or embedded              fraction of ours full

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

from ingest.chunking import StructureAwareChunker
from ingest.cli import build_redactor
from ingest.job import IngestJob
from ingest.unstructured_loader import use_packaged_spacy_model
from rag.embedders import SentenceTransformerEmbedder
from rag.embedders.sentence_transformer import resolve_model_path
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


def ours(corpus: Path, index_dir: Path, embedder: SentenceTransformerEmbedder, *, full: bool) -> tuple[int, int, bool]:
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
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    embedder.embed_query("warm-up")  # both pipelines start with the model loaded once by its library
    model_path = resolve_model_path("all-MiniLM-L6-v2")
    index_dir = Path(tempfile.mkdtemp()) / "index"
    runs: dict[str, list[float]] = {"langchain": [], "ours full": [], "ours re-run": []}
    sizes: dict[str, tuple[int, ...]] = {}
    for round_ in range(args.rounds):
        order = ["langchain", "ours"] if round_ % 2 == 0 else ["ours", "langchain"]
        for name in order:
            if name == "langchain":
                seconds, sizes["langchain"] = timed(lambda: langchain_baseline(args.corpus, model_path))
                runs["langchain"].append(seconds)
                continue
            seconds, sizes["ours full"] = timed(lambda: ours(args.corpus, index_dir, embedder, full=True))
            runs["ours full"].append(seconds)
            seconds, sizes["ours re-run"] = timed(lambda: ours(args.corpus, index_dir, embedder, full=False))
            runs["ours re-run"].append(seconds)
            assert not sizes["ours re-run"][2], "an unchanged corpus must not publish a new version"
    base = statistics.median(runs["langchain"])
    full = statistics.median(runs["ours full"])
    print(f"{'pipeline':<14}{'files':>7}{'chunks':>8}{'median s':>10}{'chunks/s':>10}{'files/s':>9}{'ratio':>22}")
    for name, seconds_list in runs.items():
        seconds = statistics.median(seconds_list)
        files, chunks = sizes[name][0], sizes[name][1]
        ratio = (f"{seconds / full:.3f} of ours full" if name == "ours re-run"
                 else f"{seconds / base:.2f}x baseline time")
        speed = f"{chunks / seconds:>10.1f}" if name != "ours re-run" else f"{'-':>10}"
        print(f"{name:<14}{files:>7}{chunks:>8}{seconds:>10.2f}{speed}{files / seconds:>9.1f}{ratio:>22}")
    ours_speed = sizes["ours full"][1] / full
    base_speed = sizes["langchain"][1] / base
    print(f"\nchunks/s ours / langchain: {ours_speed / base_speed:.2f}; "
          f"no-change re-run: {statistics.median(runs['ours re-run']) / full:.1%} of a full run; {args.rounds} rounds")


if __name__ == "__main__":
    main()
