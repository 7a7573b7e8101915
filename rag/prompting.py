"""Turning retrieved chunks into numbered passages, and the answer's [n] markers back into sources."""

from __future__ import annotations

import re
from collections.abc import Sequence

from prompts import PromptTemplate
from rag.grounding import best_span, split_sentences
from rag.tokenizer import TextTokenizer
from rag.types import Citation, Message, ScoredChunk

__all__ = ["build_messages", "cited_numbers", "make_citations", "render_passages"]

_MARKER = re.compile(r"\[(\d{1,3})\]")


_KINDS = {"policy": "policy", "doc": "product document", "ticket": "past ticket"}


def render_passages(hits: Sequence[ScoredChunk], *, max_chars: int = 1200) -> str:
    """'[1] (policy: Title — source)\\ntext' blocks, one per hit, in rank order."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        chunk = hit.chunk
        kind = _KINDS.get(chunk.doc_type, chunk.doc_type)
        blocks.append(f"[{n}] ({kind}: {chunk.title} — {chunk.source})\n{chunk.text[:max_chars]}")
    return "\n\n".join(blocks)


def build_messages(template: PromptTemplate, question: str, hits: Sequence[ScoredChunk]) -> list[Message]:
    """The system message carries instructions and passages; the user message is the question."""
    passages = render_passages(hits) if hits else "(no passages found)"
    return [
        Message("system", template.system.replace("{passages}", passages)),
        Message("user", template.user.replace("{question}", question)),
    ]


def cited_numbers(answer: str, passages: int) -> set[int]:
    """The passage numbers the answer cites as [n] that exist (1..passages)."""
    return {int(n) for n in _MARKER.findall(answer) if 1 <= int(n) <= passages}


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
