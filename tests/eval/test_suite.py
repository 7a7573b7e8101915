"""The suite loader: good files load, each kind of bad line is reported with its line number."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from eval.suite import SuiteCase, load_suite
from rag.errors import InputError
from rag.types import Filters, Turn

GOOD = {"id": "q1", "question": "How long is the return window?", "relevant_sources": ["policies/returns.md"]}


def write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "suite.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n",
                    encoding="utf-8")
    return path


def test_a_good_suite_loads_with_optional_fields(tmp_path: Path) -> None:
    full = {"id": "q2", "question": " Return window in January? ", "relevant_sources": ["policies/a.md", "policies/a.md"],
            "filters": {"doc_type": ["policy"], "effective_on": "2025-01-15"}, "tags": ["policy", "en"],
            "answer_contains": ["45 days"]}
    path = write(tmp_path, GOOD, "", full, {"id": "q3", "question": "Pet policy?", "relevant_sources": []})
    cases = load_suite(path)
    assert cases[0] == SuiteCase("q1", GOOD["question"], ("policies/returns.md",))
    assert cases[1] == SuiteCase("q2", "Return window in January?", ("policies/a.md",),
                                 Filters(doc_types=("policy",), effective_on=date(2025, 1, 15)),
                                 ("policy", "en"), ("45 days",))
    assert [case.answerable for case in cases] == [True, True, False]


def test_str_path_and_null_filters(tmp_path: Path) -> None:
    cases = load_suite(str(write(tmp_path, {**GOOD, "filters": None})))
    assert cases[0].filters is None


@pytest.mark.parametrize("bad,message", [
    ("{not json", r"suite\.jsonl:2: not valid JSON .*one JSON object per line"),
    ('["q1"]', r"suite\.jsonl:2: expected a JSON object, got list"),
    ({**GOOD, "expected_sources": []}, r"suite\.jsonl:2: unknown key 'expected_sources': use only id, question"),
    ({"id": "q9"}, r"suite\.jsonl:2: missing key 'question': every case needs id, question"),
    ({**GOOD, "expected_decision": "refuse"}, r"suite\.jsonl:2: 'expected_decision' must be one of answer, clarify"),
    ({**GOOD, "conversation": ["hi"]}, r"suite\.jsonl:2: 'conversation' must be a list of earlier turns"),
    ({**GOOD, "conversation": [{"question": "a"}]}, r"suite\.jsonl:2: 'conversation' must be a list of earlier"),
    ({**GOOD, "reference_answer": ""}, r"suite\.jsonl:2: 'reference_answer' must be a non-empty string"),
    ({**GOOD, "id": 7}, r"suite\.jsonl:2: 'id' must be a non-empty string, got 7"),
    ({**GOOD, "question": "  "}, r"suite\.jsonl:2: 'question' must be a non-empty string"),
    ({**GOOD, "relevant_sources": "policies/returns.md"}, r"suite\.jsonl:2: 'relevant_sources' must be a list of"),
    ({**GOOD, "tags": ["ok", 3]}, r"suite\.jsonl:2: 'tags' must be a list of non-empty strings"),
    ({**GOOD, "answer_contains": [""]}, r"suite\.jsonl:2: 'answer_contains' must be a list"),
    ({**GOOD, "filters": ["policy"]}, r"suite\.jsonl:2: 'filters' must be an object"),
    ({**GOOD, "filters": {"doc_type": "faq"}}, r"suite\.jsonl:2: filter doc_type 'faq' is not one of"),
    ({**GOOD, "filters": {"colour": "red"}}, r"suite\.jsonl:2: unknown filter 'colour'"),
    ({**GOOD, "filters": {"effective_on": "15/01/2025"}}, r"suite\.jsonl:2: filter effective_on must be a date"),
    (GOOD, r"suite\.jsonl:2: duplicate id 'q1' \(first on line 1\): give every case its own id"),
])
def test_each_bad_line_names_its_line_and_the_fix(tmp_path: Path, bad: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_suite(write(tmp_path, GOOD, bad))


def test_blank_lines_count_in_line_numbers(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"suite\.jsonl:3: missing key"):
        load_suite(write(tmp_path, GOOD, "", {"id": "q2"}))


def test_the_answer_keys_load_and_sources_may_be_unknown(tmp_path: Path) -> None:
    follow_up = {"id": "f1", "question": "And for the kettle?", "reference_answer": "30 days [1].",
                 "expected_decision": "answer", "must_not_contain": ["approved"], "notes": "from feedback 3",
                 "conversation": [{"question": "Return window for the tent?", "answer": "45 days."}]}
    case = load_suite(write(tmp_path, follow_up))[0]
    assert case.relevant_sources is None and not case.answerable
    assert case.conversation == (Turn("Return window for the tent?", "45 days."),)
    assert (case.reference_answer, case.expected_decision, case.must_not_contain, case.notes) == (
        "30 days [1].", "answer", ("approved",), "from feedback 3")


def test_an_empty_suite_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="the file has no lines: add one JSON object per line"):
        load_suite(write(tmp_path, "", "  "))


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.jsonl not found: pass the path of a JSONL file"):
        load_suite(tmp_path / "nope.jsonl")


def test_a_file_that_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    path.write_bytes(b'{"id": "q\xff"}\n')
    with pytest.raises(InputError, match="not UTF-8"):
        load_suite(path)
