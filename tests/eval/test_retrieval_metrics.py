from __future__ import annotations

from pathlib import Path

import pytest

from eval.retrieval import QuestionCase, evaluate_retrieval, load_questions
from rag.types import Chunk, Filters, ScoredChunk


class FixedRetriever:
    def __init__(self, ranking: dict[str, list[str]]) -> None:
        self.ranking = ranking

    def retrieve(self, question: str, *, top_k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        return [ScoredChunk(Chunk(id=i, text="", source=s, title="", doc_type="doc"), 1.0 - i / 10)
                for i, s in enumerate(self.ranking[question][:top_k])]


def test_hit_rates_and_mrr() -> None:
    retriever = FixedRetriever({"a": ["x", "y"], "b": ["y", "z", "q", "w", "v"], "c": ["n", "m"], "d": []})
    cases = [QuestionCase("1", "a", ("x",)), QuestionCase("2", "b", ("w",)), QuestionCase("3", "c", ("k",)),
             QuestionCase("4", "d", (), answerable=False)]
    report = evaluate_retrieval(retriever, cases, k=5)
    assert report.cases == 3
    assert report.hit_rate(1) == pytest.approx(1 / 3) and report.hit_rate(5) == pytest.approx(2 / 3)
    assert report.mrr == pytest.approx((1 + 1 / 4 + 0) / 3)
    assert [m[0] for m in report.misses] == ["2", "3"]


def test_load_questions_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": "q1", "question": "?", "expected_sources": ["a"]}\n{"id": "q2"}\n')
    with pytest.raises(ValueError, match=r"q\.jsonl:2"):
        load_questions(path)
