"""`rag eval`: registered into the `rag` command through the `rag.commands` entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eval.retrieval import evaluate_retrieval, load_questions
from rag.cli import exit_with, settings_with
from rag.errors import RagError
from rag.factory import build_retriever

__all__ = ["register", "retrieval"]

console = Console()
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate retrieval and answers.")


@eval_app.command()
def retrieval(
    questions: Annotated[Path, typer.Argument(help="JSONL question set (see samples/questions.jsonl).")],
    index: Annotated[Path | None, typer.Option("--index", help="Index folder.")] = None,
    k: Annotated[int, typer.Option(help="Cut-off for hit@k.")] = 5,
    out: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
) -> None:
    """Hit rate at 1, 3 and k and MRR of the expected sources.

    Example: rag eval retrieval samples/questions.jsonl --index data/index
    """
    settings = settings_with(index__dir=index)
    try:
        retriever, loaded = build_retriever(settings)
        report = evaluate_retrieval(retriever, load_questions(questions), k=k)
        loaded.close()
    except RagError as exc:
        exit_with(exc)
    table = Table(title=f"Retrieval on {questions} ({report.cases} answerable questions)")
    for name, value in report.as_dict().items():
        if name != "misses":
            table.add_row(name, f"{value}")
    console.print(table)
    for case_id, question, sources in report.misses:
        console.print(f"  [yellow]miss[/] {case_id}: {question} -> {sources[:3]}", highlight=False)
    if out:
        out.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
