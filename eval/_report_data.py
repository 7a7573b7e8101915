"""Reading a run or scores file for the reports: plain rows and values shared by HTML and Markdown."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eval._charts import (
    numbers,
)
from eval.metrics import percentile

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


def as_dict(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else {}: a hand-edited or older file must still render."""
    return value if isinstance(value, dict) else {}


def items_of(run: Mapping[str, Any]) -> list[Item]:
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


def header_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Label/value pairs for the header: where the questions came from, when, with what, judged by whom."""
    suite, versions, judge = as_dict(run.get("suite")), as_dict(run.get("versions")), as_dict(run.get("judge"))
    rows = [("Suite", suite.get("path")), ("Input", run.get("input")), ("Date", run.get("created"))]
    rows += [("Cases", f"{suite['selected']} of {suite.get('cases', '?')}")] if "selected" in suite else []
    rows += [(label, versions[key]) for key, label in VERSION_LABELS.items() if key in versions]
    rows += [("Judge", judge.get("id")), ("Format", run.get("format"))]
    return [(label, DASH if value is None else str(value)) for label, value in rows if value is not None or label == "Judge"]


def metric_rows(run: Mapping[str, Any], *, retrieval: bool) -> list[list[str]]:
    """[metric, value, n, by] per summary metric: the retrieval ones, or all the others."""
    metrics = as_dict(as_dict(run.get("summary")).get("metrics"))
    names = [n for n in metrics if (n in RETRIEVAL or re.search(r"@\d+$", n) is not None) == retrieval]
    rows = []
    for name in _ordered(names, RETRIEVAL if retrieval else METRIC_ORDER):
        metric = as_dict(metrics[name])
        value = metric.get("value") if metric.get("n") != 0 else None
        rows.append([name, _fmt(name, value), _fmt("n", metric.get("n")), str(metric.get("by") or DASH)])
    return rows


def count_rows(run: Mapping[str, Any]) -> list[list[str]]:
    """Case, error and verdict counts from the summary, whichever the file has."""
    summary = as_dict(run.get("summary"))
    rows = [[key, _fmt("count", summary[key])] for key in ("cases", "items", "errors") if key in summary]
    verdicts = as_dict(summary.get("verdicts"))
    return rows + [[f"verdict: {name}", _fmt("count", count)] for name, count in verdicts.items()]


def _tag_means(run: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """summary.by_tag as {tag: {metric: mean}}, tags sorted so reports of two runs line up."""
    by_tag = as_dict(as_dict(run.get("summary")).get("by_tag"))
    return {str(tag): as_dict(by_tag[tag]) for tag in sorted(by_tag, key=str)}


def tag_table(run: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-tag breakdown: cases, then every metric mean any tag has."""
    tags = _tag_means(run)
    metrics = _ordered({k for means in tags.values() for k in means if k != "cases"}, METRIC_ORDER + RETRIEVAL)
    rows = [
        [tag, _fmt("cases", means.get("cases")), *(_fmt(m, means.get(m)) for m in metrics)] for tag, means in tags.items()
    ]
    return ["tag", "cases", *metrics], rows


def series_means(run: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per tag, the charted metric means as numbers (None where missing), for the per-tag bars."""
    return {tag: {m: _number(means.get(m)) for m in TAG_SERIES} for tag, means in _tag_means(run).items()}


def _number(value: object) -> float | None:
    """`value` as a finite float, or None when it is missing or not a number."""
    found = numbers([value])
    return found[0] if found else None


def decision_labels(decisions: Mapping[str, Any]) -> list[str]:
    """The three decisions in their usual order, plus any other value the run recorded."""
    seen = set(decisions) | {actual for row in decisions.values() for actual in as_dict(row)}
    return _ordered(map(str, seen), DECISIONS)


def decision_counts(run: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """summary.decisions (expected -> actual -> count) with non-integer counts dropped."""
    raw = as_dict(as_dict(run.get("summary")).get("decisions"))
    return {
        str(e): {str(a): c for a, c in as_dict(row).items() if isinstance(c, int) and not isinstance(c, bool)}
        for e, row in raw.items()
    }


def latency_markers(latencies: Sequence[float]) -> dict[str, float]:
    """p50 and p95 of the per-case latencies, named with their values for the chart labels."""
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    return {f"p50 {p50:.0f} ms": p50, f"p95 {p95:.0f} ms": p95}


def is_wrong(item: Item) -> bool:
    """Whether the case got the wrong decision: decision_accuracy 0, or a mismatch when it was not scored."""
    if item.get("decision_accuracy") is not None:
        return _number(item["decision_accuracy"]) == 0
    expected = item.get("expected_decision")
    return expected is not None and item.get("decision") is not None and item.get("decision") != expected


def worst_cases(items: Sequence[Item], count: int) -> list[Item]:
    """The `count` worst cases: wrong decision first, then lowest faithfulness (unscored last), then errors."""

    def key(item: Item) -> tuple[bool, float, bool]:
        faithfulness = _number(item.get("faithfulness"))
        return not is_wrong(item), math.inf if faithfulness is None else faithfulness, item.get("error") is None

    return sorted(items, key=key)[: max(count, 0)]


def passage_rows(item: Item) -> list[tuple[str, str]]:
    """(heading, text) per passage: the run's citations, or a scores file's plain contexts."""
    citations = [as_dict(c) for c in item.get("citations") or [] if isinstance(c, dict)]
    if citations:
        return [(_citation_heading(c), str(c.get("text") or "")) for c in citations]
    contexts = item.get("contexts") if isinstance(item.get("contexts"), list) else []
    return [(f"[{i}] context", str(text)) for i, text in enumerate(contexts or [], 1)]


def _citation_heading(citation: Mapping[str, Any]) -> str:
    """'[n] source — title (score 0.830, cited)' for one citation."""
    title = f" — {citation['title']}" if citation.get("title") else ""
    score, cited = _fmt("score", citation.get("score")), "cited" if citation.get("cited") else "not cited"
    return f"[{citation.get('n', '?')}] {citation.get('source') or DASH}{title} (score {score}, {cited})"


def case_facts(item: Item) -> list[tuple[str, str]]:
    """The short facts of a case: tags, decisions and scores, as label/value pairs."""
    tags = item["tags"] if isinstance(item.get("tags"), list) else None
    scores = [(k, item[k]) for k in ("faithfulness", "answer_relevance", "confidence", "latency_ms") if k in item]
    facts = [] if tags is None else [("Tags", ", ".join(map(str, tags)) or DASH)]
    if "expected_decision" in item or "decision" in item:
        expected, actual = item.get("expected_decision") or DASH, item.get("decision") or DASH
        facts.append(("Decision", f"expected {expected} → actual {actual}{' ✗' if is_wrong(item) else ''}"))
    facts += [("Verdict", str(item["verdict"] or DASH))] if "verdict" in item else []
    facts += [("Scores", " · ".join(f"{k} {_fmt(k, v)}" for k, v in scores))] if scores else []
    return facts + ([("Error", str(item["error"]))] if item.get("error") is not None else [])


def claim_lines(item: Item) -> list[str]:
    """The unsupported claims of a case as strings (a run may omit them or hold nulls)."""
    claims = item.get("unsupported_claims")
    return [str(c) for c in claims if c] if isinstance(claims, list) else []


def error_rows(items: Sequence[Item]) -> list[list[str]]:
    """[id, question, error] for every item whose error is set."""
    failed = [i for i in items if i.get("error") is not None]
    return [[str(i.get("id", DASH)), str(i.get("question") or DASH), str(i["error"])] for i in failed]


# ---- HTML -----------------------------------------------------------------------------------------------
