"""Retrieval metrics on a question set: hit rate at k and mean reciprocal rank.

A hit is a retrieved chunk whose source is one of the question's expected sources; ticket
sources compare as 'file#ticket_id'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rag.protocols import Retriever

__all__ = ["QuestionCase", "RetrievalReport", "evaluate_retrieval", "load_questions"]


@dataclass(frozen=True, slots=True)
class QuestionCase:
    id: str
    question: str
    expected_sources: tuple[str, ...]
    answer_contains: tuple[str, ...] = ()
    answerable: bool = True


@dataclass(slots=True)
class RetrievalReport:
    k: int
    cases: int = 0
    hits_at: dict[int, int] = field(default_factory=dict)
    reciprocal_ranks: list[float] = field(default_factory=list)
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def hit_rate(self, k: int) -> float:
        return self.hits_at.get(k, 0) / self.cases if self.cases else 0.0

    @property
    def mrr(self) -> float:
        return sum(self.reciprocal_ranks) / len(self.reciprocal_ranks) if self.reciprocal_ranks else 0.0

    def as_dict(self) -> dict[str, object]:
        return {"cases": self.cases, "mrr": round(self.mrr, 4),
                **{f"hit@{k}": round(self.hit_rate(k), 4) for k in sorted(self.hits_at)},
                "misses": [{"id": i, "question": q, "retrieved": r} for i, q, r in self.misses]}


def load_questions(path: Path) -> list[QuestionCase]:
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            cases.append(QuestionCase(data["id"], data["question"], tuple(data.get("expected_sources", ())),
                                      tuple(data.get("answer_contains", ())), bool(data.get("answerable", True))))
        except (json.JSONDecodeError, KeyError) as exc:
            raise ValueError(f"{path}:{number}: not a question case ({exc})") from exc
    return cases


def evaluate_retrieval(retriever: Retriever, cases: list[QuestionCase], *, k: int = 5) -> RetrievalReport:
    """Score answerable cases: was an expected source among the top 1, 3 and k results?"""
    report = RetrievalReport(k=k, hits_at={1: 0, 3: 0, k: 0})
    for case in cases:
        if not case.answerable or not case.expected_sources:
            continue
        sources = [hit.chunk.source for hit in retriever.retrieve(case.question, top_k=k)]
        rank = next((i for i, s in enumerate(sources, start=1) if s in case.expected_sources), None)
        report.cases += 1
        report.reciprocal_ranks.append(1.0 / rank if rank else 0.0)
        for cutoff in report.hits_at:
            report.hits_at[cutoff] += 1 if rank is not None and rank <= cutoff else 0
        if rank is None or rank > 3:
            report.misses.append((case.id, case.question, sources))
    return report
