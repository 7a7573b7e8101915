"""Evaluation suites: JSONL files of questions with the documents that answer them.

One JSON object per line (blank lines are skipped)::

    {"id": "returns-01", "question": "How long do I have to return a headlamp?",
     "relevant_sources": ["policies/returns-policy-2025.md"],
     "filters": {"effective_on": "2025-01-15"}, "tags": ["policy", "en"], "answer_contains": ["45 days"]}

`id`, `question` and `relevant_sources` are required; `filters` (the shape `/ask` takes, see
`rag.filters`), `tags` and `answer_contains` are optional. A case whose `relevant_sources` is empty
is unanswerable: the corpus holds no answer, so it is left out of the ranking metrics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import InputError
from rag.filters import parse_filters
from rag.types import Filters

__all__ = ["SuiteCase", "load_suite"]

_REQUIRED = ("id", "question", "relevant_sources")
_OPTIONAL = ("filters", "tags", "answer_contains")
_EXAMPLE = '{"id": "q1", "question": "...", "relevant_sources": ["policies/returns.md"]}'


@dataclass(frozen=True, slots=True)
class SuiteCase:
    """One question of a suite, with the documents (source ids) a retriever should find for it."""

    id: str
    question: str
    relevant_sources: tuple[str, ...]
    filters: Filters | None = None
    tags: tuple[str, ...] = ()
    answer_contains: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        """False when the corpus holds no answer: such cases are reported apart, not ranked."""
        return bool(self.relevant_sources)


def load_suite(path: Path | str) -> list[SuiteCase]:
    """Every case of a JSONL suite, checked line by line so a mistake is reported where it is."""
    path = Path(path)
    cases: list[SuiteCase] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        case = _parse_case(_json_object(line, where), where)
        if case.id in first_line:
            raise InputError(f"{where}: duplicate id {case.id!r} (first on line {first_line[case.id]}): "
                             "give every case its own id")
        first_line[case.id] = number
        cases.append(case)
    if not cases:
        raise InputError(f"{path}: the suite has no cases: add one JSON object per line, e.g. {_EXAMPLE}")
    return cases


def _read(path: Path) -> str:
    """The file's text, with a missing or unreadable file reported as a fixable input problem."""
    if not path.is_file():
        raise InputError(f"suite not found at {path}: pass the path of a JSONL suite file (one case per line)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}): save the suite as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"cannot read the suite {path}: {exc.strerror}: check its permissions") from exc


def _json_object(line: str, where: str) -> dict[str, Any]:
    """The line as a JSON object; anything else is reported with the expected shape."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}): "
                         f"write one JSON object per line, e.g. {_EXAMPLE}") from None
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(data).__name__}: write e.g. {_EXAMPLE}")
    return data


def _parse_case(data: dict[str, Any], where: str) -> SuiteCase:
    """A case from one line's object, after checking its keys and their types."""
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}: use only {', '.join(_REQUIRED + _OPTIONAL)}")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise InputError(f"{where}: missing key {missing[0]!r}: every case needs {', '.join(_REQUIRED)} "
                         "(an empty relevant_sources list marks an unanswerable question)")
    return SuiteCase(
        id=_text(data, "id", where), question=_text(data, "question", where),
        relevant_sources=_texts(data, "relevant_sources", where), filters=_filters(data, where),
        tags=_texts(data, "tags", where), answer_contains=_texts(data, "answer_contains", where),
    )


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
