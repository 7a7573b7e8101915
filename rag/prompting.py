"""Turning retrieved chunks into numbered passages, and the answer's [n] markers back into sources.

Passages go into the prompt in rank order while it stays within a token budget (`pack_messages`); the
pipeline then numbers citations exactly as the passages it shows. Tokens are counted with the served
model's own tokenizer when its files are on this machine (`load_token_counter`, the only module that
imports transformers), else estimated by `estimate_tokens`, which over-counts on purpose: a digit, a
punctuation mark or symbol, and a CJK (or other wide-script) character count one token each, other text
one token per 3 UTF-8 bytes. Measured against gemma-3-270m's tokenizer on the 600-character pieces of
samples/corpus: 1.08x the real count at least, 1.43x the median (plain bytes / 3 was 0.75x at least:
ticket CSVs full of dates and numbers, which gemma splits digit by digit).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache

from prompts import PromptTemplate
from rag.grounding import MARKER, best_span, split_sentences
from rag.tokenizer import TextTokenizer
from rag.types import Citation, Message, ScoredChunk

__all__ = [
    "TokenCounter",
    "build_messages",
    "cited_numbers",
    "estimate_tokens",
    "load_token_counter",
    "make_citations",
    "pack_messages",
    "render_passages",
]

TokenCounter = Callable[[str], int]
NO_PASSAGES = "(no passages found)"
_ONE_TOKEN = re.compile(r"[^\w\s]|[\d_]|[^\x00-\u2e7f]")  # punctuation, digits, wide-script characters
_SENTENCE_END = re.compile(r"(?<=[.!?])\s|(?<=[。！？])|\n")

log = logging.getLogger("rag.prompting")



_KINDS = {"policy": "policy", "doc": "product document", "ticket": "past ticket"}


def render_passages(hits: Sequence[ScoredChunk], *, max_chars: int = 1200) -> str:
    """'[1] (policy: Title — source)\\ntext' blocks, one per hit, in rank order."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        kind = _KINDS.get(chunk.doc_type, chunk.doc_type)
        blocks.append(f"[{n}] ({kind}: {chunk.title} — {chunk.source})\n{chunk.text[:max_chars]}")
    return "\n\n".join(blocks)


def build_messages(template: PromptTemplate, question: str, hits: Sequence[ScoredChunk], *,
                   budget_tokens: int | None = None, count_tokens: TokenCounter | None = None) -> list[Message]:
    """The system message carries instructions and passages; the user message is the question."""
    return pack_messages(template, question, hits, budget_tokens=budget_tokens, count_tokens=count_tokens)[0]


def pack_messages(template: PromptTemplate, question: str, hits: Sequence[ScoredChunk], *,
                  budget_tokens: int | None = None, count_tokens: TokenCounter | None = None,
                  ) -> tuple[list[Message], list[ScoredChunk]]:
    """The messages and the hits they show: each hit, in rank order, that keeps the prompt within
    `budget_tokens` (None: all); one that does not fit is dropped whole, except the first, which is
    cut to fit so the model always has a passage. Cite from the returned hits: they are numbered so."""
    if budget_tokens is None or not hits:
        return _messages(template, question, hits), list(hits)
    count = count_tokens or estimate_tokens
    shown: list[ScoredChunk] = []
    for hit in hits:
        if _size(template, question, [*shown, hit], count) <= budget_tokens:
            shown.append(hit)
        elif not shown:
            shown.append(_cut_to_fit(template, question, hit, budget_tokens, count))
    if len(shown) < len(hits) or shown[0] is not hits[0]:
        log.info("prompt budget %d tokens: %d of %d passages shown%s", budget_tokens, len(shown), len(hits),
                 "" if shown[0] is hits[0] else ", the first one shortened")
    return _messages(template, question, shown), shown


def estimate_tokens(text: str) -> int:
    """An upper estimate of a subword tokenizer's count, for when the model's own is not at hand."""
    rest = _ONE_TOKEN.sub("", text)
    return len(text) - len(rest) + -(-len(rest.encode("utf-8")) // 3)


@lru_cache(maxsize=4)
def load_token_counter(model: str | None) -> TokenCounter:
    """The model's tokenizer from local files only (never the network); `estimate_tokens` without one."""
    if not model:
        return estimate_tokens
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=True)
    except Exception as exc:  # ImportError, OSError, ValueError...: each one means "estimate instead"
        log.info("no local tokenizer for %r (%s): estimating prompt tokens", model, type(exc).__name__)
        return estimate_tokens
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


def _messages(template: PromptTemplate, question: str, hits: Sequence[ScoredChunk]) -> list[Message]:
    system, user = template.render(passages=render_passages(hits) if hits else NO_PASSAGES, question=question)
    return [Message("system", system), Message("user", user)]


def _size(template: PromptTemplate, question: str, hits: Sequence[ScoredChunk], count: TokenCounter) -> int:
    return sum(count(message.content) for message in _messages(template, question, hits))


def _cut_to_fit(template: PromptTemplate, question: str, hit: ScoredChunk, budget: int,
                count: TokenCounter) -> ScoredChunk:
    """`hit` with its text cut (at a sentence end where one is near) to the longest that fits."""
    def shortened(limit: int) -> ScoredChunk:
        return ScoredChunk(replace(hit.chunk, text=_cut(hit.chunk.text, limit)), hit.score, hit.signals)

    low, high = 0, len(hit.chunk.text)
    while low < high:  # the longest limit whose prompt fits; 0 when none does (header and "…" only)
        middle = (low + high + 1) // 2
        low, high = (middle, high) if _size(template, question, [shortened(middle)], count) <= budget else (low, middle - 1)
    return shortened(low)


def _cut(text: str, limit: int) -> str:
    """At most `limit` characters plus "…": whole sentences when the last sentence end keeps half, else words."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.start() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]].rstrip() + " …"
    return (head.rsplit(" ", 1)[0] if " " in head else head).rstrip() + "…"


def cited_numbers(answer: str, passages: int) -> set[int]:
    """The passage numbers the answer cites as [n] that exist (1..passages)."""
    return {int(n) for n in MARKER.findall(answer) if 1 <= int(n) <= passages}


def make_citations(answer: str, hits: Sequence[ScoredChunk], *, snippet_chars: int = 240,
                   tokenizer: TextTokenizer | None = None) -> tuple[Citation, ...]:
    """Every passage shown to the model, numbered as in the prompt, flagged when the answer cites it;
    with a tokenizer, a cited passage also carries the span of its sentence that best supports the answer."""
    cited = cited_numbers(answer, len(hits))
    claims = {n: " ".join(s for s in split_sentences(answer) if f"[{n}]" in s) for n in cited}
    return tuple(
        Citation(
            n=n, source=hit.chunk.source, title=hit.chunk.title, snippet=_snippet(hit.chunk.text, snippet_chars),
            score=round(hit.score, 4), cited=n in cited, doc_type=hit.chunk.doc_type,
            section=hit.chunk.section, page=hit.chunk.page, text=hit.chunk.text,
            span=best_span(claims[n], hit.chunk.text, tokenizer) if n in cited and tokenizer else None,
        )
        for n, hit in enumerate(hits, start=1)
    )


def _snippet(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"
