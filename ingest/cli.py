"""`rag ingest`: registered into the `rag` command through the `rag.commands` entry point."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.chunking import StructureAwareChunker
from ingest.job import IngestJob, IngestReport
from rag.cli import exit_with, settings_with
from rag.errors import RagError
from rag.factory import build_embedder
from rag.types import DOC_TYPES

__all__ = ["ingest", "register"]

console = Console(stderr=True)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Corpus folders or files.")],
    index: Annotated[Path | None, typer.Option("--index", help="Index folder to write [default: data/index].")] = None,
    doc_type: Annotated[str | None, typer.Option(help="Force one doc type: doc, policy or ticket "
                                                      "[default: from folder names].")] = None,
    include_unresolved: Annotated[bool, typer.Option(help="Also index open/pending tickets.")] = False,
) -> None:
    """Parse, chunk and embed a corpus into a FAISS index folder.

    Example: rag ingest samples/corpus --index data/index
    """
    if doc_type is not None and doc_type not in DOC_TYPES:
        raise typer.BadParameter(f"choose one of {', '.join(DOC_TYPES)}", param_hint="--doc-type")
    settings = settings_with(index__dir=index)
    try:
        embedder = build_embedder(settings)
        chunker = StructureAwareChunker(count_tokens=embedder.count_tokens,
                                        chunk_tokens=settings.chunking.chunk_tokens,
                                        overlap_tokens=settings.chunking.overlap_tokens)
        with _progress() as bar:
            tasks: dict[str, TaskID] = {}

            def show(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            job = IngestJob(embedder=embedder, chunker=chunker, index_dir=settings.index.dir,
                            gpu=settings.index.gpu, include_unresolved_tickets=include_unresolved, progress=show)
            report = job.run(paths, doc_type=doc_type)
    except RagError as exc:
        exit_with(exc)
    print_report(report)
    if report.failed:
        raise typer.Exit(3)


def print_report(report: IngestReport) -> None:
    table = Table(title=f"Ingested into {report.index_dir} (version {report.version})", show_header=False)
    table.add_row("files parsed", str(report.files))
    table.add_row("documents", f"{report.documents}  ({_counts(report.by_doc_type)})")
    table.add_row("by format", _counts(report.by_format))
    table.add_row("chunks", str(report.chunks))
    table.add_row("time", f"{report.seconds:.1f} s  ({_counts({k: f'{v:.1f}s' for k, v in report.timings_s.items()})})")
    table.add_row("skipped", str(len(report.skipped)))
    table.add_row("failed", str(len(report.failed)))
    console.print(table)
    for source, reason in report.skipped:
        console.print(f"  [yellow]skipped[/] {source}: {reason}", highlight=False)
    for source, reason in report.failed:
        console.print(f"  [red]failed[/]  {source}: {reason}", highlight=False)


def _counts(counter: Mapping[str, object]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items()))


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
