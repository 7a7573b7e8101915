"""`rag ingest`: registered into the `rag` command through the `rag.commands` entry point."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.chunking import StructureAwareChunker
from ingest.distributed import Executor, LocalExecutor, ParseTools, RayExecutor
from ingest.job import IngestJob, Redactor
from ingest.report import IngestReport
from ingest.sources import CorpusRoot
from rag.cli import exit_with, settings_with
from rag.errors import ConfigError, RagError
from rag.factory import ann_options, build_embedder
from rag.protocols import Embedder
from rag.settings import Settings
from rag.tokenizer import TextTokenizer
from rag.types import DOC_TYPES

__all__ = ["ingest", "register"]

console = Console(stderr=True)
_SHOWN = 20  # changes listed one per line before "... and N more"


def ingest(
    paths: Annotated[list[str], typer.Argument(help="Corpus folders or files; TYPE=PATH forces a doc type, "
                                                    "e.g. policy=kb/policies.", show_default=False)],
    index: Annotated[Path | None, typer.Option("--index", help="Index folder (default: data/index).")] = None,
    doc_type: Annotated[str | None, typer.Option(help="Doc type for every PATH without TYPE= "
                                                      "(default: from folder names).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-process every file, ignoring what the index knows.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    report_file: Annotated[Path | None, typer.Option("--report", help="Also write the report as JSON here.")] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another ingestion to finish.")] = 0.0,
    allow_empty: Annotated[bool, typer.Option(help="Let an empty root remove everything it held.")] = False,
    include_unresolved: Annotated[bool | None, typer.Option(help="Also index open/pending tickets.")] = None,
    ray: Annotated[str | None, typer.Option(
        "--ray", metavar="ADDRESS", help="Parse and embed on Ray: 'local' starts one here, 'auto' or "
        "ray://HOST:PORT joins a cluster (default: RAG_INGEST__RAY_ADDRESS, else in this process).")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        "--ray-workers", min=0, help="Ray workers, each parsing and embedding; 0 = one per CPU Ray sees.")] = None,
) -> None:
    """Bring an index up to date with corpus folders: only new, changed and removed files are processed.

    Example: rag ingest kb/docs kb/policies kb/tickets --index data/index --report ingest.json

    On a Ray cluster (`ray start --head` first): rag ingest kb/docs kb/policies --ray auto

    Exit codes: 0 ok, 10 some files or records skipped, 11 some files failed (previous version kept),
    2 bad arguments, 3 index unusable, 75 another ingestion holds the index.
    """
    if doc_type is not None and doc_type not in DOC_TYPES:
        raise typer.BadParameter(f"choose one of {', '.join(DOC_TYPES)}", param_hint="--doc-type")
    settings = settings_with(index__dir=index, ingest__include_unresolved_tickets=include_unresolved,
                             ingest__ray_address=ray, ingest__ray_workers=ray_workers)
    try:
        roots = [CorpusRoot.parse(text) for text in paths]
        roots = [root if root.doc_type or doc_type is None else CorpusRoot(root.path, doc_type)  # type: ignore[arg-type]
                 for root in roots]
        with _progress() as bar, _job(settings, bar, wait) as job:
            report = job.run(roots, full=full, dry_run=dry_run, allow_empty=allow_empty)
    except RagError as exc:
        exit_with(exc)
    print_report(report)
    if report_file is not None:
        report_file.parent.mkdir(parents=True, exist_ok=True)
        report_file.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    raise typer.Exit(report.exit_code)


@contextmanager
def _job(settings: Settings, bar: Progress, wait: float) -> Iterator[IngestJob]:
    """The job the settings describe, with its executor (on Ray when an address is set) open while it runs."""
    embedder = build_embedder(settings)
    tools = parse_tools(settings, embedder)
    tasks: dict[str, TaskID] = {}

    def show(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    options = settings.ingest
    with _executor(settings) as executor:
        yield IngestJob(
            embedder=embedder, chunker=tools.chunker, index_dir=settings.index.dir, gpu=settings.index.gpu,
            ann=ann_options(settings),
            include_unresolved_tickets=options.include_unresolved_tickets, redactor=tools.redactor,
            redact_doc_types=options.redact_doc_types, dedup_threshold=options.dedup_threshold,
            max_file_mb=options.max_file_mb, keep_versions=settings.index.keep_versions, lock_wait_s=wait,
            progress=show, tokenizer=TextTokenizer(stem=settings.lexical.stem, stopwords=settings.lexical.stopwords),
            bm25_k1=settings.lexical.k1, bm25_b=settings.lexical.b, executor=executor,
        )


def _executor(settings: Settings) -> AbstractContextManager[Executor]:
    """In this process, or on Ray; Ray workers build their embedder and tools from these same settings."""
    options = settings.ingest
    if options.ray_address is None:
        return nullcontext(LocalExecutor())
    return RayExecutor(address=options.ray_address, workers=options.ray_workers,
                       embedder=partial(build_embedder, settings), tools=partial(parse_tools, settings))


def parse_tools(settings: Settings, embedder: Embedder) -> ParseTools:
    """The chunker (measured in the embedder's tokens) and the redactor the settings ask for."""
    chunker = StructureAwareChunker(count_tokens=embedder.count_tokens, chunk_tokens=settings.chunking.chunk_tokens,
                                    overlap_tokens=settings.chunking.overlap_tokens)
    return ParseTools(chunker, build_redactor(settings), frozenset(settings.ingest.redact_doc_types))


def build_redactor(settings: Settings) -> Redactor | None:
    """The PII redactor the settings ask for (None when no doc type is to be redacted)."""
    options = settings.ingest
    if not options.redact_doc_types:
        return None
    from ingest.pii import PresidioRedactor

    try:
        return PresidioRedactor(entities=options.pii_entities, keep_order_numbers=options.keep_order_numbers,
                                allow=options.pii_allow)
    except ValueError as exc:
        raise ConfigError(f"invalid PII settings: {exc}") from exc


def print_report(report: IngestReport) -> None:
    if report.dry_run:
        title = f"Plan for {report.index_dir} (dry run: nothing written; current version {report.version or 'none'})"
    elif report.published:
        title = f"Ingested into {report.index_dir}: new version {report.version}"
    else:
        title = f"Nothing changed in {report.index_dir}: version {report.version} stays current"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_row("files", _counts(report.files))
    if not report.dry_run:
        table.add_row("documents", _counts(report.documents))
        table.add_row("chunks", f"{report.chunks} in the index; {report.chunks_added} added "
                                f"({report.chunks_embedded} embedded, {report.chunks_reused} reused), "
                                f"{report.chunks_removed} removed")
        table.add_row("by doc type", _counts(report.by_doc_type))
        table.add_row("PII redacted", _counts(report.redactions) or "none")
        table.add_row("tickets", f"{report.duplicates_collapsed} near-duplicates collapsed")
        table.add_row("superseded", ", ".join(report.superseded) or "none")
    if report.pruned:
        table.add_row("old versions removed", ", ".join(report.pruned))
    table.add_row("time", f"{report.seconds:.1f} s  ({_counts({k: f'{v:.1f}s' for k, v in report.timings_s.items()})})")
    console.print(table)
    changes = [c for c in report.plan if c.kind != "unchanged"]
    for change in changes[:_SHOWN]:
        console.print(f"  {change.kind:>8} {change.source}" + (f" ({change.reason})" if change.reason else ""),
                      highlight=False)
    if len(changes) > _SHOWN:
        console.print(f"  ... and {len(changes) - _SHOWN} more (see --report FILE)")
    for source, reason in report.skipped + report.skipped_records:
        console.print(f"  [yellow]skipped[/] {source}: {reason}", highlight=False)
    for source, reason in report.failed:
        console.print(f"  [red]failed[/]  {source}: {reason}", highlight=False)


def _counts(counter: Mapping[str, object]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items()) if value)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def register(app: typer.Typer) -> None:
    app.command("ingest")(ingest)
