"""`rag eval from-feedback`: answers rated through POST /feedback, written as suite cases to complete and keep.

`eval.cli` registers it into `rag eval` with `register(eval_app)`.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from eval._console import console
from eval.feedback import RATING_CHOICES, RatingChoice, feedback_cases
from rag.cli import exit_with, settings_with
from rag.errors import InputError, RagError
from rag.feedback import Feedback, FeedbackStore, sqlite_file

__all__ = ["from_feedback", "register"]

_HINT = ("before adding them to a suite, give each case its relevant_sources and expected_decision, and a "
         "reference_answer where it has none (its notes say what the service answered and why it was rated)")


def from_feedback(
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write the cases to.", show_default=False)],
    index: Annotated[Path | None, typer.Option(
        "--index", help="Read the feedback.sqlite3 beside this index folder (default: RAG_INDEX__DIR or "
                        "data/index; RAG_FEEDBACK__PATH, when set, names the file itself, and RAG_FEEDBACK__URL "
                        "the database).")] = None,
    db: Annotated[str | None, typer.Option("--db", help="Read this feedback SQLite file instead, or the database "
                                                        "at this URL (postgresql+psycopg://user:pass@host/db).")] = None,
    rating: Annotated[str, typer.Option("--rating", help="down, up or all.")] = "down",
    since: Annotated[str | None, typer.Option("--since", help="Only feedback given on or after this day "
                                                              "(YYYY-MM-DD, UTC).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
) -> None:
    """Write feedback as eval suite cases: by default each answer rated down becomes a regression case.

    Example: rag eval from-feedback --index data/index --since 2025-06-01 --out feedback-cases.jsonl
    """
    if index is not None and db is not None:
        raise typer.BadParameter("pass --index or --db, not both", param_hint="--db")
    choice, day = _rating(rating), _day(since)
    settings = settings_with(index__dir=index)
    location = db or settings.feedback.resolved_url(settings.index.dir)
    if out.exists() and not force:
        exit_with(InputError(f"{out} already exists: pass --force to replace it, or choose another --out"))
    try:
        records, where = _records(location, day)
        cases = feedback_cases(records, rating=choice)
    except RagError as exc:
        exit_with(exc)
    if not cases:
        console.print(f"no feedback matched (rating {choice}{f', since {day}' if day else ''}) in {where}: "
                      "nothing written", highlight=False)
        return
    _write(out, cases)
    console.print(f"wrote {len(cases)} case{'s' if len(cases) != 1 else ''} to {out}; {_HINT}", highlight=False)


def register(eval_app: typer.Typer) -> None:
    """Add `from-feedback` to the `rag eval` command group."""
    eval_app.command("from-feedback")(from_feedback)


def _records(location: str, since: date | None) -> tuple[list[Feedback], str]:
    """The store's records given on or after `since`, and where it is (no password); a missing SQLite file is
    reported, not created."""
    path = sqlite_file(location)
    if path is not None and not path.is_file():
        raise InputError(f"no feedback store at {path}: pass --db with the service's feedback file "
                         "(RAG_FEEDBACK__PATH) or database URL (RAG_FEEDBACK__URL), or --index with the index folder "
                         "it served")
    store = FeedbackStore(location)
    try:
        return store.list(since=since), store.location
    finally:
        store.close()


def _write(out: Path, cases: list[dict[str, Any]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(case, ensure_ascii=False) + "\n" for case in cases), encoding="utf-8")


def _rating(value: str) -> RatingChoice:
    if value not in RATING_CHOICES:
        raise typer.BadParameter(f"{value!r} is not a rating: choose {', '.join(RATING_CHOICES)}", param_hint="--rating")
    return value


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a day: write YYYY-MM-DD, e.g. 2025-06-01",
                                 param_hint="--since") from None
