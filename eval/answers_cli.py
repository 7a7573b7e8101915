"""`rag eval run | score | compare | report`: answers through the pipeline, judged, gated, shown."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from eval._console import console, err, progress
from eval.compare import Comparison, compare, load_scored, parse_max_drop
from eval.judges import Judge, get_judge, judge_names
from eval.runner import Checkpoint, answer_cases, finish_run, retrieval_scores, runtime_versions, suite_info
from eval.score import load_answers, score_answers
from eval.suite import SuiteCase, load_suite
from rag.cli import exit_with, settings_with
from rag.errors import InputError, RagError
from rag.factory import build_embedder, build_runtime
from rag.protocols import Embedder
from rag.settings import Settings

__all__ = ["register"]

_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "rag" / "judge-verdicts.sqlite3"

JudgeOpt = Annotated[str, typer.Option("--judge", help="Judge by name: offline (no LLM, the default) or llm.")]
JudgeUrlOpt = Annotated[str | None, typer.Option("--judge-url", help="llm judge: OpenAI-compatible base URL "
                                                                      "(default: RAG_LLM__BASE_URL).")]
JudgeModelOpt = Annotated[str | None, typer.Option("--judge-model", help="llm judge: model name "
                                                                          "(default: RAG_LLM__MODEL).")]
CacheOpt = Annotated[Path | None, typer.Option("--judge-cache", help=f"llm judge: verdict cache (default: {_CACHE}); "
                                                                      "'none' for no cache.")]
FaithfulOpt = Annotated[float, typer.Option("--faithful-at", min=0.0, max=1.0, help="Faithfulness at or above which "
                                                                                     "an answer's verdict is faithful.")]


def run(
    suite: Annotated[Path, typer.Argument(help="JSONL suite (see eval/suites/golden.jsonl).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Where to write the run (JSON).")],
    index: Annotated[Path | None, typer.Option("--index", help="Index folder (default: RAG_INDEX__DIR).")] = None,
    llm_url: Annotated[str | None, typer.Option("--llm-url", help="OpenAI-compatible base URL of the answering "
                                                                  "model (default: RAG_LLM__BASE_URL).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Answering model (default: RAG_LLM__MODEL).")] = None,
    judge: JudgeOpt = "offline",
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_cache: CacheOpt = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only cases with this tag (repeatable: any).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N selected cases.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Questions in flight at once.")] = 4,
    restart: Annotated[bool, typer.Option("--restart", help="Discard a stopped run's checkpoint instead of "
                                                            "resuming it.")] = False,
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off of the retrieval metrics.")] = 10,
    faithful_at: FaithfulOpt = 1.0,
) -> None:
    """Answer every suite case through the pipeline, then score it: faithfulness, relevance, context and
    citation precision/recall, decisions, latency, retrieval. Resumable: run it again to continue.

    Example: rag eval run eval/suites/golden.jsonl --out runs/today.json --judge offline --tag ci
    """
    settings = settings_with(index__dir=index, llm__base_url=llm_url, llm__model=model)
    try:
        suite_cases = load_suite(suite)
        cases = _select(suite_cases, tag or [], limit)
        embedder = build_embedder(settings)
        chosen = _build_judge(judge, settings, judge_url, judge_model, judge_cache, embedder=embedder)  # fail fast
        checkpoint, document = _run(suite, suite_cases, cases, out, settings, embedder, concurrency=concurrency,
                                    restart=restart, k=k)
        with progress() as bar:
            task = bar.add_task("judging", total=None)
            run_document = finish_run(document["header"], cases, document["items"], document["retrieval"], chosen,
                                      faithful_at=faithful_at, aliases=document["aliases"],
                                      progress=lambda done, total: bar.update(task, completed=done, total=total))
    except RagError as exc:
        exit_with(exc)
    _write(out, run_document)
    if not run_document["summary"]["errors"]:
        checkpoint.remove()  # with failed cases it stays, so that running again retries just those
    _print_summary(run_document)
    console.print(f"run written to {out}; see it with: rag eval report {out} --html report.html", highlight=False)
    _fail_on_errors(run_document)


def _select(cases: list[SuiteCase], tags: Sequence[str], limit: int | None) -> list[SuiteCase]:
    chosen = [case for case in cases if not tags or set(tags) & set(case.tags)]
    if not chosen:
        raise InputError(f"no case has the tag(s) {', '.join(tags)}: check --tag against the suite's tags")
    return chosen[:limit]


def _run(suite: Path, suite_cases: list[SuiteCase], cases: list[SuiteCase], out: Path, settings: Settings,
         embedder: Embedder, *, concurrency: int, restart: bool, k: int) -> tuple[Checkpoint, dict[str, Any]]:
    """Answer the cases not in the checkpoint yet; the items, retrieval scores and header for scoring."""
    runtime = build_runtime(settings, embedder=embedder)
    versions = runtime_versions(runtime, settings)
    info = suite_info(suite, suite_cases, len(cases))
    checkpoint = Checkpoint(out, info["sha256"], versions, restart=restart)
    items = {case_id: item for case_id, item in checkpoint.done.items() if item.get("error") is None}
    todo = [case for case in cases if case.id not in items]
    if len(todo) < len(cases):
        err.print(f"resuming: {len(cases) - len(todo)} of {len(cases)} cases already answered in {checkpoint.path}",
                  highlight=False)

    async def answer() -> tuple[dict[str, dict[str, float]], dict[str, str]]:
        try:
            with progress() as bar:
                task = bar.add_task("answering", total=len(todo))

                def done(item: dict[str, Any]) -> None:
                    checkpoint.add(item)
                    items[item["id"]] = item
                    bar.advance(task)

                await answer_cases(runtime, todo, concurrency=concurrency, on_done=done)
            return retrieval_scores(runtime, cases, items, k), runtime.index.store.duplicate_groups()
        finally:
            await runtime.aclose()

    try:
        retrieval, aliases = asyncio.run(answer())
    except KeyboardInterrupt:
        err.print(f"stopped: {len(items)} of {len(cases)} cases kept in {checkpoint.path}; run the same command "
                  "to continue", highlight=False)
        raise typer.Exit(130) from None
    header = {"suite": info, "versions": versions}
    return checkpoint, {"header": header, "items": items, "retrieval": retrieval, "aliases": aliases}


def _build_judge(name: str, settings: Settings, url: str | None, model: str | None, cache: Path | None, *,
                 embedder: Embedder | None = None) -> Judge:
    """The named judge with the options it takes: the LLM's address and cache, or the loaded embedder."""
    if name == "llm":
        cache_path = None if cache is not None and str(cache) == "none" else (cache or _CACHE)
        return get_judge("llm", base_url=url or settings.llm.base_url, model=model or settings.llm.model,
                         api_key=settings.llm.api_key.get_secret_value(), cache=cache_path)
    if name == "offline":
        return get_judge("offline", embedder=embedder or build_embedder(settings))
    if name not in judge_names():
        raise InputError(f"no judge named {name!r}: choose one of {', '.join(judge_names())}")
    return get_judge(name)


def score(
    answers: Annotated[Path, typer.Argument(help='JSONL: one {"id", "question", "contexts": [...], "answer"} per '
                                                 'line (an optional "label": faithful|unfaithful is compared).',
                                            show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Where to write the scores (JSON).")],
    judge: JudgeOpt = "offline",
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_cache: CacheOpt = None,
    faithful_at: FaithfulOpt = 1.0,
) -> None:
    """Judge answers that already exist (e.g. logged production answers) without running the pipeline.

    Example: rag eval score logged.jsonl --judge llm --judge-url http://gpu-box:8000/v1 --out scores.json
    """
    settings = settings_with()
    try:
        items = load_answers(answers)
        chosen = _build_judge(judge, settings, judge_url, judge_model, judge_cache)
        with progress() as bar:
            task = bar.add_task("judging", total=len(items))
            scores = score_answers(items, chosen, source=str(answers), faithful_at=faithful_at,
                                   progress=lambda done, _: bar.update(task, completed=done))
    except RagError as exc:
        exit_with(exc)
    _write(out, scores)
    _print_summary(scores)
    console.print(f"scores written to {out}", highlight=False)


def compare_command(
    baseline: Annotated[Path, typer.Argument(help="The last release's run or scores (JSON).", show_default=False)],
    current: Annotated[Path, typer.Argument(help="This release's run or scores (JSON).", show_default=False)],
    max_drop: Annotated[list[str] | None, typer.Option("--max-drop", help="METRIC=VALUE: how far a metric may fall "
                                                       "(latency: rise, in ms) before the command fails; repeatable. "
                                                       "Defaults: 0.05 for scores, 0 for safety and completed.")]
    = None,
    allow_judge_change: Annotated[bool, typer.Option("--allow-judge-change", help="Compare scores of different "
                                                                                   "judges anyway.")] = False,
    flips: Annotated[int, typer.Option("--flips", min=0, help="How many flipped cases to list.")] = 20,
) -> None:
    """Metric deltas with 95% bootstrap intervals, the cases that flipped; exit 1 on a regression (CI gate).

    Example: rag eval compare eval/baselines/ci.json run.json --max-drop faithfulness=0.1
    """
    try:
        result = compare(load_scored(baseline), load_scored(current), max_drop=parse_max_drop(max_drop or []),
                         allow_judge_change=allow_judge_change)
    except RagError as exc:
        exit_with(exc)
    _print_comparison(result, baseline, current, flips)
    if result.regressions:
        worst = "; ".join(f"{m.name} {m.delta:+.3f} (allowed {_allowed(m)})" for m in result.regressions)
        err.print(f"[bold red]REGRESSION[/]: {worst}", highlight=False)
        raise typer.Exit(1)
    console.print("[bold green]no regression[/] past the tolerances", highlight=False)


def report(
    run_file: Annotated[Path, typer.Argument(help="A run or scores file (JSON).", show_default=False)],
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    markdown: Annotated[Path | None, typer.Option("--md", help="Write a Markdown report here.")] = None,
    worst: Annotated[int, typer.Option("--worst", min=0, help="How many worst cases to show.")] = 10,
) -> None:
    """A report to look at: metric summary, per-tag breakdown, charts, the worst cases with their passages.

    Example: rag eval report run.json --html report.html --md report.md
    """
    from eval.report import render_html, render_markdown

    if html is None and markdown is None:
        exit_with(InputError("say where to write the report: --html report.html and/or --md report.md"))
    try:
        document = load_scored(run_file)
    except RagError as exc:
        exit_with(exc)
    for path, render in ((html, render_html), (markdown, render_markdown)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(document, worst=worst), encoding="utf-8")
            console.print(f"report written to {path}", highlight=False)


def _write(path: Path, document: dict[str, Any]) -> None:
    """Whole or not at all: written beside, then renamed over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    scratch.replace(path)


def _print_summary(document: dict[str, Any]) -> None:
    """The metrics with n and what produced each; then errors, decisions and agreement when there are any."""
    summary = document["summary"]
    table = Table(title=f"{len(document['items'])} cases · judge {document['judge']['id']}")
    for column in ("metric", "value", "n", "by"):
        table.add_column(column, justify="left" if column in ("metric", "by") else "right")
    for name, metric in summary["metrics"].items():
        value = metric["value"]
        shown = "–" if value is None else (f"{value:.0f}" if name.endswith("_ms") else f"{value:.3f}")
        table.add_row(name, shown, str(metric["n"]), metric["by"])
    console.print(table)
    for expected, row in summary.get("decisions", {}).items():
        console.print(f"  expected {expected:8} → " + ", ".join(f"{k} {v}" for k, v in row.items()), highlight=False)
    if "agreement" in summary:
        agreement = summary["agreement"]
        console.print(f"agreement with the labels: accuracy {agreement['accuracy']:.3f}, ROC AUC "
                      f"{agreement['auc']} over {agreement['n']} labelled answers", highlight=False)
    for item in document["items"]:
        problem = item.get("error") or item.get("judge_error")
        if problem:
            err.print(f"  [red]error[/] {item['id']}: {problem}", highlight=False)


def _print_comparison(result: Comparison, baseline: Path, current: Path, limit: int) -> None:
    table = Table(title=f"{current} against {baseline}")
    for column in ("metric", "cases", "baseline", "current", "delta", "95% CI", "allowed", ""):
        table.add_column(column, justify="left" if column in ("metric", "") else "right", no_wrap=column == "metric")
    for m in result.metrics:
        digits = 0 if m.name.endswith("_ms") else 3
        status = "[bold red]REGRESSION[/]" if m.regressed else ("ok" if m.tolerance is not None else "")
        table.add_row(m.name, str(m.cases), f"{m.baseline:.{digits}f}", f"{m.current:.{digits}f}",
                      f"{m.delta:+.{digits}f}", f"{m.low:+.{digits}f}..{m.high:+.{digits}f}", _allowed(m), status)
    console.print(table)
    for note in result.notes:
        err.print(f"[yellow]note[/]: {note}", highlight=False)
    if result.only_baseline or result.only_current:
        err.print(f"[yellow]note[/]: {len(result.only_baseline)} case(s) only in the baseline, "
                  f"{len(result.only_current)} only in the current run; compared on the cases both have",
                  highlight=False)
    worse = sum(1 for flip in result.flips if flip[2] == "worse")
    if result.flips:
        console.print(f"{len(result.flips)} case(s) flipped ({worse} worse):")
    for case, what, direction in result.flips[:limit]:
        colour = "red" if direction == "worse" else "green"
        console.print(f"  [{colour}]{direction:6}[/] {case}: {what}", highlight=False)


def _allowed(metric: Any) -> str:
    if metric.tolerance is None:
        return "–"
    sign = "+" if metric.name.endswith("_ms") else "-"
    return f"{sign}{metric.tolerance:g}"


def _fail_on_errors(document: dict[str, Any]) -> None:
    errors = document["summary"]["errors"]
    if errors:
        err.print(f"[bold red]{errors} case(s) failed[/] (listed above); run the same command again to retry them",
                  highlight=False)
        raise typer.Exit(1)


def register(eval_app: typer.Typer) -> None:
    eval_app.command()(run)
    eval_app.command()(score)
    eval_app.command("compare")(compare_command)
    eval_app.command()(report)
