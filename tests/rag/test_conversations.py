"""Follow-ups: histories persisted with a time limit, rewritten into standalone questions before retrieval."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

import prompts
from rag.conversations import AppendedTurn, ConversationStore, check_conversation_id, condense_messages, standalone
from rag.decisions import AnswerPolicy
from rag.errors import ConfigError, InputError
from rag.pipeline import RagPipeline
from rag.tokenizer import TextTokenizer
from rag.types import Chunk, Filters, Message, ScoredChunk, Turn

AURORA = "The Aurora X2 charges over USB-C in about 4 hours. It gives 650 lumens."


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_history_comes_back_in_order_and_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "talk" / "conversations.sqlite3"
    store = ConversationStore(path)
    store.append("c1", Turn("Which headlamp is brightest?", "The Aurora X2 [1]."), standalone="", decision="answer")
    store.append("c1", Turn("How long does it charge?", "About 4 hours [1]."))
    store.append("c2", Turn("Other chat", "Other answer"))
    store.close()
    again = ConversationStore(path)
    assert again.history("c1") == [Turn("Which headlamp is brightest?", "The Aurora X2 [1]."),
                                   Turn("How long does it charge?", "About 4 hours [1].")]
    assert again.history("unknown") == []


def test_a_conversation_is_forgotten_ttl_after_its_last_turn_not_its_first(tmp_path: Path) -> None:
    clock = Clock()
    store = ConversationStore(tmp_path / "c.sqlite3", ttl_s=60, clock=clock)
    store.append("c1", Turn("q1", "a1"))
    clock.now += 50
    store.append("c1", Turn("q2", "a2"))
    clock.now += 50  # 100 s after the first turn, 50 s after the last: still alive
    assert [t.question for t in store.history("c1")] == ["q1", "q2"]
    clock.now += 11
    assert store.history("c1") == []
    store.append("c2", Turn("q", "a"))  # any write purges expired conversations from the file
    assert store._db.execute("SELECT COUNT(*) FROM turns WHERE conversation = 'c1'").fetchone()[0] == 0


def test_only_the_last_max_turns_are_kept() -> None:
    store = ConversationStore(max_turns=3)
    for n in range(5):
        store.append("c", Turn(f"q{n}", f"a{n}"))
    assert [t.question for t in store.history("c")] == ["q2", "q3", "q4"]
    assert store._db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 3


def test_concurrent_appends_from_threads_lose_nothing(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3", max_turns=100)
    appended: list[AppendedTurn] = []
    threads = [threading.Thread(target=lambda n=n: appended.extend(store.append(f"c{n % 2}", Turn(f"q{n}.{i}", "a"))
                                                                   for i in range(10))) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.history("c0")) == len(store.history("c1")) == 30
    assert len({a.answer_id for a in appended}) == 60 and sorted(a.n for a in appended) == sorted([*range(1, 31)] * 2)


def test_each_answer_gets_an_unguessable_id_that_finds_its_conversation_while_it_is_kept() -> None:
    clock = Clock()
    store = ConversationStore(ttl_s=60, max_turns=2, clock=clock)
    first, second = store.append("c1", Turn("q1", "a1")), store.append("c1", Turn("q2", "a2"), index_version="v2")
    other = store.append("c2", Turn("q", "a"))
    assert (first.n, second.n, other.n) == (1, 2, 1)
    assert all(len(a.answer_id) == 32 and set(a.answer_id) <= set("0123456789abcdef") for a in (first, second, other))
    assert len({first.answer_id, second.answer_id, other.answer_id}) == 3
    assert [t.answer_id for t in store.recorded("c1")] == [first.answer_id, second.answer_id]
    found = store.find_answer(second.answer_id)
    assert found is not None and found[0] == "c1" and [t.question for t in found[1]] == ["q1", "q2"]
    assert store.find_answer("0" * 32) is None and store.find_answer("") is None
    store.append("c1", Turn("q3", "a3"))  # max_turns=2: the first answer is no longer kept
    assert store.find_answer(first.answer_id) is None and store.find_answer(second.answer_id) is not None
    clock.now += 61
    assert store.find_answer(other.answer_id) is None  # expired with its conversation


def test_bad_settings_and_ids_are_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ttl_s > 0"):
        ConversationStore(ttl_s=0)
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(ConfigError, match="RAG_CONVERSATIONS__PATH"):
        ConversationStore(tmp_path / "dir.sqlite3")
    assert check_conversation_id("chat-7f3a:1") == "chat-7f3a:1"
    for bad in ("", "has space", "x" * 129, "../etc"):
        with pytest.raises(InputError, match="conversation_id"):
            check_conversation_id(bad)


def test_the_condensation_prompt_quotes_the_latest_turns_and_asks_the_follow_up() -> None:
    history = [Turn(f"question {n}", f"answer {n}\nwith a second line") for n in range(6)]
    system, user = condense_messages(prompts.load("condense"), history, "and how long?", max_turns=2)
    assert user == Message("user", "and how long?")
    assert system.content.endswith("Customer: question 4\nAssistant: answer 4 with a second line\n"
                                   "Customer: question 5\nAssistant: answer 5 with a second line")
    assert "question 3" not in system.content


@pytest.mark.parametrize(("reply", "expected"), [
    ("How long does the Aurora X2 take to charge?", "How long does the Aurora X2 take to charge?"),
    ("Question: How long does the Aurora X2 take to charge?\nAnswer: 4 hours",
     "How long does the Aurora X2 take to charge?"),
    ("", "Which headlamp is brightest? and how long to charge?"),  # nothing usable: previous question + follow-up
    ("x" * 500, "Which headlamp is brightest? and how long to charge?"),
    ("10 minutes [2].", "Which headlamp is brightest? and how long to charge?"),  # answered instead (gemma-270m did)
    ("About 4 hours.", "Which headlamp is brightest? and how long to charge?"),  # lost the follow-up's words
])
def test_the_standalone_question_is_the_models_first_line_or_a_safe_fallback(reply: str, expected: str) -> None:
    history = [Turn("Which headlamp is brightest?", "The Aurora X2 [1].")]
    assert standalone(reply, "and how long to charge?", history, TextTokenizer(), max_chars=200) == expected


class RecordingRetriever:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def retrieve(self, question: str, *, top_k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        self.asked.append(question)
        chunk = Chunk(id=1, text=AURORA, source="docs/aurora.md", title="Aurora X2", doc_type="doc",
                      metadata={"product": "Aurora X2 headlamp"})
        return [ScoredChunk(chunk, 0.8)]


class TwoStepLLM:
    """Rewrites follow-ups as scripted, answers from the passage."""

    model = "two-step"

    def __init__(self, rewrite: str) -> None:
        self.rewrite, self.prompts, self.questions = rewrite, [], []

    async def complete(self, messages: Sequence[Message], **_: object) -> str:
        self.prompts.append(messages[0].content)
        self.questions.append(messages[-1].content)
        if "Conversation:" in messages[0].content:
            return self.rewrite
        return "The Aurora X2 charges over USB-C in about 4 hours [1]."

    async def stream(self, messages: Sequence[Message], **_: object) -> AsyncIterator[str]:
        yield await self.complete(messages)

    async def aclose(self) -> None:
        return None


def test_a_follow_up_is_rewritten_before_retrieval_and_the_answer_says_so() -> None:
    retriever, llm = RecordingRetriever(), TwoStepLLM("How long does the Aurora X2 headlamp take to charge?")
    pipeline = RagPipeline(retriever=retriever, llm=llm, prompt=prompts.load("answer"), index_version="v1",
                           policy=AnswerPolicy())
    history = [Turn("Tell me about the Aurora X2 headlamp", "It gives 650 lumens [1].")]
    answer = asyncio.run(pipeline.ask("how long does it take to charge?", history=history))
    assert retriever.asked == ["How long does the Aurora X2 headlamp take to charge?"]
    assert answer.standalone_question == "How long does the Aurora X2 headlamp take to charge?"
    assert answer.decision == "answer" and answer.timings_ms["condense"] >= 0
    assert "Customer: Tell me about the Aurora X2 headlamp" in llm.prompts[0]
    assert llm.questions == ["how long does it take to charge?",  # condensation sees the follow-up,
                             "How long does the Aurora X2 headlamp take to charge?"]  # the answer, the rewrite
    first = asyncio.run(pipeline.ask("how long does it take to charge?"))
    assert first.standalone_question == "" and retriever.asked[-1] == "how long does it take to charge?"
    assert len(llm.prompts) == 3  # no condensation without a history


def test_a_streamed_follow_up_is_rewritten_too() -> None:
    retriever, llm = RecordingRetriever(), TwoStepLLM("How long does the Aurora X2 headlamp take to charge?")
    pipeline = RagPipeline(retriever=retriever, llm=llm, prompt=prompts.load("answer"), index_version="v1")

    async def events() -> list[object]:
        history = [Turn("Tell me about the Aurora X2 headlamp", "It gives 650 lumens [1].")]
        return [e async for e in pipeline.stream("and charging?", history=history)]

    done = asyncio.run(events())[-1]
    assert done.data["standalone_question"] == retriever.asked[0] == "How long does the Aurora X2 headlamp take to charge?"


def test_an_expired_id_used_again_starts_a_new_conversation_at_turn_one() -> None:
    clock = Clock()
    store = ConversationStore(ttl_s=60, clock=clock)
    store.append("c1", Turn("old question", "old answer"))
    clock.now += 61
    assert store.append("c1", Turn("new question", "new answer"), sources=["docs/a.md"], index_version="v2").n == 1
    assert store.history("c1") == [Turn("new question", "new answer")]  # the expired turn does not come back
    assert [(t.n, t.sources, t.index_version) for t in store.recorded("c1")] == [(1, ("docs/a.md",), "v2")]
