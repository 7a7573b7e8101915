"""The evaluation report: well-formed, self-contained, ordered as promised, and safe with hostile run text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import pytest

from eval._charts import latency_bins, md_fenced, md_inline, score_bins
from eval.report import render_html, render_markdown

SCRIPT = "<script>alert(1)</script>"
HOSTILE = f"{SCRIPT} | pipe | [click](javascript:alert(1)) ```` **bold** <img src=x onerror=alert(2)>"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "area", "base", "source", "track", "embed"}
SVG_LEAVES = {"line", "rect", "path", "circle"}


def item(case_id: str, **fields: Any) -> dict[str, Any]:
    """One rag-eval-run/1 item with plausible defaults; `fields` override them."""
    base: dict[str, Any] = {
        "id": case_id,
        "question": f"question {case_id}",
        "tags": ["policy"],
        "expected_decision": "answer",
        "reference_answer": "Returns are accepted within 45 days.",
        "answer": "Returns are accepted within 45 days.",
        "decision": "answer",
        "citations": [
            {"n": 1, "source": "policies/returns.md", "title": "Returns", "score": 0.8, "cited": True, "text": "45 days."}
        ],
        "latency_ms": 900.0,
        "error": None,
        "unsupported_claims": [],
        "verdict": "faithful",
        "faithfulness": 1.0,
        "answer_relevance": 0.8,
        "decision_accuracy": 1,
        "context_recall": 1.0,
    }
    return base | fields


def run(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A rag-eval-run/1 document around `items`, with every summary section filled in."""
    metric = {"value": 0.9, "n": len(items), "by": "offline@1"}
    return {
        "format": "rag-eval-run/1",
        "created": "2026-11-23T10:00:00Z",
        "suite": {"path": "eval/suites/golden.jsonl", "sha256": "ab", "cases": 120, "selected": len(items)},
        "versions": {
            "index": "v0007",
            "prompt": "answer@v2",
            "condense_prompt": "condense@v1",
            "model": "gemma-3-270m",
            "embedding_model": "all-MiniLM-L6-v2",
            "retrieval_mode": "hybrid",
            "top_k": 4,
        },
        "judge": {"id": "offline@1", "name": "offline"},
        "summary": {
            "cases": len(items),
            "errors": sum(i["error"] is not None for i in items),
            "metrics": {
                "faithfulness": metric,
                "answer_relevance": metric | {"value": 0.7},
                "context_recall": {"value": 0.8, "n": 3, "by": "relevant_sources"},
                "citation_recall": {"value": None, "n": 0, "by": "relevant_sources"},
                "decision_accuracy": {"value": 0.5, "n": len(items), "by": "expected_decision"},
                "ndcg@10": {"value": 0.61, "n": 3, "by": "relevant_sources"},
                "latency_p50_ms": {"value": 950.4, "n": len(items), "by": "clock"},
            },
            "decisions": {"answer": {"answer": 5, "escalate": 2}, "escalate": {"escalate": 3, "clarify": 1}},
            "by_tag": {
                "policy": {"cases": 4, "faithfulness": 0.9, "decision_accuracy": 1.0, "context_recall": None},
                HOSTILE: {"cases": 1, "faithfulness": 0.2},
            },
        },
        "items": items,
    }


def hostile_run() -> dict[str, Any]:
    """A run whose every free-text field carries HTML, markdown and fence-breaking text."""
    items = [
        item("ok", faithfulness=0.95),
        item(
            "low",
            faithfulness=0.2,
            unsupported_claims=["Electronics ship free."],
            answer="Returns take 45 days. Electronics ship free.",
        ),
        item("wrong", faithfulness=0.9, decision="escalate", decision_accuracy=0),
        item("failed", faithfulness=None, error="LLMTimeoutError: no answer in 30 s", answer=None, citations=[]),
        item(
            "evil",
            faithfulness=0.6,
            question=HOSTILE,
            answer=HOSTILE,
            reference_answer=HOSTILE,
            tags=[HOSTILE],
            unsupported_claims=[HOSTILE],
            error=None,
            citations=[{"n": 1, "source": HOSTILE, "title": HOSTILE, "score": 0.5, "cited": True, "text": HOSTILE * 20}],
        ),
    ]
    return run(items)


def scores_file() -> dict[str, Any]:
    """A rag-eval-scores/1 document: no decisions, latency, tags or citations."""
    metric = {"value": 0.75, "n": 2, "by": "offline@1"}
    return {
        "format": "rag-eval-scores/1",
        "created": "2026-11-23T10:00:00Z",
        "input": "answers.jsonl",
        "judge": {"id": "offline@1", "name": "offline"},
        "summary": {
            "items": 2,
            "metrics": {"faithfulness": metric, "answer_relevance": metric},
            "verdicts": {"faithful": 1, "unfaithful": 1},
        },
        "items": [
            {
                "id": "a",
                "question": "q",
                "contexts": ["ctx one", "ctx two"],
                "answer": "x",
                "faithfulness": 1.0,
                "verdict": "faithful",
                "unsupported_claims": [],
                "claims": [],
                "answer_relevance": 0.9,
            },
            {
                "id": "b",
                "question": "q",
                "contexts": [],
                "answer": "y",
                "faithfulness": 0.5,
                "verdict": "unfaithful",
                "unsupported_claims": ["y"],
                "claims": [],
                "answer_relevance": None,
            },
        ],
    }


class _Balance(HTMLParser):
    """Checks that every opened element is closed, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs += attrs
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs += attrs
        if tag not in VOID and tag not in SVG_LEAVES:
            self.problems.append(f"self-closed <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unexpected </{tag}>")


def assert_balanced(html: str) -> list[tuple[str, str | None]]:
    """Fails unless every element closes in order; returns all the attributes the page sets."""
    checker = _Balance()
    checker.feed(html)
    checker.close()
    assert checker.problems == [] and checker.stack == []
    return checker.attrs


class _Rows(HTMLParser):
    """Collects the text of every table cell, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag: str) -> None:
        self.in_cell = self.in_cell and tag not in ("td", "th")

    def handle_data(self, data: str) -> None:
        if self.in_cell:
            self.rows[-1][-1] += data


def html_rows(html: str) -> list[list[str]]:
    """Every table row of the page as its cells' text."""
    parser = _Rows()
    parser.feed(html)
    return parser.rows


def svgs(html: str) -> list[ET.Element]:
    """Every <svg> in the page, parsed as XML (which fails on anything malformed or unescaped)."""
    return [ET.fromstring(snippet) for snippet in re.findall(r"<svg\b.*?</svg>", html, re.S)]


def outside_fences(markdown: str) -> str:
    """The Markdown with fenced code blocks removed: text that a renderer would interpret."""
    kept, fence = [], ""
    for line in markdown.splitlines():
        bare = line.removeprefix("> ").removeprefix(">")
        opener = re.match(r"(`{3,})", bare)
        if fence:
            fence = "" if bare.strip() == fence else fence
        elif opener:
            fence = opener.group(1)
        else:
            kept.append(line)
    assert fence == "", "a code fence was left open"
    return "\n".join(kept)


def table_rows(markdown: str) -> list[list[str]]:
    """The Markdown tables, each as its rows' cell counts (splitting on unescaped pipes)."""
    tables: list[list[str]] = []
    previous = ""
    for line in outside_fences(markdown).splitlines():
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append(line)
        previous = line
    return tables


def cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def test_html_is_balanced_and_has_one_svg_per_chart() -> None:
    html = render_html(hostile_run())
    assert_balanced(html)
    charts = svgs(html)
    titles = [chart.findtext("title") or "" for chart in charts]
    assert [t.split(" ")[0] for t in titles] == ["faithfulness", "answer_relevance", "Mean", "latency"]
    assert all(chart.iter("text") for chart in charts)
    bars = [rect for chart in charts for rect in chart.iter("rect") if rect.get("class") != "swatch"]
    assert len(bars) > 20 and all(bar.find("title") is not None for bar in bars)
    assert html.count('class="confusion"') == 1


def test_html_metric_table_names_who_produced_each_score() -> None:
    html = render_html(hostile_run())
    table = {row[0]: tuple(row[1:]) for row in html_rows(html) if len(row) == 4}
    assert table["faithfulness"] == ("0.900", "5", "offline@1")
    assert table["answer_relevance"] == ("0.700", "5", "offline@1")
    assert table["decision_accuracy"] == ("0.500", "5", "expected_decision")
    assert table["citation_recall"] == ("–", "0", "relevant_sources")
    assert table["latency_p50_ms"] == ("950", "5", "clock")
    assert table["ndcg@10"] == ("0.610", "3", "relevant_sources")
    assert html.index('id="metrics"') < html.index('id="charts"') < html.index('id="tags"') < html.index('id="retrieval"')
    assert html.index('id="retrieval"') < html.index('id="worst"') < html.index('id="errors"')


def test_worst_cases_wrong_decision_then_lowest_faithfulness_then_errors() -> None:
    items = [
        item("fine"),
        item("failed", faithfulness=None, error="boom"),
        item("unscored", faithfulness=None),
        item("low", faithfulness=0.1),
        item("wrong", decision_accuracy=0, decision="escalate"),
        item("mid", faithfulness=0.5),
    ]
    expected = ["wrong", "low", "mid", "fine", "failed", "unscored"]
    html_ids = re.findall(r"<h3>\d+\. ([^<]+)</h3>", render_html(run(items)))
    md_ids = re.findall(r"^### \d+\. (.+)$", render_markdown(run(items)), re.M)
    assert html_ids == md_ids == expected
    assert re.findall(r"^### \d+\. (.+)$", render_markdown(run(items), worst=2), re.M) == expected[:2]


def test_html_escapes_hostile_text_and_marks_unsupported_claims() -> None:
    html = render_html(hostile_run())
    assert SCRIPT not in html and "<img" not in html and "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<mark class="bad" title="unsupported">Electronics ship free.</mark>' in html
    assert "<details><summary>Passages (1)</summary>" in html


def test_html_is_self_contained() -> None:
    html = render_html(hostile_run())
    attrs = assert_balanced(html)
    assert "http://" not in html and "https://" not in html and "url(" not in html and "@import" not in html
    assert {name for name, _ in attrs} & {"src", "href", "xlink:href", "srcset", "action", "onerror"} == set()
    assert ("content", "default-src 'none'; style-src 'unsafe-inline'; img-src data:") in attrs


def test_markdown_neutralises_hostile_text() -> None:
    markdown = render_markdown(hostile_run())
    live = outside_fences(markdown)
    assert not re.search(r"(?<!\\)<(script|img)", live)
    assert not re.search(r"(?<!\\)\]\(javascript:", live)
    assert not re.search(r"(?<!\\)\*\*bold", live)
    assert "Electronics ship free." in live  # unsupported claims are listed


def test_markdown_tables_have_the_same_cell_count_in_every_row() -> None:
    tables = table_rows(render_markdown(hostile_run()))
    assert len(tables) >= 6
    for table in tables:
        assert len({len(cells(row)) for row in table}) == 1, table


def test_markdown_charts_are_bar_rows() -> None:
    markdown = render_markdown(hostile_run())
    assert re.search(r"^faithfulness 0\.9–1\.0 █+ +2$", markdown, re.M)
    assert re.search(r"← p50 900 ms, p95 900 ms$", markdown, re.M)
    assert "| escalate | 0 | 1 | 3 |" in markdown


def test_markdown_passages_are_quoted_and_truncated() -> None:
    markdown = render_markdown(hostile_run())
    quoted = [line for line in markdown.splitlines() if line.startswith("> ") and "<script>" in line]
    assert quoted and sum(len(line) for line in quoted) < 600


@pytest.mark.parametrize("document", [scores_file(), run([]), {}, {"items": [{}], "summary": {"metrics": {"x": None}}}])
def test_sparse_documents_render(document: dict[str, Any]) -> None:
    html, markdown = render_html(document), render_markdown(document)
    assert_balanced(html)
    for table in table_rows(markdown):
        assert len({len(cells(row)) for row in table}) == 1


def test_scores_file_renders_what_it_has() -> None:
    html = render_html(scores_file())
    assert len(svgs(html)) == 2 and "No data for: per-tag means, latency, decisions." in html
    assert "answers.jsonl" in html and "verdict: unfaithful" in html and "[2] context" in html
    markdown = render_markdown(scores_file())
    assert "| faithfulness | 0.750 | 2 | offline@1 |" in markdown and "## Per-tag" not in markdown
    assert "**Tags:**" not in markdown and "**Decision:**" not in markdown and "## Errors (0)" in markdown


def test_empty_items_show_no_cases() -> None:
    html = render_html(run([]))
    assert "Worst cases (0 of 0)" in html and "No cases." in html
    assert [chart.findtext("title") for chart in svgs(html)] == ["Mean score per tag"]  # from summary.by_tag
    assert "No data for: faithfulness, answer_relevance, latency." in html


def test_bins() -> None:
    assert [b.count for b in score_bins([0.0, 0.05, 0.95, 1.0, 1.5])] == [2, 0, 0, 0, 0, 0, 0, 0, 0, 3]
    bins = latency_bins([120.0, 950.0, 1999.0])
    assert (bins[0].low, bins[0].high, len(bins), sum(b.count for b in bins)) == (0.0, 200.0, 10, 3)


def test_markdown_escaping_primitives() -> None:
    assert md_inline("a | b\nc") == r"a \| b c"
    assert md_inline("- item") == r"\- item" and md_inline("answer_relevance") == "answer_relevance"
    fenced = md_fenced("x ```` y")
    assert fenced[0] == "`````text" and fenced[-1] == "`````"
