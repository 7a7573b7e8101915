"""The answer contract: answer, or escalate to a person, and why, with a confidence.

    retrieval: best relevance < min_relevance ─────────────► escalate (no LLM call)
    model: replies with the prompt's refusal ──────────────► escalate
    verification (rag.grounding), by strictness:
        strict     any unsupported sentence ───────────────► escalate
        balanced   unsupported sentences removed; none left ► escalate   (default)
        lenient    everything kept; unsupported ones listed

Strict never ships an unverified sentence but escalates more; lenient answers more often and
leaves the judgement to the reader of `removed`/`reason`. The confidence is the best passage's
relevance times the share of the answer's sentences that are supported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rag.grounding import Verification, verify
from rag.tokenizer import TextTokenizer
from rag.types import Decision, ScoredChunk

__all__ = ["AnswerPolicy", "Outcome", "Strictness"]

Strictness = Literal["strict", "balanced", "lenient"]
HANDOFF = "I can't answer that from our documentation; let me connect you with a person."
_MARKER = re.compile(r"\s*\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the pipeline returns after reviewing the model's text."""

    decision: Decision
    text: str
    reason: str
    confidence: float
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AnswerPolicy:
    """When to answer and when to hand the customer to a person."""

    min_relevance: float = 0.4
    strictness: Strictness = "balanced"
    support_threshold: float = 0.6
    handoff_message: str = HANDOFF

    def before_generation(self, hits: Sequence[ScoredChunk]) -> Outcome | None:
        """Escalate without asking the model when no passage is relevant enough."""
        best = max((h.score for h in hits), default=0.0)
        if best >= self.min_relevance:
            return None
        found = f"the best match scores {best:.2f}" if hits else "nothing matched the filters"
        return self.escalate(f"nothing in the knowledge base matches this question closely enough ({found}, "
                             f"below {self.min_relevance:.2f})")

    def review(self, text: str, hits: Sequence[ScoredChunk], tokenizer: TextTokenizer, *, refusal: str) -> Outcome:
        """Decide on the model's answer: refusal, then sentence-level verification by strictness."""
        if not text.strip():
            return self.escalate("the language model returned an empty answer")
        if _is_refusal(text, refusal):
            return self.escalate("the documents found do not answer this question (the model said so)")
        check = verify(text, [h.chunk.text for h in hits], tokenizer, threshold=self.support_threshold)
        return self._judge(check, max(h.score for h in hits))

    def escalate(self, reason: str) -> Outcome:
        return Outcome("escalate", self.handoff_message, reason, 0.0)

    def _judge(self, check: Verification, best: float) -> Outcome:
        kept = [s.text for s in check.sentences if s.supported]
        dropped = tuple(s.text for s in check.sentences if not s.supported)
        confidence = round(best * check.supported_share, 4)
        notes = f"; cited passage(s) {list(check.invalid_citations)} do not exist" if check.invalid_citations else ""
        if dropped and (self.strictness == "strict" or not kept):
            return Outcome("escalate", self.handoff_message,
                           f"{len(dropped)} of {len(check.sentences)} sentence(s) of the answer are not backed by "
                           f"the passages they cite{notes}", confidence, dropped)
        if self.strictness == "lenient":
            text = " ".join(s.text for s in check.sentences)
            reason = f"{len(dropped)} sentence(s) are not backed by the passages" if dropped else "verified"
            return Outcome("answer", _clean(text, check), reason + notes, confidence, dropped)
        reason = f"removed {len(dropped)} unsupported sentence(s)" if dropped else "every sentence is backed by a passage"
        return Outcome("answer", _clean(" ".join(kept), check), reason + notes, confidence, dropped)


def _is_refusal(text: str, refusal: str) -> bool:
    normal = " ".join(text.replace("’", "'").lower().split())
    core = " ".join(refusal.replace("’", "'").lower().split()).split(";")[0].strip(" .")
    return bool(core) and core in normal


def _clean(text: str, check: Verification) -> str:
    """Drop markers that point at passages that were never given."""
    bad = set(check.invalid_citations)
    return _MARKER.sub(lambda m: "" if int(m.group(1)) in bad else m.group(0), text).strip()
