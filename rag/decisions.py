"""The answer contract: answer, or escalate to a person, and why, with a confidence.

    retrieval: best relevance < min_relevance ─────────────► escalate (no LLM call)
    retrieval: the best passages describe several products,
               and the question names none of them ────────► clarify (no LLM call): "which one?"
    model: replies with the prompt's refusal ──────────────► escalate
    verification (rag.grounding), by strictness:
        strict     any unsupported sentence ───────────────► escalate
        balanced   unsupported sentences removed; none left ► escalate   (default)
        lenient    everything kept; unsupported ones listed
    injection (rag.injection), at every strictness (off with guard_injection=False):
        answer recites the system prompt (>= leak_words words verbatim) ──────────► escalate
        answer gives the reply a retrieved document dictates to the assistant,
        or restates its instructions more closely than any trusted passage backs it ► escalate
        passages that try to instruct the assistant are "tainted": they back no sentence
        (such sentences count as unsupported, and even lenient drops them) and are never cited
    model: unavailable, and the pipeline set to answer extractively ────────────► escalate, with the
        hand-off followed by the best passages quoted with their [n] markers (`degraded`)

Strict never ships an unverified sentence but escalates more; lenient answers more often and
leaves the judgement to the reader of `removed`/`reason`. The confidence is the best passage's
relevance times the share of the answer's sentences that are supported; tainted passages are left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import prompts
from rag.grounding import MARKER, SentenceCheck, Verification, best_span, split_sentences, verify
from rag.injection import find_instructions, instruction_payloads, shared_span
from rag.tokenizer import TextTokenizer
from rag.types import Decision, ScoredChunk

__all__ = ["AnswerPolicy", "Outcome", "Strictness", "shipped_prompt_text"]

Strictness = Literal["strict", "balanced", "lenient"]
HANDOFF = "I can't answer that from our documentation; let me connect you with a person."
_MARKER = re.compile(r"\s*" + MARKER.pattern)  # with the space before it, to remove
_PLACEHOLDER = re.compile(r"\{[A-Za-z_]\w*\}")


def shipped_prompt_text() -> tuple[str, ...]:
    """The fixed wording of every shipped prompt template, which an answer must never recite."""
    texts = []
    for prompt_id in prompts.available():
        template = prompts.load(*prompt_id.split("@", 1))
        texts.append(_PLACEHOLDER.sub("\n", f"{template.system}\n{template.user}"))
    return tuple(texts)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the pipeline returns after reviewing the model's text."""

    decision: Decision
    text: str
    reason: str
    confidence: float
    removed: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # what the customer can pick from, when the decision is clarify
    extractive: bool = False  # the text quotes passages with their [n] markers (the model was unavailable)


@dataclass(frozen=True, slots=True)
class AnswerPolicy:
    """When to answer and when to hand the customer to a person."""

    min_relevance: float = 0.4
    strictness: Strictness = "balanced"
    support_threshold: float = 0.6
    handoff_message: str = HANDOFF
    guard_injection: bool = True
    private_prompts: tuple[str, ...] = field(default_factory=shipped_prompt_text)
    leak_words: int = 12
    clarify_margin: float = 0.15
    clarify_message: str = "Which product do you mean: {options}?"

    def before_generation(self, question: str, hits: Sequence[ScoredChunk], tokenizer: TextTokenizer) -> Outcome | None:
        """Escalate without asking the model when no passage is relevant enough; ask which product
        when the best passages are about several and the question names none."""
        best = max((h.score for h in hits), default=0.0)
        if best >= self.min_relevance:
            return self._clarify(question, hits, tokenizer, best)
        found = f"the best match scores {best:.2f}" if hits else "nothing matched the filters"
        return self.escalate(f"nothing in the knowledge base matches this question closely enough ({found}, "
                             f"below {self.min_relevance:.2f})")

    def _clarify(self, question: str, hits: Sequence[ScoredChunk], tokenizer: TextTokenizer,
                 best: float) -> Outcome | None:
        """Several products within `clarify_margin` of the best product document, none named in the question.

        Only product documents count: a policy or a ticket on top means the question is not about one product.
        A product counts as named when the question shares a word with its name ("kettle", "Aurora").
        """
        if self.clarify_margin <= 0 or not hits or hits[0].chunk.doc_type != "doc" or not _product(hits[0]):
            return None
        floor = max(self.min_relevance, best - self.clarify_margin)
        close = list(dict.fromkeys(_product(h) for h in hits if h.score >= floor and h.chunk.doc_type == "doc"))
        products = [p for p in close if p]
        asked = set(tokenizer.tokens(question))
        if len(products) < 2 or any(asked & set(tokenizer.tokens(p)) for p in dict.fromkeys(map(_product, hits)) if p):
            return None
        options = ", ".join(products[:-1]) + f" or {products[-1]}"
        return Outcome("clarify", self.clarify_message.replace("{options}", options),
                       f"the question fits {len(products)} products ({', '.join(products)}) and names none of them: "
                       "asking the customer which one", round(best, 4), options=tuple(products))

    def review(self, text: str, hits: Sequence[ScoredChunk], tokenizer: TextTokenizer, *, refusal: str,
               answerable: bool = True, dropped_citations: Sequence[int] = ()) -> Outcome:
        """Decide on the model's answer: prompt leak, refusal, obeyed documents, then verification by strictness.
        `answerable` False is a structured answer's refusal; `dropped_citations` the ids it cited that were not given."""
        if not answerable:
            return self.escalate("the documents found do not answer this question (the model said so)")
        if not text.strip():
            return self.escalate("the language model returned an empty answer")
        if self._recites_prompt(text, refusal):
            return self.escalate("the answer repeats the assistant's private instructions (its system prompt) "
                                 "instead of answering")
        if _is_refusal(text, refusal):
            return self.escalate("the documents found do not answer this question (the model said so)")
        tainted = self._tainted(hits)
        trusted = [("" if n in tainted else h.chunk.text) for n, h in enumerate(hits, start=1)]
        check = verify(text, trusted, tokenizer, threshold=self.support_threshold)
        obeyed = self._obeyed_document(check, hits, tainted, tokenizer)
        if obeyed:
            return self.escalate(f"the answer follows instructions found inside a retrieved document ({obeyed}) "
                                 "instead of the store's documents")
        taint = _taint(text, check, hits, tainted, tokenizer, self.support_threshold)
        best = max((h.score for n, h in enumerate(hits, start=1) if n not in tainted), default=0.0)
        return self._judge(check, best, taint, tuple(dropped_citations))

    def escalate(self, reason: str) -> Outcome:
        return Outcome("escalate", self.handoff_message, reason, 0.0)

    def degraded(self, question: str, hits: Sequence[ScoredChunk], tokenizer: TextTokenizer, reason: str,
                 *, quotes: int = 3) -> Outcome:
        """The hand-off while the language model is unavailable (`reason`), followed by the best passages'
        sentences closest to the question, quoted with their [n] markers: the customer may find the answer
        there while waiting for a person. Passages below `min_relevance` or trying to instruct the
        assistant are not quoted; with none left, it is the plain hand-off."""
        tainted = self._tainted(hits)
        shown = [(n, h) for n, h in enumerate(hits, start=1)
                 if n not in tainted and h.score >= self.min_relevance][:quotes]
        why = f"the language model is unavailable ({reason})"
        if not shown:
            return self.escalate(why)
        lines = [f'- {h.chunk.title}: "{_quote(question, h.chunk.text, tokenizer)}" [{n}]' for n, h in shown]
        text = f"{self.handoff_message}\n\nIn the meantime, these passages may help:\n" + "\n".join(lines)
        return Outcome("escalate", text, f"{why}: the best passages are shown instead", 0.0, extractive=True)

    def _tainted(self, hits: Sequence[ScoredChunk]) -> dict[int, str]:
        """Passage number -> source, for the passages that try to instruct the assistant."""
        if not self.guard_injection:
            return {}
        return {n: h.chunk.source for n, h in enumerate(hits, start=1) if find_instructions(h.chunk.text)}

    def _recites_prompt(self, text: str, refusal: str) -> bool:
        """True when the answer holds `leak_words` consecutive words of a private prompt (the refusal aside)."""
        return self.guard_injection and any(shared_span(text, p, min_words=self.leak_words, ignore=refusal)
                                            for p in self.private_prompts)

    def _obeyed_document(self, check: Verification, hits: Sequence[ScoredChunk], tainted: dict[int, str],
                         tokenizer: TextTokenizer) -> str:
        """The source of the tainted passage whose instructions the answer carries out, "" when none."""
        for n, source in tainted.items():
            payloads, orders = _orders(hits[n - 1].chunk.text, tokenizer)
            if any(_obeys(s, payloads, orders, tokenizer, self.support_threshold) for s in check.sentences):
                return source
        return ""

    def _judge(self, check: Verification, best: float, taint: _Taint, not_given: tuple[int, ...]) -> Outcome:
        kept = [s.text for s in check.sentences if s.supported]
        dropped = tuple(s.text for s in check.sentences if not s.supported)
        confidence = round(best * check.supported_share, 4)
        notes = _notes(check, taint, not_given)
        if dropped and (self.strictness == "strict" or not kept):
            return Outcome("escalate", self.handoff_message,
                           f"{len(dropped)} of {len(check.sentences)} sentence(s) of the answer are not backed by "
                           f"the passages they cite{notes}", confidence, dropped)
        if self.strictness == "lenient":
            shown = " ".join(s.text for i, s in enumerate(check.sentences) if i not in taint.sentences)
            reason = f"{len(dropped)} sentence(s) are not backed by the passages" if dropped else "verified"
            return Outcome("answer", _clean(shown, check, taint), reason + notes, confidence, dropped)
        reason = f"removed {len(dropped)} unsupported sentence(s)" if dropped else "every sentence is backed by a passage"
        return Outcome("answer", _clean(" ".join(kept), check, taint), reason + notes, confidence, dropped)


@dataclass(frozen=True, slots=True)
class _Taint:
    """Passages that try to instruct the assistant, and the answer sentences only they would back."""

    passages: frozenset[int] = frozenset()
    sentences: frozenset[int] = frozenset()
    sources: tuple[str, ...] = ()


def _taint(text: str, check: Verification, hits: Sequence[ScoredChunk], tainted: dict[int, str],
           tokenizer: TextTokenizer, threshold: float) -> _Taint:
    """Which unsupported sentences a tainted passage would have backed (so the reason can say why)."""
    if not tainted:
        return _Taint()
    full = verify(text, [h.chunk.text for h in hits], tokenizer, threshold=threshold)
    only = frozenset(i for i, (c, f) in enumerate(zip(check.sentences, full.sentences, strict=True))
                     if f.supported and not c.supported)
    return _Taint(frozenset(tainted), only, tuple(dict.fromkeys(tainted.values())))


def _orders(passage: str, tokenizer: TextTokenizer) -> tuple[list[set[str]], list[set[str]]]:
    """The terms of each reply a passage dictates, and of each sentence giving instructions joined with the next."""
    payloads = [set(tokenizer.tokens(p)) for p in instruction_payloads(passage)]
    texts = split_sentences(passage)
    terms = [set(tokenizer.tokens(t)) for t in texts] + [set()]
    orders = [terms[i] | terms[i + 1] for i, text in enumerate(texts) if find_instructions(text)]
    return [p for p in payloads if len(p) >= 2], orders


def _obeys(sentence: SentenceCheck, payloads: list[set[str]], orders: list[set[str]], tokenizer: TextTokenizer,
           threshold: float) -> bool:
    """True when an answer sentence repeats a dictated reply (70% of its terms) that the trusted passages do
    not back, or restates an instruction sentence more closely than any trusted passage backs it."""
    said = set(tokenizer.tokens(_MARKER.sub("", sentence.text)))
    if not said:
        return False
    if not sentence.supported and any(len(p & said) >= 0.7 * len(p) for p in payloads):
        return True
    return any(len(o & said) / len(said) >= max(threshold, sentence.support + 1e-9) for o in orders)


def _notes(check: Verification, taint: _Taint, not_given: tuple[int, ...]) -> str:
    invalid = sorted(set(check.invalid_citations) | set(not_given))
    notes = f"; cited passage(s) {invalid} do not exist" if invalid else ""
    if taint.sentences:
        notes += (f"; {len(taint.sentences)} sentence(s) were backed only by a document that tries to give the "
                  f"assistant instructions ({', '.join(taint.sources)}), which is not trusted")
    return notes


def _quote(question: str, passage: str, tokenizer: TextTokenizer, limit: int = 200) -> str:
    """The passage's sentence closest to the question (its opening when none shares a term), on one
    line, cut at a word to `limit` characters."""
    start, end = best_span(question, passage, tokenizer) or (0, len(passage))
    flat = " ".join(_MARKER.sub("", passage[start:end]).split()).replace('"', "'")  # its own [n]s would cite
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"


def _product(hit: ScoredChunk) -> str:
    return str(hit.chunk.metadata.get("product") or "")


def _is_refusal(text: str, refusal: str) -> bool:
    normal = " ".join(text.replace("’", "'").lower().split())
    core = " ".join(refusal.replace("’", "'").lower().split()).split(";")[0].strip(" .")
    return bool(core) and core in normal


def _clean(text: str, check: Verification, taint: _Taint) -> str:
    """Drop markers that point at passages that were never given or that are tainted."""
    bad = set(check.invalid_citations) | taint.passages
    return _MARKER.sub(lambda m: "" if int(m.group(1)) in bad else m.group(0), text).strip()
