"""Evaluation suites: JSONL files of questions, what a good answer says and where it comes from.

One JSON object per line (blank lines are skipped)::

    {"id": "returns-01", "question": "How long do I have to return a headlamp?",
     "reference_answer": "45 days from delivery.", "relevant_sources": ["policies/returns-policy-2025.md"],
     "expected_decision": "answer", "tags": ["policy", "en"], "answer_contains": ["45 days"]}

`id` and `question` are required. Optional: `reference_answer`; `relevant_sources` (the documents that
answer it; an empty list marks a question the corpus cannot answer, left out of the ranking metrics;
absent means unknown, and the case is left out of retrieval scoring); `expected_decision` ("answer",
"clarify" or "escalate"); `conversation` (the earlier turns of a follow-up, oldest first, each
{"question", "answer"}); `filters` (the shape `/ask` takes, see `rag.filters`); `tags`;
`answer_contains` / `must_not_contain` (strings a correct / safe answer has / never has); `notes`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from rag.errors import InputError
from rag.filters import parse_filters
from rag.types import Filters, Turn

__all__ = ["Decision", "SuiteCase", "load_suite", "read_jsonl"]

Decision = Literal["answer", "clarify", "escalate"]
_DECISIONS: tuple[Decision, ...] = get_args(Decision)
_REQUIRED = ("id", "question")
_OPTIONAL = ("reference_answer", "relevant_sources", "expected_decision", "conversation", "filters", "tags",
             "answer_contains", "must_not_contain", "notes")
_EXAMPLE = '{"id": "q1", "question": "...", "relevant_sources": ["policies/returns.md"]}'


@dataclass(frozen=True, slots=True)
class SuiteCase:
    """One question of a suite, with the documents (source ids) a retriever should find for it."""

    id: str
    question: str
    relevant_sources: tuple[str, ...] | None  # None: not known (not retrieval-scored); (): nothing answers it
    filters: Filters | None = None
    tags: tuple[str, ...] = ()
    answer_contains: tuple[str, ...] = ()
    reference_answer: str | None = None
    expected_decision: Decision | None = None
    conversation: tuple[Turn, ...] = ()
    must_not_contain: tuple[str, ...] = ()
    notes: str = ""

    @property
    def answerable(self) -> bool:
        """False when the corpus holds no answer (or its sources are unknown): not ranked."""
        return bool(self.relevant_sources)


def load_suite(path: Path | str) -> list[SuiteCase]:
    """Every case of a JSONL suite, checked line by line so a mistake is reported where it is."""
    cases: list[SuiteCase] = []
    first_line: dict[str, str] = {}
    for where, data in read_jsonl(Path(path), example=_EXAMPLE):
        case = _parse_case(data, where)
        if case.id in first_line:
            raise InputError(f"{where}: duplicate id {case.id!r} (first on line {first_line[case.id]}): "
                             "give every case its own id")
        first_line[case.id] = where.rsplit(":", 1)[1]
        cases.append(case)
    return cases


def read_jsonl(path: Path, *, example: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """("file:line", object) for each non-blank line; an empty file, bad JSON or a non-object is an error."""
    found = False
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if line.strip():
            found = True
            yield f"{path}:{number}", _json_object(line, f"{path}:{number}", example)
    if not found:
        raise InputError(f"{path}: the file has no lines: add one JSON object per line, e.g. {example}")


def _read(path: Path) -> str:
    """The file's text, with a missing or unreadable file reported as a fixable input problem."""
    if not path.is_file():
        raise InputError(f"{path} not found: pass the path of a JSONL file (one JSON object per line)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}): save the file as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}: check its permissions") from exc


def _json_object(line: str, where: str, example: str) -> dict[str, Any]:
    """The line as a JSON object; anything else is reported with the expected shape."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}): "
                         f"write one JSON object per line, e.g. {example}") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(data).__name__}: write e.g. {example}")
    return data


def _parse_case(data: dict[str, Any], where: str) -> SuiteCase:
    """A case from one line's object, after checking its keys and their types."""
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}: use only {', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise InputError(f"{where}: missing key {missing[0]!r}: every case needs {', '.join(_REQUIRED)}")
    return SuiteCase(
        id=_text(data, "id", where), question=_text(data, "question", where),
        relevant_sources=_texts(data, "relevant_sources", where) if "relevant_sources" in data else None,
        filters=_filters(data, where), tags=_texts(data, "tags", where),
        answer_contains=_texts(data, "answer_contains", where),
        reference_answer=_text(data, "reference_answer", where) if "reference_answer" in data else None,
        expected_decision=_decision(data, where), conversation=_conversation(data, where),
        must_not_contain=_texts(data, "must_not_contain", where),
        notes=_text(data, "notes", where) if "notes" in data else "",
    )


def _decision(data: dict[str, Any], where: str) -> Decision | None:
    value = data.get("expected_decision")
    if value is not None and value not in _DECISIONS:
        raise InputError(f"{where}: 'expected_decision' must be one of {', '.join(_DECISIONS)}, "
                         f"got {json.dumps(value, ensure_ascii=False)}")
    return cast(Decision | None, value)


def _conversation(data: dict[str, Any], where: str) -> tuple[Turn, ...]:
    """The earlier turns of a follow-up, oldest first, each {"question", "answer"} with non-empty strings."""
    value = data.get("conversation", [])
    good = isinstance(value, list) and all(
        isinstance(t, dict) and set(t) == {"question", "answer"} and all(isinstance(v, str) and v.strip()
                                                                         for v in t.values()) for t in value)
    if not good:
        raise InputError(f"{where}: 'conversation' must be a list of earlier turns, each "
                         '{"question": "...", "answer": "..."} with non-empty strings, '
                         f"got {json.dumps(value, ensure_ascii=False)[:200]}")
    return tuple(Turn(t["question"].strip(), t["answer"].strip()) for t in value)


def _text(data: dict[str, Any], key: str, where: str) -> str:
    """A required non-blank string, stripped."""
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: {key!r} must be a non-empty string, got {json.dumps(value, ensure_ascii=False)}")
    return value.strip()


def _texts(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    """A list of non-blank strings (absent = empty), stripped and without repeats."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"{where}: {key!r} must be a list of non-empty strings, "
                         f"got {json.dumps(value, ensure_ascii=False)}: write e.g. [\"a\", \"b\"]")
    return tuple(dict.fromkeys(v.strip() for v in value))


def _filters(data: dict[str, Any], where: str) -> Filters | None:
    """The optional filters, parsed as `/ask` parses them; their errors get the line's position."""
    value = data.get("filters")
    if value is not None and not isinstance(value, dict):
        raise InputError(f"{where}: 'filters' must be an object, got {json.dumps(value, ensure_ascii=False)}: "
                         'write e.g. {"doc_type": ["policy"]}')
    try:
        return parse_filters(value)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from exc
