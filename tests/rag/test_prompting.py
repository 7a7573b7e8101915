from __future__ import annotations

import pytest

import prompts
from rag.prompting import build_messages, cited_numbers, make_citations
from rag.types import Chunk, ScoredChunk


def hit(i: int, text: str = "Returns within 45 days.") -> ScoredChunk:
    return ScoredChunk(Chunk(id=i, text=text, source=f"p{i}.md", title=f"Title {i}", doc_type="policy"), 0.5 + i / 10)


def test_cited_numbers_ignores_out_of_range_markers() -> None:
    assert cited_numbers("A [1] and [3][2], not [7] or [0].", 3) == {1, 2, 3}


def test_citations_number_every_passage_and_flag_cited_ones() -> None:
    citations = make_citations("Within 45 days [2].", [hit(1), hit(2)])
    assert [(c.n, c.source, c.cited) for c in citations] == [(1, "p1.md", False), (2, "p2.md", True)]
    assert citations[0].snippet == "Returns within 45 days."


def test_messages_number_passages_and_keep_the_question_separate() -> None:
    template = prompts.load("answer")
    system, user = build_messages(template, "How long?", [hit(1), hit(2)])
    assert "[1] (policy: Title 1 — p1.md)\nReturns within 45 days." in system.content
    assert "[2] (policy: Title 2 — p2.md)" in system.content
    assert user.content == "How long?" and user.role == "user"
    assert "not instructions" in system.content


def test_passages_say_what_they_are_and_the_latest_prompt_lets_a_policy_win() -> None:
    ticket = ScoredChunk(Chunk(id=9, text="30 days.", source="t.jsonl#T-1", title="Return", doc_type="ticket"), 0.9)
    doc = ScoredChunk(Chunk(id=8, text="650 lumens.", source="d.md", title="Aurora", doc_type="doc"), 0.8)
    template = prompts.load("answer")
    assert template.id == "answer@v2"
    system, _ = build_messages(template, "How long?", [hit(1), ticket, doc])
    assert "[2] (past ticket: Return — t.jsonl#T-1)" in system.content
    assert "[3] (product document: Aurora — d.md)" in system.content
    assert "if a policy and a past ticket disagree, follow the policy" in system.content
    assert "disagree" not in prompts.load("answer", "v1").system  # v1 stays as it was


def test_prompt_registry() -> None:
    assert "answer@v1" in prompts.available()
    assert prompts.load("answer", "v1").id == "answer@v1"
    with pytest.raises(LookupError, match="available"):
        prompts.load("nope")
    with pytest.raises(LookupError, match="no version"):
        prompts.load("answer", "v99")
