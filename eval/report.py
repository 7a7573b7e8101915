"""Evaluation reports an evaluator would rather look at than read: one offline HTML file, or Markdown.

Both renderers take the JSON of `rag eval run` (rag-eval-run/1) or `rag eval score`
(rag-eval-scores/1) and show what is there, skipping what the file lacks. Everything in the run
is untrusted (answers and passages may hold HTML, markdown or injected instructions): HTML text is
escaped and a Content-Security-Policy forbids scripts and remote loads; Markdown text is
backslash-escaped, and long passages sit in code fences longer than any backtick run inside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eval._charts import (
    CSP,
    CSS,
    confusion_html,
    esc,
    grouped_bars_svg,
    histogram_svg,
    html_marked,
    html_table,
    latency_bins,
    md_fenced,
    md_inline,
    md_table,
    numbers,
    plain,
    score_bins,
    text_bars,
    text_histogram,
)
from eval._report_data import (
    DASH,
    DISTRIBUTIONS,
    PASSAGE_CHARS,
    TAG_SERIES,
    Item,
    as_dict,
    case_facts,
    claim_lines,
    count_rows,
    decision_counts,
    decision_labels,
    error_rows,
    header_rows,
    is_wrong,
    items_of,
    latency_markers,
    metric_rows,
    passage_rows,
    series_means,
    tag_table,
    worst_cases,
)

__all__ = ["render_html", "render_markdown"]

def _section(anchor: str, heading: str, body: str) -> str:
    """One titled section of the report."""
    return f'<section id="{anchor}"><h2>{esc(heading)}</h2>\n{body}\n</section>'


def _html_header(run: Mapping[str, Any]) -> str:
    """The header as a label/value table."""
    rows = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in header_rows(run))
    return f'<h1>Evaluation report</h1>\n<table class="header">{rows}</table>'


def _html_metrics(run: Mapping[str, Any]) -> str:
    """The metric table (with who produced each score) and the summary counts."""
    rows = metric_rows(run, retrieval=False)
    table = html_table(["metric", "value", "n", "by"], rows) if rows else '<p class="note">No metrics in this file.</p>'
    counts = count_rows(run)
    return _section("metrics", "Metrics", table + (html_table(["count", "value"], counts) if counts else ""))


def _html_charts(run: Mapping[str, Any]) -> str:
    """Every chart the run has data for, and a note naming the ones it has none for."""
    items, figures, missing = items_of(run), list[str](), list[str]()
    for name in DISTRIBUTIONS:
        values = numbers(i.get(name) for i in items)
        title = f"{name} per case (n={len(values)})"
        svg = histogram_svg(score_bins(values), title=title, x_label=name, edge_format=".1f") if values else ""
        _add(figures, missing, name, svg)
    means = series_means(run)
    _add(figures, missing, "per-tag means", means and grouped_bars_svg(means, TAG_SERIES, title="Mean score per tag"))
    _add(figures, missing, "latency", _latency_svg(items))
    decisions = decision_counts(run)
    _add(figures, missing, "decisions", decisions and _confusion_figure(decisions))
    note = f'<p class="note">No data for: {esc(", ".join(missing))}.</p>' if missing else ""
    return _section("charts", "Charts", "\n".join(f"<figure>{f}</figure>" for f in figures) + note)


def _add(figures: list[str], missing: list[str], name: str, rendered: object) -> None:
    """Collect a rendered chart, or its name among the missing when there was nothing to draw."""
    if isinstance(rendered, str) and rendered:
        figures.append(rendered)
    else:
        missing.append(name)


def _latency_svg(items: Sequence[Item]) -> str:
    """The latency histogram with p50 and p95 marked; empty when no case has a latency."""
    latencies = numbers(i.get("latency_ms") for i in items)
    if not latencies:
        return ""
    title = f"latency per case (n={len(latencies)})"
    markers = latency_markers(latencies)
    return histogram_svg(latency_bins(latencies), title=title, x_label="latency (ms)", edge_format=".0f", markers=markers)


def _confusion_figure(decisions: Mapping[str, Mapping[str, int]]) -> str:
    """The confusion table with a caption, as one figure."""
    caption = "<figcaption><strong>Decisions: expected × actual</strong></figcaption>"
    return caption + confusion_html(decision_labels(decisions), decisions)


def _table_section(anchor: str, heading: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A titled table, or nothing when it has no rows (a scores file has no tags or retrieval metrics)."""
    return _section(anchor, heading, html_table(head, rows)) if rows else ""


def _quote(label: str, escaped: str) -> str:
    """A labelled block quote around already escaped text."""
    return f"<p><strong>{esc(label)}</strong></p><blockquote>{escaped}</blockquote>"


def _html_case(rank: int, item: Item) -> str:
    """One worst case: facts, question, answer with unsupported claims marked, reference and passages."""
    claims = claim_lines(item)
    facts = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in case_facts(item))
    parts = [f"<h3>{rank}. {esc(item.get('id', DASH))}</h3>", f"<table>{facts}</table>"]
    parts.append(_quote("Question", esc(item.get("question") or DASH)))
    parts.append(_quote("Answer", html_marked(str(item.get("answer") or DASH), claims)))
    if claims:
        parts.append('<ul class="claims">' + "".join(f"<li>{esc(c)}</li>" for c in claims) + "</ul>")
    if "reference_answer" in item:
        parts.append(_quote("Reference answer", esc(item["reference_answer"] or DASH)))
    passages = "".join(f"<p><strong>{esc(h)}</strong></p><blockquote>{esc(t)}</blockquote>" for h, t in passage_rows(item))
    parts += [f"<details><summary>Passages ({len(passage_rows(item))})</summary>{passages}</details>"] if passages else []
    cls = "case wrong" if is_wrong(item) else "case"
    return f'<article class="{cls}">' + "\n".join(parts) + "</article>"


def _html_worst(run: Mapping[str, Any], worst: int) -> str:
    """The worst cases, worst first."""
    items = items_of(run)
    cases = [_html_case(rank, item) for rank, item in enumerate(worst_cases(items, worst), 1)]
    body = "\n".join(cases) or '<p class="note">No cases.</p>'
    return _section("worst", f"Worst cases ({len(cases)} of {len(items)})", body)


def _html_errors(run: Mapping[str, Any]) -> str:
    """Every case that failed with an error."""
    rows = error_rows(items_of(run))
    body = html_table(["id", "question", "error"], rows) if rows else '<p class="note">No case failed.</p>'
    return _section("errors", f"Errors ({len(rows)})", body)


def render_html(run: dict[str, Any], worst: int = 10) -> str:
    """The run as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched."""
    title = as_dict(run.get("suite")).get("path") or run.get("input") or "run"
    sections = [_html_header(run), _html_metrics(run), _html_charts(run)]
    sections += [_table_section("tags", "Per-tag breakdown", *tag_table(run))]
    sections += [_table_section("retrieval", "Retrieval", ["metric", "value", "n", "by"], metric_rows(run, retrieval=True))]
    sections += [_html_worst(run, worst), _html_errors(run)]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>Evaluation report: {esc(title)}</title><style>{CSS}</style></head>\n"
        "<body><main>\n" + "\n".join(s for s in sections if s) + "\n</main></body></html>\n"
    )


# ---- Markdown -------------------------------------------------------------------------------------------


def _md_header(run: Mapping[str, Any]) -> list[str]:
    """The header as a two-column table."""
    return ["# Evaluation report", "", *md_table(["", ""], [list(r) for r in header_rows(run)])]


def _md_metrics(run: Mapping[str, Any]) -> list[str]:
    """The metric table with the producer of each score, then the summary counts."""
    rows, counts = metric_rows(run, retrieval=False), count_rows(run)
    lines = ["## Metrics", "", *(md_table(["metric", "value", "n", "by"], rows) if rows else ["No metrics in this file."])]
    return lines + (["", *md_table(["count", "value"], counts)] if counts else [])


def _md_chart(title: str, rows: Sequence[str]) -> list[str]:
    """A chart's bar rows under a heading, fenced so they keep their alignment."""
    return [f"### {title}", "", *md_fenced("\n".join(rows)), ""]


def _md_charts(run: Mapping[str, Any]) -> list[str]:
    """Bar-row charts for every series the run has data for."""
    items, lines = items_of(run), ["## Charts", ""]
    for name in DISTRIBUTIONS:
        values = numbers(i.get(name) for i in items)
        rows = text_histogram(name, score_bins(values), ".1f")
        lines += _md_chart(f"{name} per case (n={len(values)})", rows) if values else []
    means = {plain(tag): m for tag, m in series_means(run).items()}
    lines += _md_chart("Mean score per tag", text_bars(means, TAG_SERIES)) if means else []
    latencies = numbers(i.get("latency_ms") for i in items)
    if latencies:
        rows = text_histogram("latency_ms", latency_bins(latencies), ".0f", latency_markers(latencies))
        lines += _md_chart(f"latency per case (n={len(latencies)})", rows)
    return lines + _md_confusion(decision_counts(run))


def _md_confusion(decisions: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Expected × actual decisions as a table (rows expected, columns actual)."""
    if not decisions:
        return []
    labels = decision_labels(decisions)
    rows = [[e] + [str(decisions.get(e, {}).get(a, 0)) for a in labels] for e in labels]
    table = md_table(["expected ↓ / actual →", *labels], rows)
    return ["### Decisions: expected × actual", "", *table, ""]


def _md_section(heading: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A titled table, or nothing when it has no rows."""
    return [f"## {heading}", "", *md_table(head, rows), ""] if rows else []


def _md_case(rank: int, item: Item) -> list[str]:
    """One worst case: facts, fenced question and answer, listed unsupported claims, quoted passages."""
    lines = [f"### {rank}. {md_inline(item.get('id', DASH))}", ""]
    lines += [f"- **{label}:** {md_inline(value)}" for label, value in case_facts(item)]
    lines += ["", "**Question**", "", *md_fenced(str(item.get("question") or DASH))]
    lines += ["", "**Answer**", "", *md_fenced(str(item.get("answer") or DASH))]
    claims = claim_lines(item)
    lines += ["", "**Unsupported claims**", "", *(f"- {md_inline(c)}" for c in claims)] if claims else []
    if "reference_answer" in item:
        lines += ["", "**Reference answer**", "", *md_fenced(str(item["reference_answer"] or DASH))]
    for heading, text in passage_rows(item):
        short = text if len(text) <= PASSAGE_CHARS else text[:PASSAGE_CHARS].rstrip() + " …"
        lines += ["", f"> **{md_inline(heading)}**", ">", *md_fenced(short, prefix="> ")]
    return [*lines, ""]


def _md_worst(run: Mapping[str, Any], worst: int) -> list[str]:
    """The worst cases, worst first."""
    items = items_of(run)
    cases = worst_cases(items, worst)
    lines = [f"## Worst cases ({len(cases)} of {len(items)})", ""]
    return lines + ([line for rank, item in enumerate(cases, 1) for line in _md_case(rank, item)] or ["No cases.", ""])


def render_markdown(run: dict[str, Any], worst: int = 10) -> str:
    """The run as Markdown that reads in a terminal and on GitHub: tables, and charts as bar rows."""
    errors = error_rows(items_of(run))
    no_errors = ["## Errors (0)", "", "No case failed."]
    lines = [
        *_md_header(run),
        "",
        *_md_metrics(run),
        "",
        *_md_charts(run),
        *_md_section("Per-tag breakdown", *tag_table(run)),
        *_md_section("Retrieval", ["metric", "value", "n", "by"], metric_rows(run, retrieval=True)),
        *_md_worst(run, worst),
        *(_md_section(f"Errors ({len(errors)})", ["id", "question", "error"], errors) or no_errors),
    ]
    return "\n".join(lines).rstrip() + "\n"
