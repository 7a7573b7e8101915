"""Checking an answer against the passages it cites, sentence by sentence.

A sentence is supported when enough of its content words (the BM25 tokenizer's terms: stemmed,
stop words out, Chinese segmented) and every number it states appear together in one place of a
passage it cites: one passage sentence or two adjacent ones. So wrong numbers ("30 days" against
a passage saying 45) and claims stitched from words scattered over a passage fail. This is a fast
lexical check: a claim built from one passage sentence's words with another meaning can pass;
the eval harness's judge checks meaning. A sentence without a [n] marker is checked against all
passages; a sentence without a single content word ("1 [1]", "Yes.") is not supported. For each
cited passage the best-matching passage sentence is located, as a character span a UI can highlight.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.tokenizer import TextTokenizer

__all__ = ["MARKER", "SentenceCheck", "Verification", "best_span", "split_sentences", "verify"]

MARKER = re.compile(r"\[(\d+)\]")  # a citation marker [n] in an answer
# a full stop ends a sentence, except in "a.m.", "p.m.", "e.g." and "i.e." ("open 7 a.m. to 6 p.m. daily")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])(?<!\ba\.m\.)(?<!\bp\.m\.)(?<!\be\.g\.)(?<!\bi\.e\.)"
                           r"(?:\s*(?:\[\d+\])+)?(?:\s+|$)|(?<=[。！？])(?:\s*(?:\[\d+\])+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    """One sentence of an answer: what it cites, how much of it the cited passages support."""

    text: str
    cites: tuple[int, ...]
    support: float
    numbers_found: bool
    supported: bool


@dataclass(frozen=True, slots=True)
class Verification:
    sentences: tuple[SentenceCheck, ...]
    invalid_citations: tuple[int, ...]

    @property
    def supported_share(self) -> float:
        return sum(s.supported for s in self.sentences) / len(self.sentences) if self.sentences else 0.0


def split_sentences(text: str) -> list[str]:
    """Sentences, each keeping the [n] markers that follow its full stop."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        piece = text[start:end].strip()
        if piece:
            parts.append(piece)
        start = end
    tail = text[start:].strip()
    return parts + ([tail] if tail else [])


def verify(answer: str, passages: Sequence[str], tokenizer: TextTokenizer, *, threshold: float = 0.6) -> Verification:
    """Check each sentence of `answer` against the passages it cites (numbered from 1)."""
    windows = [_windows(p, tokenizer) for p in passages]
    invalid = sorted({int(n) for n in MARKER.findall(answer) if not 1 <= int(n) <= len(passages)})
    checks = []
    for sentence in split_sentences(answer):
        cites = tuple(sorted({int(n) for n in MARKER.findall(sentence) if 1 <= int(n) <= len(passages)}))
        scope = [i - 1 for i in cites] or list(range(len(passages)))
        plain = MARKER.sub("", sentence)
        wanted, stated = set(tokenizer.tokens(plain)), set(_numbers(plain))
        support, numbers_found = 0.0, not stated
        for terms, numbers in (w for i in scope for w in windows[i]):
            share = len(wanted & terms) / len(wanted) if wanted else 1.0
            if (stated <= numbers, share) > (numbers_found, support):
                support, numbers_found = share, stated <= numbers
        checks.append(SentenceCheck(sentence, cites, round(support, 4), numbers_found,  # a bare "1 [1]" says nothing
                                    support >= threshold and numbers_found and bool(scope) and _says_something(wanted)))
    return Verification(tuple(checks), tuple(invalid))


def best_span(claim: str, passage: str, tokenizer: TextTokenizer) -> tuple[int, int] | None:
    """The [start, end) of the passage sentence sharing most terms with `claim`, None if none shares any."""
    wanted = set(tokenizer.tokens(MARKER.sub("", claim)))
    best, best_overlap, position = None, 0, 0
    for sentence in split_sentences(passage):
        start = passage.find(sentence, position)
        if start < 0:
            continue
        position = start + len(sentence)
        overlap = len(wanted & set(tokenizer.tokens(sentence)))
        if overlap > best_overlap:
            best, best_overlap = (start, start + len(sentence)), overlap
    return best


def _windows(passage: str, tokenizer: TextTokenizer) -> list[tuple[set[str], set[str]]]:
    """(terms, numbers) of each passage sentence joined with the next one."""
    sentences = split_sentences(passage) or [passage]
    pieces = [" ".join(sentences[i : i + 2]) for i in range(max(1, len(sentences) - 1))]
    return [(set(tokenizer.tokens(piece)), set(_numbers(piece))) for piece in pieces]


def _says_something(terms: set[str]) -> bool:
    """A term that is not a bare number: "1 [1]" alone backs nothing."""
    return any(not _NUMBER.fullmatch(term) for term in terms)


def _numbers(text: str) -> list[str]:
    return [n.replace(",", "") for n in _NUMBER.findall(text)]
