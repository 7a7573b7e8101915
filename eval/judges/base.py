"""What every judge takes and gives: the contract `rag eval run` and `rag eval score` rely on.

A judge reads (question, contexts, answer) items and, for each, returns one verdict per atomic claim
of the answer (`eval.claims.split_claims`) and, when it can, how relevant the answer is to the
question. Faithfulness is supported claims / claims, computed here, never by the judge, so every
judge's score means the same thing. `Judge.id` ("offline@1", "llm:qwen2.5-7b@judge@v1") names the judge,
its version and model: reports print it next to every score it produced, and comparisons refuse to
compare scores of different judges.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["ClaimVerdict", "Judge", "JudgeInput", "Judgement", "Progress"]

Progress = Callable[[int, int], None]  # (items done, items in all)


@dataclass(frozen=True, slots=True)
class JudgeInput:
    """One answer to judge: the passages the model was given (in the order it saw them) and what it wrote."""

    id: str
    question: str
    contexts: tuple[str, ...]
    answer: str


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    """One atomic claim: whether the contexts support it, with the judge's confidence 0..1 and why."""

    claim: str
    supported: bool
    score: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Judgement:
    """A judge's verdict on one answer."""

    claims: tuple[ClaimVerdict, ...]
    relevance: float | None = None  # how well the answer addresses the question, 0..1; None: not judged
    details: dict[str, float] = field(default_factory=dict)  # judge-specific figures, kept in the output
    error: str | None = None  # the judge could not judge this item (an LLM reply that broke the schema, say)

    @property
    def faithfulness(self) -> float | None:
        """Supported claims / claims; None when the answer makes no claim (nothing to be unfaithful about)."""
        if not self.claims:
            return None
        return sum(c.supported for c in self.claims) / len(self.claims)

    @property
    def unsupported_claims(self) -> list[str]:
        return [c.claim for c in self.claims if not c.supported]


@runtime_checkable
class Judge(Protocol):
    """Scores answers against their contexts. Implementations are registered by name in `eval.judges`."""

    @property
    def id(self) -> str:
        """Name, version and model of the judge as one string, e.g. "offline@1"."""
        ...

    def judge(self, items: Sequence[JudgeInput], progress: Progress | None = None) -> list[Judgement]:
        """One judgement per item, in order. Deterministic: the same items give the same judgements."""
        ...
