"""The live renderer behind `rag.answer_format.StructuredStream` (public there): a small push parser
that follows the answer schema's JSON as it streams and shows only the sentences' text and markers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FENCE_LINE", "StructuredStream", "markers", "split_citations"]

# An opening ```json fence (models without guided decoding like them); the parser and the stream agree on it.
FENCE_LINE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n", re.IGNORECASE)
_INTEGER = re.compile(r"-?\d+")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def split_citations(cites: list[int], passages: int) -> tuple[list[int], list[int]]:
    """Ids of passages that were given (each once, in order), and the ids that point at nothing."""
    kept = [n for n in dict.fromkeys(cites) if 1 <= n <= passages]
    return kept, [n for n in cites if not 1 <= n <= passages]


def markers(cites: list[int]) -> str:
    """What follows a sentence's text: " [1][3]", or nothing when it cites no passage given."""
    return " " + "".join(f"[{n}]" for n in cites) if cites else ""


@dataclass(eq=False)
class _Sentence:
    """What the stream knows of one sentence object so far."""

    shown: bool = False  # some of its text has been emitted
    spaces: str = ""  # whitespace held back: it is dropped if the text ends there
    text_done: bool = False
    cites: list[int] = field(default_factory=list)
    cites_done: bool = False
    marked: bool = False


@dataclass(eq=False)
class _Frame:
    """An open JSON object or array and what it means in the answer schema."""

    role: str
    is_object: bool
    sentence: _Sentence | None = None
    key: str | None = None
    expect_key: bool = True


@dataclass(eq=False)
class _String:
    """An open JSON string: its role, an escape half-read, a high surrogate awaiting its pair."""

    role: str
    sentence: _Sentence | None
    chars: list[str] = field(default_factory=list)
    escape: str | None = None
    high: int | None = None


# What a value means, from its parent's role and key (arrays: key None); anything else is ignored.
_CHILD_ROLE = {
    ("root", "answerable"): "answerable", ("root", "sentences"): "sentences", ("sentences", None): "sentence",
    ("sentence", "text"): "text", ("sentence", "citations"): "citations", ("citations", None): "citation",
}
_OBJECT_ROLES, _ARRAY_ROLES = frozenset({"root", "sentence"}), frozenset({"sentences", "citations"})


class StructuredStream:
    """Turns a streamed reply into the customer-visible text as it arrives, for live display.

    A JSON reply shows only its sentences' text (escapes decoded), each followed by its [n]
    markers once its citations are complete; a free-text reply passes through unchanged. What
    it emits in all equals `parse_answer(whole_reply, passages).text` for a reply that parses.
    """

    def __init__(self, passages: int) -> None:
        self._passages = passages
        self._mode: Literal["sniff", "json", "text", "done"] = "sniff"
        self._head = ""  # the reply's start, held until it shows whether it is JSON
        self._stack: list[_Frame] = []
        self._string: _String | None = None
        self._literal = ""
        self._out: list[str] = []
        self._shown_any = False
        self.answerable: bool | None = None  # the reply's "answerable", once streamed (None for free text)

    @property
    def closed(self) -> bool:
        """True once a JSON reply's object has closed: a reply that ends before that was cut off."""
        return self._mode == "done"

    @property
    def structured(self) -> bool | None:
        """True for a JSON reply, False for free text, None while the start does not tell yet."""
        return {"sniff": None, "text": False}.get(self._mode, True)

    def feed(self, delta: str) -> str:
        """The newly visible text after `delta` (often "")."""
        if self._mode == "text":
            return delta
        if self._mode == "sniff":
            delta = self._sniff(delta)
        if self._mode == "json":
            for char in delta:
                self._char(char)
                if self.closed:
                    break
        return self._take()

    def finish(self) -> str:
        """Whatever is still held at the end of the stream (a free-text reply's undecided start)."""
        if self._mode == "sniff":
            self._mode = "text"
            return self._head
        return self._take()

    def _sniff(self, delta: str) -> str:
        """Hold the start until it shows JSON (maybe fenced) or free text; returns the JSON to scan."""
        self._head += delta
        head = self._head.lstrip()
        fence = FENCE_LINE.match(head)
        rest = head[fence.end():].lstrip() if fence else head
        if rest.startswith("{"):
            self._mode = "json"
            return rest
        if not rest or (fence is None and "```".startswith(head[:3]) and "\n" not in head and len(head) < 16):
            return ""  # nothing yet, or what may still become a ```json fence line
        self._mode = "text"
        self._out.append(self._head)
        return ""

    def _take(self) -> str:
        text, self._out = "".join(self._out), []
        return text

    def _char(self, char: str) -> None:
        if self._string is not None:
            self._string_char(self._string, char)
            return
        if char.isalnum() or char in "+-.":
            self._literal += char
            return
        if self._literal:
            self._end_literal()
        if char == '"':
            self._open_string()
        elif char in "{[":
            self._open(char == "{")
        elif char in "}]" and self._stack:
            self._close(self._stack.pop())
        elif char in ":," and self._stack:
            self._stack[-1].expect_key = char == ","

    def _value_role(self) -> str:
        if not self._stack:
            return "root"
        top = self._stack[-1]
        return _CHILD_ROLE.get((top.role, top.key if top.is_object else None), "other")

    def _parent_sentence(self) -> _Sentence | None:
        return self._stack[-1].sentence if self._stack else None

    def _open(self, is_object: bool) -> None:
        role = self._value_role()
        if role not in (_OBJECT_ROLES if is_object else _ARRAY_ROLES):
            role = "other"
        sentence = _Sentence() if role == "sentence" else self._parent_sentence()
        self._stack.append(_Frame(role, is_object, sentence))

    def _close(self, frame: _Frame) -> None:
        if frame.role == "citations" and frame.sentence is not None:
            frame.sentence.cites_done = True
            self._mark(frame.sentence)
        elif frame.role == "root" and not self._stack:
            self._mode = "done"  # anything after the answer (a closing fence) is not shown

    def _end_literal(self) -> None:
        literal, self._literal = self._literal, ""
        role, sentence = self._value_role(), self._parent_sentence()
        if role == "answerable" and literal in ("true", "false"):
            self.answerable = literal == "true"
        elif role == "citation" and sentence is not None and _INTEGER.fullmatch(literal):
            sentence.cites.append(int(literal))

    def _open_string(self) -> None:
        top = self._stack[-1] if self._stack else None
        is_key = top is not None and top.is_object and top.expect_key
        self._string = _String("key" if is_key else self._value_role(), self._parent_sentence())

    def _string_char(self, string: _String, char: str) -> None:
        """One character of a JSON string: escapes decoded, even when split across deltas."""
        if string.escape is None:
            if char == "\\":
                string.escape = ""
            elif char == '"':
                self._end_string(string)
            else:
                self._decoded(string, char)
        elif string.escape == "" and char != "u":
            string.escape = None
            self._decoded(string, _ESCAPES.get(char, char))
        else:
            string.escape += char
            if len(string.escape) == 5:
                code, string.escape = int(string.escape[1:], 16) if _is_hex(string.escape[1:]) else 0xFFFD, None
                self._code_unit(string, code)

    def _code_unit(self, string: _String, code: int) -> None:
        """A \\uXXXX escape: a UTF-16 surrogate pair becomes one character, as `json.loads` does it."""
        if string.high is not None and 0xDC00 <= code <= 0xDFFF:
            high, string.high = string.high, None
            self._emit_char(string, chr(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)))
        elif 0xD800 <= code <= 0xDBFF:
            self._flush_high(string)
            string.high = code
        else:
            self._decoded(string, chr(code))

    def _decoded(self, string: _String, char: str) -> None:
        self._flush_high(string)
        self._emit_char(string, char)

    def _flush_high(self, string: _String) -> None:
        if string.high is not None:
            high, string.high = string.high, None
            self._emit_char(string, chr(high))

    def _emit_char(self, string: _String, char: str) -> None:
        if string.role == "key":
            string.chars.append(char)
        elif string.role == "text" and string.sentence is not None and not string.sentence.text_done:
            self._text_char(string.sentence, char)

    def _end_string(self, string: _String) -> None:
        self._flush_high(string)
        self._string = None
        if string.role == "key" and self._stack:
            self._stack[-1].key = "".join(string.chars)
        elif string.role == "text" and string.sentence is not None:
            string.sentence.text_done = True
            self._mark(string.sentence)

    def _text_char(self, sentence: _Sentence, char: str) -> None:
        """Show a sentence's text stripped, and a space before every sentence but the first."""
        if char.isspace():
            if sentence.shown:
                sentence.spaces += char
            return
        if not sentence.shown:
            self._out.append(" " if self._shown_any else "")
            sentence.shown = self._shown_any = True
        self._out.append(sentence.spaces + char)
        sentence.spaces = ""

    def _mark(self, sentence: _Sentence) -> None:
        """A sentence's [n] markers, once both its text and its citations are complete."""
        if sentence.text_done and sentence.cites_done and not sentence.marked:
            sentence.marked = True
            if sentence.shown:
                self._out.append(markers(split_citations(sentence.cites, self._passages)[0]))


def _is_hex(digits: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in digits)
