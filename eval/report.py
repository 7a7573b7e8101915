"""Evaluation reports an evaluator would rather look at than read: one offline HTML file, or Markdown.

Both renderers take the JSON of `rag eval run` (rag-eval-run/1) or `rag eval score`
(rag-eval-scores/1) and show what is there, skipping what the file lacks. Everything in the run
is untrusted (answers and passages may hold HTML, markdown or injected instructions): HTML text is
escaped and a Content-Security-Policy forbids scripts and remote loads; Markdown text is
backslash-escaped, and long passages sit in code fences longer than any backtick run inside them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
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
from eval.metrics import percentile

__all__ = ["render_html", "render_markdown"]

Item = dict[str, Any]
DASH = "–"
DISTRIBUTIONS = ("faithfulness", "answer_relevance")
TAG_SERIES = ("faithfulness", "decision_accuracy", "context_recall")
DECISIONS = ("answer", "clarify", "escalate")
RETRIEVAL = ("ndcg@10", "recall@10", "mrr@10")
METRIC_ORDER: tuple[str, ...] = ("faithfulness", "answer_relevance", "context_precision", "context_recall")
METRIC_ORDER += ("citation_precision", "citation_recall", "decision_accuracy", "latency_p50_ms", "latency_p95_ms")
VERSION_LABELS = {"index": "Index", "prompt": "Prompt", "condense_prompt": "Condense prompt", "model": "Model"}
VERSION_LABELS |= {"embedding_model": "Embedding model", "retrieval_mode": "Retrieval mode", "top_k": "top_k"}
PASSAGE_CHARS = 400


# ---- reading the run: plain rows shared by both formats -------------------------------------------------


def _dict(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else {}: a hand-edited or older file must still render."""
    return value if isinstance(value, dict) else {}


def _items(run: Mapping[str, Any]) -> list[Item]:
    """The run's per-case items, skipping anything that is not an object."""
    items = run.get("items")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _fmt(name: str, value: object) -> str:
    """Scores with 3 decimals, milliseconds with none, counts as integers, missing values as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if name.endswith("_ms"):
        return f"{value:.0f}"
    return str(value) if isinstance(value, int) and name in ("n", "cases", "count") else f"{value:.3f}"


def _ordered(names: Iterable[str], first: Sequence[str]) -> list[str]:
    """`names` with the well-known ones in their usual order first and the rest alphabetically after."""
    present = set(names)
    return [n for n in first if n in present] + sorted(present - set(first))


def _header_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Label/value pairs for the header: where the questions came from, when, with what, judged by whom."""
    suite, versions, judge = _dict(run.get("suite")), _dict(run.get("versions")), _dict(run.get("judge"))
    rows = [("Suite", suite.get("path")), ("Input", run.get("input")), ("Date", run.get("created"))]
    rows += [("Cases", f"{suite['selected']} of {suite.get('cases', '?')}")] if "selected" in suite else []
    rows += [(label, versions[key]) for key, label in VERSION_LABELS.items() if key in versions]
    rows += [("Judge", judge.get("id")), ("Format", run.get("format"))]
    return [(label, DASH if value is None else str(value)) for label, value in rows if value is not None or label == "Judge"]


def _metric_rows(run: Mapping[str, Any], *, retrieval: bool) -> list[list[str]]:
    """[metric, value, n, by] per summary metric: the retrieval ones, or all the others."""
    metrics = _dict(_dict(run.get("summary")).get("metrics"))
    names = [n for n in metrics if (n in RETRIEVAL or re.search(r"@\d+$", n) is not None) == retrieval]
    rows = []
    for name in _ordered(names, RETRIEVAL if retrieval else METRIC_ORDER):
        metric = _dict(metrics[name])
        value = metric.get("value") if metric.get("n") != 0 else None
        rows.append([name, _fmt(name, value), _fmt("n", metric.get("n")), str(metric.get("by") or DASH)])
    return rows


def _count_rows(run: Mapping[str, Any]) -> list[list[str]]:
    """Case, error and verdict counts from the summary, whichever the file has."""
    summary = _dict(run.get("summary"))
    rows = [[key, _fmt("count", summary[key])] for key in ("cases", "items", "errors") if key in summary]
    verdicts = _dict(summary.get("verdicts"))
    return rows + [[f"verdict: {name}", _fmt("count", count)] for name, count in verdicts.items()]


def _tag_means(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """summary.by_tag as {tag: {metric: mean}}, tags sorted so reports of two runs line up."""
    by_tag = _dict(_dict(run.get("summary")).get("by_tag"))
    return {str(tag): _dict(by_tag[tag]) for tag in sorted(by_tag, key=str)}


def _tag_table(run: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-tag breakdown: cases, then every metric mean any tag has."""
    tags = _tag_means(run)
    metrics = _ordered({k for means in tags.values() for k in means if k != "cases"}, METRIC_ORDER + RETRIEVAL)
    rows = [
        [tag, _fmt("cases", means.get("cases")), *(_fmt(m, means.get(m)) for m in metrics)] for tag, means in tags.items()
    ]
    return ["tag", "cases", *metrics], rows


def _series_means(run: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per tag, the charted metric means as numbers (None where missing), for the per-tag bars."""
    return {tag: {m: _number(means.get(m)) for m in TAG_SERIES} for tag, means in _tag_means(run).items()}


def _number(value: object) -> float | None:
    """`value` as a finite float, or None when it is missing or not a number."""
    found = numbers([value])
    return found[0] if found else None


def _decision_labels(decisions: Mapping[str, Any]) -> list[str]:
    """The three decisions in their usual order, plus any other value the run recorded."""
    seen = set(decisions) | {actual for row in decisions.values() for actual in _dict(row)}
    return _ordered(map(str, seen), DECISIONS)


def _decisions(run: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """summary.decisions (expected -> actual -> count) with non-integer counts dropped."""
    raw = _dict(_dict(run.get("summary")).get("decisions"))
    return {
        str(e): {str(a): c for a, c in _dict(row).items() if isinstance(c, int) and not isinstance(c, bool)}
        for e, row in raw.items()
    }


def _latency_markers(latencies: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of the per-case latencies, named with their values for the chart labels."""
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {f"p50 {p50:.0f} ms": p50, f"p95 {p95:.0f} ms": p95}


def _wrong(item: Item) -> bool:
    """Whether the case got the wrong decision: decision_accuracy 0, or a mismatch when it was not scored."""
    if item.get("decision_accuracy") is not None:
        return _number(item["decision_accuracy"]) == 0
    expected = item.get("expected_decision")
    return expected is not None and item.get("decision") is not None and item.get("decision") != expected


def _worst(items: Sequence[Item], count: int) -> list[Item]:
    """The `count` worst cases: wrong decision first, then lowest faithfulness (unscored last), then errors."""

    def key(item: Item) -> tuple[bool, float, bool]:
        faithfulness = _number(item.get("faithfulness"))
        return not _wrong(item), math.inf if faithfulness is None else faithfulness, item.get("error") is None

    return sorted(items, key=key)[: max(count, 0)]


def _passages(item: Item) -> list[tuple[str, str]]:
    """(heading, text) per passage: the run's citations, or a scores file's plain contexts."""
    citations = [_dict(c) for c in item.get("citations") or [] if isinstance(c, dict)]
    if citations:
        return [(_citation_heading(c), str(c.get("text") or "")) for c in citations]
    contexts = item.get("contexts") if isinstance(item.get("contexts"), list) else []
    return [(f"[{i}] context", str(text)) for i, text in enumerate(contexts or [], 1)]


def _citation_heading(citation: Mapping[str, Any]) -> str:
    """'[n] source — title (score 0.830, cited)' for one citation."""
    title = f" — {citation['title']}" if citation.get("title") else ""
    score, cited = _fmt("score", citation.get("score")), "cited" if citation.get("cited") else "not cited"
    return f"[{citation.get('n', '?')}] {citation.get('source') or DASH}{title} (score {score}, {cited})"


def _case_facts(item: Item) -> list[tuple[str, str]]:
    """The short facts of a case: tags, decisions and scores, as label/value pairs."""
    tags = item["tags"] if isinstance(item.get("tags"), list) else None
    scores = [(k, item[k]) for k in ("faithfulness", "answer_relevance", "confidence", "latency_ms") if k in item]
    facts = [] if tags is None else [("Tags", ", ".join(map(str, tags)) or DASH)]
    if "expected_decision" in item or "decision" in item:
        expected, actual = item.get("expected_decision") or DASH, item.get("decision") or DASH
        facts.append(("Decision", f"expected {expected} → actual {actual}{' ✗' if _wrong(item) else ''}"))
    facts += [("Verdict", str(item["verdict"] or DASH))] if "verdict" in item else []
    facts += [("Scores", " · ".join(f"{k} {_fmt(k, v)}" for k, v in scores))] if scores else []
    return facts + ([("Error", str(item["error"]))] if item.get("error") is not None else [])


def _claims(item: Item) -> list[str]:
    """The unsupported claims of a case as strings (a run may omit them or hold nulls)."""
    claims = item.get("unsupported_claims")
    return [str(c) for c in claims if c] if isinstance(claims, list) else []


def _errors(items: Sequence[Item]) -> list[list[str]]:
    """[id, question, error] for every item whose error is set."""
    failed = [i for i in items if i.get("error") is not None]
    return [[str(i.get("id", DASH)), str(i.get("question") or DASH), str(i["error"])] for i in failed]


# ---- HTML -----------------------------------------------------------------------------------------------


def _section(anchor: str, heading: str, body: str) -> str:
    """One titled section of the report."""
    return f'<section id="{anchor}"><h2>{esc(heading)}</h2>\n{body}\n</section>'


def _html_header(run: Mapping[str, Any]) -> str:
    """The header as a label/value table."""
    rows = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in _header_rows(run))
    return f'<h1>Evaluation report</h1>\n<table class="header">{rows}</table>'


def _html_metrics(run: Mapping[str, Any]) -> str:
    """The metric table (with who produced each score) and the summary counts."""
    rows = _metric_rows(run, retrieval=False)
    table = html_table(["metric", "value", "n", "by"], rows) if rows else '<p class="note">No metrics in this file.</p>'
    counts = _count_rows(run)
    return _section("metrics", "Metrics", table + (html_table(["count", "value"], counts) if counts else ""))


def _html_charts(run: Mapping[str, Any]) -> str:
    """Every chart the run has data for, and a note naming the ones it has none for."""
    items, figures, missing = _items(run), list[str](), list[str]()
    for name in DISTRIBUTIONS:
        values = numbers(i.get(name) for i in items)
        title = f"{name} per case (n={len(values)})"
        svg = histogram_svg(score_bins(values), title=title, x_label=name, edge_format=".1f") if values else ""
        _add(figures, missing, name, svg)
    means = _series_means(run)
    _add(figures, missing, "per-tag means", means and grouped_bars_svg(means, TAG_SERIES, title="Mean score per tag"))
    _add(figures, missing, "latency", _latency_svg(items))
    decisions = _decisions(run)
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
    markers = _latency_markers(latencies)
    return histogram_svg(latency_bins(latencies), title=title, x_label="latency (ms)", edge_format=".0f", markers=markers)


def _confusion_figure(decisions: Mapping[str, Mapping[str, int]]) -> str:
    """The confusion table with a caption, as one figure."""
    caption = "<figcaption><strong>Decisions: expected × actual</strong></figcaption>"
    return caption + confusion_html(_decision_labels(decisions), decisions)


def _table_section(anchor: str, heading: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A titled table, or nothing when it has no rows (a scores file has no tags or retrieval metrics)."""
    return _section(anchor, heading, html_table(head, rows)) if rows else ""


def _quote(label: str, escaped: str) -> str:
    """A labelled block quote around already escaped text."""
    return f"<p><strong>{esc(label)}</strong></p><blockquote>{escaped}</blockquote>"


def _html_case(rank: int, item: Item) -> str:
    """One worst case: facts, question, answer with unsupported claims marked, reference and passages."""
    claims = _claims(item)
    facts = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in _case_facts(item))
    parts = [f"<h3>{rank}. {esc(item.get('id', DASH))}</h3>", f"<table>{facts}</table>"]
    parts.append(_quote("Question", esc(item.get("question") or DASH)))
    parts.append(_quote("Answer", html_marked(str(item.get("answer") or DASH), claims)))
    if claims:
        parts.append('<ul class="claims">' + "".join(f"<li>{esc(c)}</li>" for c in claims) + "</ul>")
    if "reference_answer" in item:
        parts.append(_quote("Reference answer", esc(item["reference_answer"] or DASH)))
    passages = "".join(f"<p><strong>{esc(h)}</strong></p><blockquote>{esc(t)}</blockquote>" for h, t in _passages(item))
    parts += [f"<details><summary>Passages ({len(_passages(item))})</summary>{passages}</details>"] if passages else []
    cls = "case wrong" if _wrong(item) else "case"
    return f'<article class="{cls}">' + "\n".join(parts) + "</article>"


def _html_worst(run: Mapping[str, Any], worst: int) -> str:
    """The worst cases, worst first."""
    items = _items(run)
    cases = [_html_case(rank, item) for rank, item in enumerate(_worst(items, worst), 1)]
    body = "\n".join(cases) or '<p class="note">No cases.</p>'
    return _section("worst", f"Worst cases ({len(cases)} of {len(items)})", body)


def _html_errors(run: Mapping[str, Any]) -> str:
    """Every case that failed with an error."""
    rows = _errors(_items(run))
    body = html_table(["id", "question", "error"], rows) if rows else '<p class="note">No case failed.</p>'
    return _section("errors", f"Errors ({len(rows)})", body)


def render_html(run: dict[str, Any], worst: int = 10) -> str:
    """The run as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched."""
    title = _dict(run.get("suite")).get("path") or run.get("input") or "run"
    sections = [_html_header(run), _html_metrics(run), _html_charts(run)]
    sections += [_table_section("tags", "Per-tag breakdown", *_tag_table(run))]
    sections += [_table_section("retrieval", "Retrieval", ["metric", "value", "n", "by"], _metric_rows(run, retrieval=True))]
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
    return ["# Evaluation report", "", *md_table(["", ""], [list(r) for r in _header_rows(run)])]


def _md_metrics(run: Mapping[str, Any]) -> list[str]:
    """The metric table with the producer of each score, then the summary counts."""
    rows, counts = _metric_rows(run, retrieval=False), _count_rows(run)
    lines = ["## Metrics", "", *(md_table(["metric", "value", "n", "by"], rows) if rows else ["No metrics in this file."])]
    return lines + (["", *md_table(["count", "value"], counts)] if counts else [])


def _md_chart(title: str, rows: Sequence[str]) -> list[str]:
    """A chart's bar rows under a heading, fenced so they keep their alignment."""
    return [f"### {title}", "", *md_fenced("\n".join(rows)), ""]


def _md_charts(run: Mapping[str, Any]) -> list[str]:
    """Bar-row charts for every series the run has data for."""
    items, lines = _items(run), ["## Charts", ""]
    for name in DISTRIBUTIONS:
        values = numbers(i.get(name) for i in items)
        rows = text_histogram(name, score_bins(values), ".1f")
        lines += _md_chart(f"{name} per case (n={len(values)})", rows) if values else []
    means = {plain(tag): m for tag, m in _series_means(run).items()}
    lines += _md_chart("Mean score per tag", text_bars(means, TAG_SERIES)) if means else []
    latencies = numbers(i.get("latency_ms") for i in items)
    if latencies:
        rows = text_histogram("latency_ms", latency_bins(latencies), ".0f", _latency_markers(latencies))
        lines += _md_chart(f"latency per case (n={len(latencies)})", rows)
    return lines + _md_confusion(_decisions(run))


def _md_confusion(decisions: Mapping[str, Mapping[str, int]]) -> list[str]:
    """Expected × actual decisions as a table (rows expected, columns actual)."""
    if not decisions:
        return []
    labels = _decision_labels(decisions)
    rows = [[e] + [str(decisions.get(e, {}).get(a, 0)) for a in labels] for e in labels]
    table = md_table(["expected ↓ / actual →", *labels], rows)
    return ["### Decisions: expected × actual", "", *table, ""]


def _md_section(heading: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A titled table, or nothing when it has no rows."""
    return [f"## {heading}", "", *md_table(head, rows), ""] if rows else []


def _md_case(rank: int, item: Item) -> list[str]:
    """One worst case: facts, fenced question and answer, listed unsupported claims, quoted passages."""
    lines = [f"### {rank}. {md_inline(item.get('id', DASH))}", ""]
    lines += [f"- **{label}:** {md_inline(value)}" for label, value in _case_facts(item)]
    lines += ["", "**Question**", "", *md_fenced(str(item.get("question") or DASH))]
    lines += ["", "**Answer**", "", *md_fenced(str(item.get("answer") or DASH))]
    claims = _claims(item)
    lines += ["", "**Unsupported claims**", "", *(f"- {md_inline(c)}" for c in claims)] if claims else []
    if "reference_answer" in item:
        lines += ["", "**Reference answer**", "", *md_fenced(str(item["reference_answer"] or DASH))]
    for heading, text in _passages(item):
        short = text if len(text) <= PASSAGE_CHARS else text[:PASSAGE_CHARS].rstrip() + " …"
        lines += ["", f"> **{md_inline(heading)}**", ">", *md_fenced(short, prefix="> ")]
    return [*lines, ""]


def _md_worst(run: Mapping[str, Any], worst: int) -> list[str]:
    """The worst cases, worst first."""
    items = _items(run)
    cases = _worst(items, worst)
    lines = [f"## Worst cases ({len(cases)} of {len(items)})", ""]
    return lines + ([line for rank, item in enumerate(cases, 1) for line in _md_case(rank, item)] or ["No cases.", ""])


def render_markdown(run: dict[str, Any], worst: int = 10) -> str:
    """The run as Markdown that reads in a terminal and on GitHub: tables, and charts as bar rows."""
    errors = _errors(_items(run))
    no_errors = ["## Errors (0)", "", "No case failed."]
    lines = [
        *_md_header(run),
        "",
        *_md_metrics(run),
        "",
        *_md_charts(run),
        *_md_section("Per-tag breakdown", *_tag_table(run)),
        *_md_section("Retrieval", ["metric", "value", "n", "by"], _metric_rows(run, retrieval=True)),
        *_md_worst(run, worst),
        *(_md_section(f"Errors ({len(errors)})", ["id", "question", "error"], errors) or no_errors),
    ]
    return "\n".join(lines).rstrip() + "\n"
