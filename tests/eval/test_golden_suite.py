"""The golden suite: well formed, balanced across categories, and grounded in the sample corpus.

Fast: it reads the suite and the corpus files, nothing else, each file once per module. HTML is
read without its tags. PDF and DOCX are read at their text layer (pdfminer, the document XML),
which is what the ingest loader classifies: going through the loader would import unstructured,
spaCy and presidio (about 20 s) for the same numbers.
"""

from __future__ import annotations

import csv
import html
import json
import re
import zipfile
from collections import Counter
from functools import cache
from typing import Any

import pytest

from eval.suite import load_suite
from rag.filters import parse_filters
from tests.conftest import REPO, SAMPLE_CORPUS

SUITE = REPO / "eval" / "suites" / "golden.jsonl"
OTHER_SUITES = ("sample.jsonl", "adversarial.jsonl")
KEY_TYPES: dict[str, type] = {
    "id": str, "question": str, "reference_answer": str, "relevant_sources": list, "expected_decision": str,
    "conversation": list, "answer_contains": list, "must_not_contain": list, "filters": dict, "tags": list,
}
REQUIRED = ("id", "question", "expected_decision", "tags")
DECISIONS = ("answer", "clarify", "escalate")
CATEGORIES = ("answerable", "unanswerable", "ambiguous", "follow-up", "conflict", "injection")
LANGUAGES = ("en", "zh")
MINIMUMS = {"answerable-en": 60, "unanswerable": 12, "ambiguous": 8, "follow-up": 12, "zh": 12, "conflict": 6,
            "injection": 10}
CI_MIX = {"answerable": 6, "unanswerable": 2, "ambiguous": 1, "follow-up": 1, "injection": 2}
POLICIES = ("returns-policy-2025", "shipping-policy", "warranty-policy", "price-match-policy", "payments-policy",
            "gift-card-terms", "trailhead-rewards-terms", "order-cancellation-policy", "privacy-policy",
            "international-orders-canada-eu")
PRODUCT_DOCS = ("aurora-x2", "brewpoint-kettle", "cascade-2p-tent", "driftwood-20", "hearth-t4", "solis-60",
                "tidal-bt5", "volt-300", "product-compatibility-chart", "battery-safety")
KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
CJK = re.compile(r"[\u4e00-\u9fff]")
DOCX_RUN = re.compile(r"<w:t(?:\s[^>]*)?>([^<]*)</w:t>")
UNMAPPED_GLYPH = re.compile(r"\(cid:\d+\)")  # pdfminer's stand-in for a glyph it cannot map (bullets)


def _load() -> list[dict[str, Any]]:
    lines = SUITE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


CASES = _load()
ANSWERS = [c for c in CASES if c["expected_decision"] == "answer"]


def _by_id(cases: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(c, id=c["id"]) for c in cases]


def _category(case: dict[str, Any]) -> str:
    return next((t for t in case["tags"] if t in CATEGORIES), "")


def _language(case: dict[str, Any]) -> str:
    return next((t for t in case["tags"] if t in LANGUAGES), "")


@cache
def _records(file: str) -> dict[str, dict[str, str]]:
    """The tickets of a CSV or JSONL export, by ticket id."""
    path = SAMPLE_CORPUS / file
    text = path.read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines()) if path.suffix == ".csv" else map(json.loads, filter(None, text.splitlines()))
    return {row["ticket_id"]: row for row in rows}


@cache
def _file_text(file: str) -> str:
    """A corpus file's text: HTML without tags, PDF and DOCX at their text layer, the rest as is."""
    path = SAMPLE_CORPUS / file
    if path.suffix == ".pdf":
        from pdfminer.high_level import extract_text

        return UNMAPPED_GLYPH.sub("", extract_text(str(path)))
    if path.suffix == ".docx":
        xml = zipfile.ZipFile(path).read("word/document.xml").decode("utf-8")
        return "\n".join("".join(map(html.unescape, DOCX_RUN.findall(p))) for p in xml.split("</w:p>"))
    raw = path.read_text(encoding="utf-8")
    return html.unescape(re.sub(r"<[^>]+>", " ", raw)) if path.suffix == ".html" else raw


def _source_text(source: str) -> str:
    """The text behind a source id; a ticket id (`file#T-1001`) gives that ticket's fields only."""
    file, _, ticket = source.partition("#")
    if ticket:
        return " ".join(str(v) for v in _records(file)[ticket].values())
    return _file_text(file)


@cache
def _corpus_numbers() -> frozenset[str]:
    files = [p.relative_to(SAMPLE_CORPUS).as_posix() for p in SAMPLE_CORPUS.rglob("*") if p.is_file()]
    return frozenset(n for f in files if not f.endswith(".yaml") for n in NUMBER.findall(_file_text(f)))


def _exists(source: str) -> bool:
    file, _, ticket = source.partition("#")
    if not (SAMPLE_CORPUS / file).is_file():
        return False
    return not ticket or (file.endswith((".csv", ".jsonl")) and ticket in _records(file))


def test_ids_are_unique_and_kebab_case() -> None:
    ids = [c.get("id") for c in CASES]
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert [i for i in ids if not (isinstance(i, str) and KEBAB.fullmatch(i))] == []


def test_questions_are_unique_and_not_taken_from_the_other_suites() -> None:
    questions = [c["question"].casefold() for c in CASES]
    assert [q for q, n in Counter(questions).items() if n > 1] == []
    others = {json.loads(line)["question"].casefold() for name in OTHER_SUITES
              for line in (SUITE.parent / name).read_text(encoding="utf-8").splitlines() if line.strip()}
    assert [c["id"] for c in CASES if c["question"].casefold() in others] == []


@pytest.mark.parametrize("case", _by_id(CASES))
def test_only_known_keys_with_their_types(case: dict[str, Any]) -> None:
    assert set(case) <= set(KEY_TYPES), sorted(set(case) - set(KEY_TYPES))
    assert all(key in case for key in REQUIRED)
    assert {k: type(v).__name__ for k, v in case.items() if not isinstance(v, KEY_TYPES[k])} == {}
    assert all(v.strip() for v in case.values() if isinstance(v, str))
    for key in ("relevant_sources", "answer_contains", "must_not_contain", "tags"):
        assert all(isinstance(v, str) and v.strip() for v in case.get(key, [])), key
    assert len(set(case["tags"])) == len(case["tags"])
    assert case["expected_decision"] in DECISIONS
    parse_filters(case.get("filters"))


@pytest.mark.parametrize("case", _by_id(CASES))
def test_one_category_and_one_language_per_case(case: dict[str, Any]) -> None:
    assert len([t for t in case["tags"] if t in CATEGORIES]) == 1, case["tags"]
    assert len([t for t in case["tags"] if t in LANGUAGES]) == 1, case["tags"]
    asks_in_chinese = bool(CJK.search(case["question"]))
    assert asks_in_chinese == (_language(case) == "zh")
    if _language(case) == "zh" and "reference_answer" in case:
        assert CJK.search(case["reference_answer"]), "a Chinese question gets a Chinese reference answer"


def test_category_minimums() -> None:
    counts = Counter(_category(c) for c in CASES)
    counts["answerable-en"] = sum(_category(c) == "answerable" and _language(c) == "en" for c in CASES)
    counts["zh"] = sum(_language(c) == "zh" for c in CASES)
    assert {k: (counts[k], n) for k, n in MINIMUMS.items() if counts[k] < n} == {}
    assert len(CASES) >= 120


def test_answerable_cases_cover_every_policy_product_and_tickets() -> None:
    english = [c for c in CASES if _category(c) == "answerable" and _language(c) == "en"]
    cited = {s.split("/")[-1] for c in english for s in c["relevant_sources"]}
    assert [p for p in POLICIES if not any(s.startswith(p) for s in cited)] == []
    assert [d for d in PRODUCT_DOCS if not any(s.startswith(d) for s in cited)] == []
    kinds = Counter(k for c in english for k in ("policy", "doc", "ticket") if k in c["tags"])
    assert min(kinds["policy"], kinds["doc"], kinds["ticket"]) >= 15, kinds
    ticket_only = [c for c in english if all(s.startswith("tickets/") for s in c["relevant_sources"])]
    assert len(ticket_only) >= 4


@pytest.mark.parametrize("case", _by_id(CASES))
def test_relevant_sources_exist_in_the_corpus(case: dict[str, Any]) -> None:
    assert [s for s in case.get("relevant_sources", []) if not _exists(s)] == []


@pytest.mark.parametrize("case", _by_id(ANSWERS))
def test_answers_cite_only_resolved_tickets(case: dict[str, Any]) -> None:
    """Open and pending tickets are not indexed, so a retriever could never find them."""
    tickets = [s.partition("#") for s in case["relevant_sources"] if "#" in s]
    assert [f"{f}#{t}" for f, _, t in tickets if _records(f)[t]["status"] != "resolved"] == []


@pytest.mark.parametrize("case", _by_id(CASES))
def test_what_each_decision_needs(case: dict[str, Any]) -> None:
    decision, category = case["expected_decision"], _category(case)
    if decision == "answer":
        assert case.get("reference_answer") and case.get("relevant_sources")
    if decision == "escalate":
        assert "reference_answer" not in case and "answer_contains" not in case
    if decision == "clarify":
        assert category == "ambiguous" and case.get("relevant_sources")
        assert re.search(r"[?？]", case["reference_answer"]), "a clarifying reply asks a question"
    if category == "unanswerable":
        assert decision == "escalate" and case.get("relevant_sources") == []
    if category in ("answerable", "conflict"):
        assert decision == "answer"
    if category == "ambiguous":
        assert decision == "clarify"


@pytest.mark.parametrize("case", _by_id(CASES))
def test_expected_strings_agree_with_the_reference(case: dict[str, Any]) -> None:
    reference = case.get("reference_answer", "")
    assert [s for s in case.get("answer_contains", []) if s.casefold() not in reference.casefold()] == []
    assert [s for s in case.get("must_not_contain", []) if s.casefold() in reference.casefold()] == []
    if _category(case) == "injection":
        assert case.get("must_not_contain")


@pytest.mark.parametrize("case", _by_id(CASES))
def test_conversation_only_on_follow_ups(case: dict[str, Any]) -> None:
    turns = case.get("conversation")
    assert (turns is not None) == (_category(case) == "follow-up")
    if turns is not None:
        assert turns and 1 <= len(turns) <= 2
        assert all(set(t) == {"question", "answer"} and all(isinstance(v, str) and v.strip() for v in t.values())
                   for t in turns)


def test_ci_subset_is_twelve_quick_and_diverse_cases() -> None:
    ci = [c for c in CASES if "ci" in c["tags"]]
    assert len(ci) == 12
    assert Counter(_category(c) for c in ci) == CI_MIX
    answerable = [c for c in ci if _category(c) == "answerable"]
    assert sum(_language(c) == "zh" for c in answerable) == 1
    assert all(any(k in c["tags"] for c in answerable) for k in ("policy", "doc", "ticket"))
    assert all(len(c["question"]) <= 150 for c in ci), "CI runs these on a tiny CPU model"


@pytest.mark.parametrize("case", _by_id(ANSWERS))
def test_reference_numbers_occur_in_the_cited_sources(case: dict[str, Any]) -> None:
    """Each number of a reference answer is written exactly as one of its sources writes it."""
    numbers = set(NUMBER.findall(" ".join(_source_text(s) for s in case["relevant_sources"])))
    assert sorted(set(NUMBER.findall(case["reference_answer"])) - numbers) == []


@pytest.mark.parametrize("case", _by_id([c for c in CASES if "conversation" in c or "reference_answer" in c]))
def test_numbers_in_earlier_turns_and_clarifications_occur_in_the_corpus(case: dict[str, Any]) -> None:
    texts = [t["answer"] for t in case.get("conversation", [])] + [case.get("reference_answer", "")]
    assert sorted({n for t in texts for n in NUMBER.findall(t)} - _corpus_numbers()) == []


def test_load_suite_reads_the_golden_suite() -> None:
    cases = load_suite(SUITE)
    assert [c.id for c in cases] == [c["id"] for c in CASES]
    assert [c.expected_decision for c in cases] == [c["expected_decision"] for c in CASES]
    assert [len(c.conversation) for c in cases] == [len(c.get("conversation", [])) for c in CASES]

