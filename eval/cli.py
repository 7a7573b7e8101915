"""`rag eval`: registered into the `rag` command through the `rag.commands` entry point."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.progress import TaskID
from rich.table import Table

from eval import answers_cli, feedback_cli
from eval._console import console, progress
from eval.retrieval import RetrievalResults, evaluate, headline_ndcg
from eval.suite import SuiteCase, load_suite
from rag.cli import exit_with, settings_with
from rag.errors import RagError
from rag.factory import build_embedder, build_reranker, build_retriever
from rag.protocols import Retriever
from rag.retrieval import MODES, RetrievalMode
from rag.settings import Settings

__all__ = ["register", "retrieval"]

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval and answers.")


@eval_app.command()
def retrieval(
    suite: Annotated[Path, typer.Argument(help="JSONL suite: one {id, question, relevant_sources} object per line.",
                                          show_default=False)],
    index: Annotated[Path | None, typer.Option("--index", help="Index folder (default: RAG_INDEX__DIR or data/index).")]
    = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Documents scored per question.")] = 10,
    mode: Annotated[list[str] | None, typer.Option("--mode", help="dense, bm25, hybrid or all; repeatable "
                                                                  "(default: hybrid).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the results as JSON here.")] = None,
    show_misses: Annotated[bool, typer.Option("--show-misses", help="List the questions whose first relevant "
                                                                    "document is not in the top 5.")] = False,
) -> None:
    """Score how well each retrieval mode ranks a suite's relevant documents: recall, MRR, nDCG, latency.

    Example: rag eval retrieval suite.jsonl --index data/index --mode all --out retrieval.json
    """
    modes = _modes(mode or ["hybrid"])
    settings = settings_with(index__dir=index)
    try:
        cases = load_suite(suite)
        results, version = _evaluate(settings, modes, cases, k)
    except RagError as exc:
        exit_with(exc)
    report = results.as_dict(suite=str(suite), index=str(settings.index.dir), index_version=version)
    _print_report(report)
    if show_misses:
        _print_misses(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        console.print(f"results written to {out}", highlight=False)


def _modes(values: Sequence[str]) -> list[RetrievalMode]:
    """The modes to run, in the order given, each once; 'all' stands for every mode."""
    chosen: list[RetrievalMode] = []
    for value in values:
        if value not in (*MODES, "all"):
            raise typer.BadParameter(f"{value!r} is not a mode: choose {', '.join(MODES)} or all", param_hint="--mode")
        chosen += MODES if value == "all" else [cast(RetrievalMode, value)]
    return list(dict.fromkeys(chosen))


def _evaluate(
    settings: Settings, modes: list[RetrievalMode], cases: list[SuiteCase], k: int
) -> tuple[RetrievalResults, str]:
    """One retriever per mode over one shared embedder (the model loads once); the index version evaluated."""
    embedder = build_embedder(settings)
    reranker = build_reranker(settings)
    retrievers: dict[str, Retriever] = {}
    with ExitStack() as stack:
        for mode in modes:
            retriever, loaded = build_retriever(settings, embedder=embedder, mode=mode, reranker=reranker)
            stack.callback(loaded.close)
            retriever.retrieve("warm-up", top_k=1)  # load the model and touch the index before timing
            retrievers[mode] = retriever
        aliases, version = loaded.store.duplicate_groups(), loaded.version
        with progress() as bar:
            tasks: dict[str, TaskID] = {mode: bar.add_task(mode, total=len(cases)) for mode in modes}
            results = evaluate(retrievers, cases, k=k, aliases=aliases,
                               progress=lambda mode, done, _: bar.update(tasks[mode], completed=done))
    return results, version


def _print_report(report: dict[str, Any]) -> None:
    """The metrics side by side, one column per mode, then the headline nDCG per tag; the best of each row in bold."""
    modes: dict[str, Any] = report["modes"]
    counts = report["metrics"]
    table = Table(title=f"Retrieval at k={report['k']}: {counts['questions']} questions scored, "
                        f"{counts['unanswerable']} unanswerable",
                  caption=f"suite {report['suite']} · index {report['index']} ({report['index_version']})")
    table.add_column("metric")
    for mode in modes:
        table.add_column(mode, justify="right")
    for name in next(iter(modes.values()))["metrics"]:
        table.add_row(name, *_cells(name, [m["metrics"][name] for m in modes.values()]))
    console.print(table)
    _print_tags(report)


def _print_tags(report: dict[str, Any]) -> None:
    """The headline nDCG of each tag's questions, one column per mode."""
    modes: dict[str, Any] = report["modes"]
    tags = sorted({tag for m in modes.values() for tag in m["by_tag"]})
    if not tags:
        return
    ndcg = headline_ndcg(report["k"])
    table = Table(title=f"{ndcg} per tag")
    for column in ("tag", "questions", *modes):
        table.add_column(column, justify="left" if column == "tag" else "right")
    primary = modes[report["mode"]]["by_tag"]
    for tag in tags:
        values = [m["by_tag"][tag][ndcg] for m in modes.values()]
        table.add_row(tag, str(primary[tag]["questions"]), *_cells(ndcg, values))
    console.print(table)


def _print_misses(report: dict[str, Any]) -> None:
    """Per mode, each answerable question whose first relevant document is not in the top 5."""
    for mode, results in report["modes"].items():
        misses = [item for item in results["items"] if item["relevant"]
                  and (item["first_relevant_rank"] is None or item["first_relevant_rank"] > 5)]
        scored = results["metrics"]["questions"]
        console.print(f"[bold]{mode}[/]: {len(misses)} of {scored} questions have no relevant document in the top 5")
        for item in misses:
            rank = item["first_relevant_rank"] or f"not in the top {report['k']}"
            got = ", ".join(doc["source"] for doc in item["retrieved"][:3]) or "nothing"
            console.print(f"  [yellow]miss[/] {item['id']} (first relevant: {rank}): {item['question']}\n"
                          f"       wanted {', '.join(item['relevant'])}; got {got}", highlight=False)


def _cells(name: str, values: list[Any]) -> list[str]:
    """The row's values as text, the best in bold (the lowest latency, the highest score; counts never)."""
    known = [v for v in values if v is not None]
    counts = name in ("questions", "unanswerable")
    best = None if counts or len(set(known)) < 2 else (min(known) if name.startswith("latency") else max(known))
    return [f"[bold]{_text(name, v)}[/]" if v is not None and v == best else _text(name, v) for v in values]


def _text(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}" if name.startswith("latency") else f"{value:.4f}"
    return str(value)


def register(app: typer.Typer) -> None:
    answers_cli.register(eval_app)
    feedback_cli.register(eval_app)
    app.add_typer(eval_app, name="eval")
