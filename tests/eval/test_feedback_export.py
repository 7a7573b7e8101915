"""Feedback records as suite cases, and `rag eval from-feedback` writing them (run through a scratch Typer app)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eval.feedback import feedback_cases
from eval.feedback_cli import register
from rag.conversations import ConversationStore
from rag.errors import InputError
from rag.feedback import Feedback, FeedbackStore, rate_turn
from rag.types import Turn

FOLLOW_UP = Feedback(
    id=7, created="2025-06-02T10:00:00+00:00", rating="down", comment="The fee is 15%, not 10%.",
    conversation_id="chat-1", turn=2, question="and for opened electronics?",
    standalone="Return window for opened electronics?", answer="The same, with a 10% fee [1].", decision="answer",
    sources=("policies/returns.md", "docs/aurora.md"), earlier=(Turn("How long is the return window?", "45 days [1]."),),
    index_version="v3", correction="45 days; opened electronics carry a 15% restocking fee.",
)
FIRST_QUESTION = Feedback(
    id=8, created="2025-06-02T11:00:00+00:00", rating="down", comment="", conversation_id="chat-2", turn=1,
    question="Can I return a used tent?", standalone="", answer="I can't answer that; let me connect you.",
    decision="escalate", sources=(), earlier=(), index_version="v3",
)
PRAISED = Feedback(
    id=9, created="2025-06-02T12:00:00+00:00", rating="up", comment="perfect", conversation_id="chat-3", turn=1,
    question="How fast is shipping?", standalone="", answer="3 to 5 business days [1].", decision="answer",
    sources=("policies/shipping.txt",), earlier=(), index_version="v3",
)


def test_a_thumbs_down_follow_up_becomes_a_case_with_its_conversation_and_reference_answer() -> None:
    [case] = feedback_cases([FOLLOW_UP, PRAISED])
    assert case == {
        "id": "feedback-7", "question": "and for opened electronics?",
        "conversation": [{"question": "How long is the return window?", "answer": "45 days [1]."}],
        "reference_answer": "45 days; opened electronics carry a 15% restocking fee.",
        "tags": ["feedback", "rating-down"], "notes": case["notes"],
    }
    assert case["notes"].splitlines() == [
        "feedback 7: rated down on 2025-06-02T10:00:00+00:00, answer 2 of conversation chat-1",
        "comment: The fee is 15%, not 10%.",
        "rewritten as: Return window for opened electronics?",
        "answered (answer, index v3): The same, with a 10% fee [1].",
        "cited: policies/returns.md, docs/aurora.md",
    ]


def test_the_notes_name_the_answer_id_the_client_rated_when_there_is_one() -> None:
    [case] = feedback_cases([replace(FOLLOW_UP, answer_id="9f2c")])
    assert case["notes"].splitlines()[0].endswith("answer 2 of conversation chat-1 (answer_id 9f2c)")


def test_a_first_question_without_correction_has_only_the_keys_it_can_fill() -> None:
    [case] = feedback_cases([FIRST_QUESTION])
    assert sorted(case) == ["id", "notes", "question", "tags"]
    assert "answered (escalate, index v3)" in case["notes"] and "cited: nothing" in case["notes"]
    assert "comment:" not in case["notes"]


def test_the_rating_chooses_which_records_become_cases() -> None:
    records = [FOLLOW_UP, FIRST_QUESTION, PRAISED]
    assert [c["id"] for c in feedback_cases(records, rating="up")] == ["feedback-9"]
    assert [c["tags"][1] for c in feedback_cases(records, rating="all")] == ["rating-down"] * 2 + ["rating-up"]
    with pytest.raises(InputError, match="down, up, all"):
        feedback_cases(records, rating="sideways")  # type: ignore[arg-type]


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typer.Typer:
    """`rag eval` in miniature: a group with from-feedback registered, run where no rag.toml or RAG_ env applies."""
    monkeypatch.chdir(tmp_path)
    for name in ("RAG_CONFIG", "RAG_FEEDBACK__PATH", "RAG_FEEDBACK__URL", "RAG_INDEX__DIR"):
        monkeypatch.delenv(name, raising=False)
    app = typer.Typer()

    @app.callback()
    def group() -> None:
        """The eval command group."""

    register(app)
    return app


class Clock:
    """June 2025, 09:00 UTC on the day set."""

    def __init__(self) -> None:
        self.day(1)

    def day(self, day: int) -> None:
        self.now = datetime(2025, 6, day, 9, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def feedback_file(path: Path) -> Path:
    """A feedback store as the service leaves it: two thumbs down (one on a follow-up, corrected) and one up."""
    clock = Clock()
    conversations, store = ConversationStore(ttl_s=10 * 86400, clock=clock), FeedbackStore(path, clock=clock)
    conversations.append("chat-1", Turn("How long is the return window?", "45 days [1]."),
                         sources=["policies/returns.md"], index_version="v1")
    conversations.append("chat-1", Turn("and for electronics?", "10% fee [1]."), standalone="Electronics returns?",
                         decision="answer", sources=["policies/returns.md"], index_version="v1")
    rate_turn(conversations, store, "chat-1", turn=1, rating="up")
    clock.day(2)
    rate_turn(conversations, store, "chat-1", turn=2, rating="down", comment="It is 15%.", correction="A 15% fee.")
    clock.day(3)
    rate_turn(conversations, store, "chat-1", turn=1, rating="down", comment="Say from delivery.")
    store.close()
    return path


def test_from_feedback_writes_the_thumbs_down_as_jsonl_cases(cli: typer.Typer, tmp_path: Path) -> None:
    db, out = feedback_file(tmp_path / "feedback.sqlite3"), tmp_path / "cases" / "feedback.jsonl"
    result = CliRunner().invoke(cli, ["from-feedback", "--db", str(db), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 cases to" in result.stdout and "relevant_sources" in result.stdout
    cases = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [c["id"] for c in cases] == ["feedback-2", "feedback-3"]
    assert set(cases[0]) == {"id", "question", "conversation", "reference_answer", "tags", "notes"}
    assert cases[0]["conversation"] == [{"question": "How long is the return window?", "answer": "45 days [1]."}]
    assert cases[0]["reference_answer"] == "A 15% fee." and "comment: It is 15%." in cases[0]["notes"]
    assert set(cases[1]) == {"id", "question", "tags", "notes"}


def test_db_takes_a_database_url_as_well_as_a_file(cli: typer.Typer, tmp_path: Path) -> None:
    db, out = feedback_file(tmp_path / "feedback.sqlite3"), tmp_path / "cases.jsonl"
    result = CliRunner().invoke(cli, ["from-feedback", "--db", f"sqlite:///{db}", "--rating", "all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["feedback-1", "feedback-2", "feedback-3"]
    missing = CliRunner().invoke(cli, ["from-feedback", "--db", f"sqlite:///{tmp_path}/none.db", "--out", "x.jsonl"])
    assert missing.exit_code == 2 and "no feedback store at" in missing.stderr and not (tmp_path / "none.db").exists()


def test_the_written_file_loads_as_a_suite(cli: typer.Typer, tmp_path: Path) -> None:
    from eval.suite import load_suite

    db, out = feedback_file(tmp_path / "feedback.sqlite3"), tmp_path / "feedback.jsonl"
    assert CliRunner().invoke(cli, ["from-feedback", "--db", str(db), "--out", str(out)]).exit_code == 0
    first, second = load_suite(out)
    assert (first.id, first.reference_answer, first.conversation) == (
        "feedback-2", "A 15% fee.", (Turn("How long is the return window?", "45 days [1]."),))
    assert second.tags == ("feedback", "rating-down") and "Say from delivery." in second.notes


def test_index_rating_and_since_choose_the_store_and_the_records(cli: typer.Typer, tmp_path: Path) -> None:
    feedback_file(tmp_path / "feedback.sqlite3")  # beside the index folder, where the service keeps it
    index = ["--index", str(tmp_path / "index")]
    run = CliRunner().invoke(cli, ["from-feedback", *index, "--rating", "all", "--out", "all.jsonl"])
    assert run.exit_code == 0, run.output
    assert len(Path("all.jsonl").read_text().splitlines()) == 3
    run = CliRunner().invoke(cli, ["from-feedback", *index, "--since", "2025-06-03", "--out", "late.jsonl"])
    assert [json.loads(line)["id"] for line in Path("late.jsonl").read_text().splitlines()] == ["feedback-3"]
    run = CliRunner().invoke(cli, ["from-feedback", *index, "--rating", "up", "--out", "up.jsonl"])
    assert json.loads(Path("up.jsonl").read_text())["tags"] == ["feedback", "rating-up"]


def test_an_existing_file_is_replaced_only_with_force(cli: typer.Typer, tmp_path: Path) -> None:
    db, out = feedback_file(tmp_path / "feedback.sqlite3"), tmp_path / "cases.jsonl"
    out.write_text("hand-edited\n", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["from-feedback", "--db", str(db), "--out", str(out)])
    assert refused.exit_code == 2 and "already exists: pass --force" in refused.stderr
    assert out.read_text(encoding="utf-8") == "hand-edited\n"
    forced = CliRunner().invoke(cli, ["from-feedback", "--db", str(db), "--out", str(out), "--force"])
    assert forced.exit_code == 0 and out.read_text(encoding="utf-8").startswith('{"id": "feedback-2"')


def test_nothing_matched_exits_0_and_writes_no_file(cli: typer.Typer, tmp_path: Path) -> None:
    FeedbackStore(tmp_path / "empty.sqlite3").close()
    out = tmp_path / "cases.jsonl"
    empty = CliRunner().invoke(cli, ["from-feedback", "--db", str(tmp_path / "empty.sqlite3"), "--out", str(out)])
    assert empty.exit_code == 0 and "no feedback matched (rating down)" in empty.stdout and not out.exists()
    db = feedback_file(tmp_path / "feedback.sqlite3")
    late = CliRunner().invoke(cli, ["from-feedback", "--db", str(db), "--since", "2030-01-01", "--out", str(out)])
    assert late.exit_code == 0 and "since 2030-01-01" in late.stdout and "nothing written" in late.stdout
    assert not out.exists()


@pytest.mark.parametrize(("args", "fragment"), [
    (["--db", "missing.sqlite3"], "no feedback store at missing.sqlite3: pass --db"),
    (["--db", "x.sqlite3", "--index", "data/index"], "pass --index or --db, not both"),
    (["--rating", "sideways"], "'sideways' is not a rating: choose down, up, all"),
    (["--since", "June"], "'June' is not a day: write YYYY-MM-DD"),
])
def test_bad_options_say_how_to_fix_them(cli: typer.Typer, args: list[str], fragment: str) -> None:
    result = CliRunner().invoke(cli, ["from-feedback", *args, "--out", "cases.jsonl"])
    assert result.exit_code == 2 and fragment in " ".join(result.stderr.split())
    assert not Path("cases.jsonl").exists()
