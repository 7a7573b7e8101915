"""Structured answers: the JSON schema a guided-decoding server must follow, its parser, a live renderer.

Where the server supports it (vLLM: `response_format` with a `json_schema`), the model answers ::

    {"answerable": true, "sentences": [{"text": "Returns take 45 days.", "citations": [1]}]}

and its citation ids can only be the numbers of the passages it was given (a JSON-schema `enum`),
so a citation cannot point at a passage that does not exist. The answer is rendered back to the
plain text with inline markers that the rest of the pipeline checks: "Returns take 45 days. [1]".

Bounds, so that a small model that rambles still stops (the grammar cannot go past them):
at most `MAX_SENTENCES` (3, what the answer prompt asks for) sentences of at most
`MAX_SENTENCE_CHARS` (240) characters, each citing at most `MAX_CITATIONS` (3) passages.
The longest reply is then about 900 characters of JSON: about 250 tokens of English prose, but
up to a token a character for digits (gemma splits numbers into digits) or Chinese, and vLLM's
default grammar allows any whitespace between JSON tokens. RAG_LLM__MAX_TOKENS of 256 fits
ordinary answers; a reply that runs to the bounds is cut off, and `parse_answer` says so.
The bounds guide the decoder; `parse_answer` does not reject a reply that exceeds them.

Citation ids outside 1..passages (only possible when a server ignores the schema) are dropped
from the text and reported in `ParsedAnswer.invalid_citations`, as the free-text path reports
markers to passages that do not exist. Repeated ids in one sentence are rendered once.

Free text (a server without guided decoding) passes through unchanged: `parse_answer` returns it
with `structured=False`, and `StructuredStream` streams it as it comes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rag._answer_stream import FENCE_LINE, StructuredStream, markers, split_citations
from rag.errors import AnswerFormatError, ConfigError

__all__ = [
    "MAX_CITATIONS",
    "MAX_SENTENCES",
    "MAX_SENTENCE_CHARS",
    "ParsedAnswer",
    "StructuredStream",
    "answer_schema",
    "parse_answer",
]

MAX_SENTENCES = 3
MAX_SENTENCE_CHARS = 240
MAX_CITATIONS = 3

_FIX_SCHEMA = ("the server did not follow the answer schema: check that it supports response_format json_schema "
               "(vLLM: guided decoding), or set RAG_LLM__STRUCTURED_OUTPUT=off")
_CLOSING_FENCE = re.compile(r"\n?```\s*\Z")


def answer_schema(passages: int) -> dict[str, Any]:
    """The JSON schema that limits citations to the passages given (1..passages) and bounds the reply."""
    if passages < 0:
        raise ConfigError(f"answer_schema needs the number of passages shown (0 or more), got {passages}")
    ids = list(range(1, passages + 1))
    citation: dict[str, Any] = {"type": "integer", "enum": ids} if ids else {"type": "integer"}
    sentence = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": MAX_SENTENCE_CHARS},
            "citations": {"type": "array", "items": citation, "maxItems": min(passages, MAX_CITATIONS)},
        },
        "required": ["text", "citations"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "answerable": {"type": "boolean"},
            "sentences": {"type": "array", "items": sentence, "maxItems": MAX_SENTENCES},
        },
        "required": ["answerable", "sentences"],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """A reply as plain text with inline [n] markers, whatever form the server gave it in."""

    text: str
    answerable: bool
    structured: bool
    invalid_citations: tuple[int, ...] = ()


def parse_answer(raw: str, passages: int) -> ParsedAnswer:
    """Render a structured reply as text with [n] markers; free text passes through unchanged."""
    body = _json_body(raw)
    if body is None:
        return ParsedAnswer(raw, answerable=True, structured=False)
    data = _load(body)
    if not isinstance(data, dict):
        raise AnswerFormatError(f"the structured answer is {type(data).__name__}, not an object: {_FIX_SCHEMA}")
    answerable = _field(data, "answerable", bool, "the answer")
    rendered: list[str] = []
    invalid: set[int] = set()
    for number, item in enumerate(_field(data, "sentences", list, "the answer"), 1):
        text, cites = _sentence(item, number)
        kept, dropped = split_citations(cites, passages)
        invalid.update(dropped)
        if text.strip():
            rendered.append(text.strip() + markers(kept))
    return ParsedAnswer(" ".join(rendered), answerable, structured=True, invalid_citations=tuple(sorted(invalid)))


def _json_body(raw: str) -> str | None:
    """The JSON object a reply holds (inside a ```json fence or not), or None for free text."""
    body = raw.strip()
    fence = FENCE_LINE.match(body)
    if fence is not None and body[fence.end():].lstrip().startswith("{"):
        body = _CLOSING_FENCE.sub("", body[fence.end():]).strip()
    return body if body.startswith("{") else None


def _load(body: str) -> Any:
    """JSON, or an error that tells a reply cut short (fix: more tokens) from a malformed one."""
    try:
        return json.loads(body, strict=False)
    except json.JSONDecodeError as exc:
        if not _closes(body):
            raise AnswerFormatError(
                f"the structured answer was cut off after {len(body)} characters, before its JSON closed: "
                "raise RAG_LLM__MAX_TOKENS so that the JSON can close") from exc
        raise AnswerFormatError(f"the structured answer is not valid JSON ({exc.msg} at character {exc.pos}): "
                                f"{_FIX_SCHEMA}") from exc


def _closes(body: str) -> bool:
    """Whether the JSON object that `body` opens is ever closed (if not, the reply was cut off)."""
    scanner = StructuredStream(0)
    scanner.feed(body)
    return scanner.closed


def _field(data: dict[str, Any], name: str, kind: type, where: str) -> Any:
    """A required field of the expected JSON type (a bool is not an int here)."""
    if name not in data:
        raise AnswerFormatError(f"{where} lacks the field {name!r}: {_FIX_SCHEMA}")
    value = data[name]
    if type(value) is not kind:
        raise AnswerFormatError(f"{where} has {name!r} of type {type(value).__name__}, not {kind.__name__}: "
                                f"{_FIX_SCHEMA}")
    return value


def _sentence(item: object, number: int) -> tuple[str, list[int]]:
    """One sentence object's text and citation ids, checked."""
    where = f"sentence {number}"
    if not isinstance(item, dict):
        raise AnswerFormatError(f"{where} is {type(item).__name__}, not an object: {_FIX_SCHEMA}")
    cites = _field(item, "citations", list, where)
    for cite in cites:
        if type(cite) is not int:
            raise AnswerFormatError(f"{where} cites {cite!r}, which is not a passage number: {_FIX_SCHEMA}")
    return _field(item, "text", str, where), cites
