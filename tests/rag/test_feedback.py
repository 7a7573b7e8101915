"""Feedback records: self-contained copies of the rated turn, kept in their own SQLite file until exported (the
PostgreSQL store: test_feedback_postgres.py)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from rag.conversations import ConversationStore, RecordedTurn
from rag.errors import ConfigError, InputError, NotFoundError, StorageError
from rag.feedback import FeedbackStore, rate_answer, rate_turn, sqlite_file
from rag.types import Turn

DAY_1 = datetime(2025, 6, 1, 9, 30, tzinfo=UTC).timestamp()
DAY_2 = datetime(2025, 6, 2, 9, 30, tzinfo=UTC).timestamp()
OLD_SCHEMA = """
CREATE TABLE turns (
    conversation TEXT NOT NULL, at REAL NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    standalone TEXT NOT NULL DEFAULT '', decision TEXT NOT NULL DEFAULT ''
);
CREATE INDEX turns_by_conversation ON turns (conversation, at);
"""
OLD_FEEDBACK_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL, rating TEXT NOT NULL, comment TEXT NOT NULL,
    conversation TEXT NOT NULL, turn INTEGER NOT NULL, question TEXT NOT NULL, standalone TEXT NOT NULL,
    answer TEXT NOT NULL, decision TEXT NOT NULL, sources TEXT NOT NULL, earlier TEXT NOT NULL,
    index_version TEXT NOT NULL, correction TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_created ON feedback (created);
"""  # as the release before answer ids and SQLAlchemy wrote it


class Clock:
    def __init__(self, now: float = DAY_1) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def talk(clock: Clock, *, ttl_s: float = 3600.0, max_turns: int = 20) -> ConversationStore:
    """A conversation with two answered turns: a question and a follow-up."""
    store = ConversationStore(clock=clock, ttl_s=ttl_s, max_turns=max_turns)
    store.append("chat-1", Turn("How long is the return window?", "45 days [1]."), decision="answer",
                 sources=["policies/returns.md"], index_version="v1")
    store.append("chat-1", Turn("and for opened electronics?", "The same, with a 10% fee [1]."),
                 standalone="Return window for opened electronics?", decision="answer",
                 sources=["policies/returns.md", "docs/aurora.md"], index_version="v1")
    return store


def test_a_record_copies_the_rated_turn_and_the_turns_before_it() -> None:
    clock = Clock()
    conversations, store = talk(clock), FeedbackStore(clock=clock)
    record_id, rated = rate_turn(conversations, store, "chat-1", turn=None, rating="down",
                                 comment=" The fee is 15%. ", correction="45 days; opened electronics: 15% fee.")
    assert rated.n == 2 and rated.question == "and for opened electronics?"
    [record] = store.list()
    assert record.id == record_id and record.created == "2025-06-01T09:30:00+00:00"
    assert (record.rating, record.comment, record.correction) == ("down", "The fee is 15%.",
                                                                   "45 days; opened electronics: 15% fee.")
    assert (record.conversation_id, record.turn, record.question) == ("chat-1", 2, "and for opened electronics?")
    assert record.standalone == "Return window for opened electronics?"
    assert (record.answer, record.decision, record.index_version) == ("The same, with a 10% fee [1].", "answer", "v1")
    assert record.sources == ("policies/returns.md", "docs/aurora.md")
    assert record.earlier == (Turn("How long is the return window?", "45 days [1]."),)


def test_the_first_turn_can_be_rated_and_has_no_earlier_turns() -> None:
    conversations, store = talk(Clock()), FeedbackStore()
    _, rated = rate_turn(conversations, store, "chat-1", turn=1, rating="up", correction="   ")
    [record] = store.list()
    assert rated.n == record.turn == 1 and record.earlier == () and record.correction is None
    assert record.sources == ("policies/returns.md",) and record.standalone == ""


def test_list_filters_by_rating_and_by_day() -> None:
    clock = Clock()
    conversations, store = talk(clock, ttl_s=7 * 86400), FeedbackStore(clock=clock)
    rate_turn(conversations, store, "chat-1", turn=1, rating="up")
    clock.now = DAY_2
    rate_turn(conversations, store, "chat-1", turn=2, rating="down")
    rate_turn(conversations, store, "chat-1", turn=1, rating="down")
    assert [r.turn for r in store.list(rating="down")] == [2, 1]
    assert [r.rating for r in store.list(rating="up")] == ["up"]
    assert len(store.list(since=date(2025, 6, 1))) == 3
    assert [r.created[:10] for r in store.list(since=date(2025, 6, 2))] == ["2025-06-02"] * 2
    assert len(store.list(since=datetime(2025, 6, 2, 9, 30, 1, tzinfo=UTC))) == 0
    assert len(store.list(rating="down", since=datetime(2025, 6, 2, 9, 30))) == 2  # naive: UTC
    with pytest.raises(InputError, match="up, down"):
        store.list(rating="meh")  # type: ignore[arg-type]


def test_an_unknown_or_expired_conversation_says_to_rate_within_the_ttl() -> None:
    clock = Clock()
    conversations, store = talk(clock), FeedbackStore()
    with pytest.raises(NotFoundError, match=r"'chat-9' is unknown or has expired: send feedback within 1 hour "
                                            r".*RAG_CONVERSATIONS__TTL_S"):
        rate_turn(conversations, store, "chat-9", turn=None, rating="down")
    clock.now += 3601
    with pytest.raises(NotFoundError, match="unknown or has expired"):
        rate_turn(conversations, store, "chat-1", turn=None, rating="down")
    assert store.list() == []


def test_a_turn_out_of_range_names_the_turns_that_can_be_rated() -> None:
    clock = Clock()
    conversations, store = talk(clock, max_turns=2), FeedbackStore()
    with pytest.raises(NotFoundError, match=r"has no turn 3 .*turns 1 to 2.*leave turn out to rate the last answer"):
        rate_turn(conversations, store, "chat-1", turn=3, rating="down")
    conversations.append("chat-1", Turn("and shipping?", "3 to 5 days [1]."))  # turn 1 is no longer kept
    with pytest.raises(NotFoundError, match=r"turns 2 to 3; only the last 2 turns are kept .*MAX_TURNS"):
        rate_turn(conversations, store, "chat-1", turn=1, rating="down")
    assert rate_turn(conversations, store, "chat-1", turn=2, rating="down")[1].n == 2


def test_ratings_and_texts_beyond_the_limits_are_refused_with_the_limit() -> None:
    conversations, store = talk(Clock()), FeedbackStore()
    rated = conversations.recorded("chat-1")[-1]
    with pytest.raises(InputError, match="send up or down"):
        store.add(conversation_id="chat-1", turn=rated, earlier=[], rating="meh")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="limit is 2000"):
        store.add(conversation_id="chat-1", turn=rated, earlier=[], rating="down", comment="x" * 2001)
    with pytest.raises(InputError, match="limit is 4000"):
        store.add(conversation_id="chat-1", turn=rated, earlier=[], rating="down", correction="x" * 4001)
    assert store.list() == []


def test_records_survive_reopening_the_file_and_a_bad_path_says_which_setting(tmp_path: Path) -> None:
    path = tmp_path / "kept" / "feedback.sqlite3"
    store = FeedbackStore(path)
    turn = RecordedTurn(1, "q", "a", "", "escalate", (), "v7")
    store.add(conversation_id="c", turn=turn, earlier=[Turn("q0", "a0")], rating="down", comment="handed off")
    store.close()
    again = FeedbackStore(path)
    [record] = again.list()
    assert (record.question, record.decision, record.index_version, record.earlier) == ("q", "escalate", "v7",
                                                                                        (Turn("q0", "a0"),))
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # kept in the file
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(ConfigError, match="RAG_FEEDBACK__PATH"):
        FeedbackStore(tmp_path / "dir.sqlite3")


def test_writers_in_threads_and_separate_connections_lose_nothing(tmp_path: Path) -> None:
    """Four workers (each its own connection, as separate processes have) and a shared store, all at once."""
    path = tmp_path / "feedback.sqlite3"
    shared = FeedbackStore(path)
    stores = [shared, shared, *(FeedbackStore(path) for _ in range(4))]
    turn = RecordedTurn(1, "q", "a", "", "answer", ("docs/a.md",), "v1")

    def write(store: FeedbackStore, worker: int) -> None:
        for i in range(25):
            store.add(conversation_id=f"c{worker}", turn=turn, earlier=[], rating="down", comment=f"{worker}.{i}")

    threads = [threading.Thread(target=write, args=(store, n)) for n, store in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores[1:]:
        store.close()
    records = FeedbackStore(path).list()
    assert len(records) == 150 and len({r.id for r in records}) == 150
    assert sorted(r.comment for r in records) == sorted(f"{n}.{i}" for n in range(6) for i in range(25))


def test_a_conversation_file_from_before_turn_numbers_and_sources_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "conversations.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(OLD_SCHEMA)
    old.executemany("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?)", [
        ("c1", DAY_1 - 20, "q1", "a1", "", "answer"), ("c2", DAY_1 - 15, "other", "x", "", "answer"),
        ("c1", DAY_1 - 10, "q2", "a2", "q2 about q1", "escalate")])
    old.commit()
    old.close()
    clock = Clock()
    store = ConversationStore(path, clock=clock)
    assert store.recorded("c1") == [RecordedTurn(1, "q1", "a1", "", "answer", (), ""),
                                    RecordedTurn(2, "q2", "a2", "q2 about q1", "escalate", (), "")]
    assert store.history("c1") == [Turn("q1", "a1"), Turn("q2", "a2")]
    assert store.find_answer("") is None  # turns from before answer ids cannot be rated by id, only by number
    appended = store.append("c1", Turn("q3", "a3"), sources=["docs/a.md"], index_version="v2")
    assert appended.n == 3 and store.recorded("c1")[-1].answer_id == appended.answer_id
    store.close()
    again = ConversationStore(path, clock=clock)  # opening an upgraded file again changes nothing
    assert [(t.n, t.sources, t.index_version) for t in again.recorded("c1")] == [
        (1, (), ""), (2, (), ""), (3, ("docs/a.md",), "v2")]
    assert [t.n for t in again.recorded("c2")] == [1]
    assert "turns_by_answer" in {row[1] for row in sqlite3.connect(path).execute("PRAGMA index_list(turns)")}


def test_an_answer_is_rated_by_the_id_it_was_returned_with() -> None:
    conversations, store = talk(Clock()), FeedbackStore()
    first, second = conversations.recorded("chat-1")
    record_id, conversation_id, rated = rate_answer(conversations, store, second.answer_id, rating="down",
                                                    comment="The fee is 15%.")
    assert (conversation_id, rated) == ("chat-1", second)
    [record] = store.list()
    assert (record.id, record.answer_id, record.turn, record.comment) == (record_id, second.answer_id, 2,
                                                                          "The fee is 15%.")
    assert record.earlier == (Turn(first.question, first.answer),)
    rate_turn(conversations, store, "chat-1", turn=1, rating="up")  # by number, the record keeps the id too
    assert store.list(rating="up")[0].answer_id == first.answer_id


def test_an_unknown_or_expired_answer_id_says_to_rate_within_the_ttl() -> None:
    clock = Clock()
    conversations, store = talk(clock), FeedbackStore()
    answer_id = conversations.recorded("chat-1")[0].answer_id
    with pytest.raises(NotFoundError, match=r"answer '0{32}' is unknown or has expired: send feedback within 1 hour "
                                            r".*RAG_CONVERSATIONS__TTL_S.*with the answer_id that /ask returned"):
        rate_answer(conversations, store, "0" * 32, rating="down")
    clock.now += 3601
    with pytest.raises(NotFoundError, match="unknown or has expired"):
        rate_answer(conversations, store, answer_id, rating="up")
    assert store.list() == []


def test_a_feedback_file_from_before_answer_ids_opens_lists_and_takes_new_records(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(OLD_FEEDBACK_SCHEMA)
    old.execute("INSERT INTO feedback (created, rating, comment, conversation, turn, question, standalone, answer, "
                "decision, sources, earlier, index_version, correction) VALUES "
                "('2025-05-30T08:00:00+00:00', 'down', 'wrong', 'c0', 2, 'q', 'q?', 'a', 'answer', '[\"docs/a.md\"]', "
                "'[{\"question\": \"q0\", \"answer\": \"a0\"}]', 'v1', 'right')")
    old.commit()
    old.close()
    store = FeedbackStore(f"sqlite:///{path}", clock=Clock())
    [kept] = store.list()
    assert (kept.id, kept.conversation_id, kept.turn, kept.sources, kept.earlier, kept.correction, kept.answer_id) == (
        1, "c0", 2, ("docs/a.md",), (Turn("q0", "a0"),), "right", "")
    conversations = talk(Clock())
    rate_answer(conversations, store, conversations.recorded("chat-1")[1].answer_id, rating="up")
    store.close()
    again = FeedbackStore(path)  # a plain path opens the same file
    assert [(r.id, r.rating, bool(r.answer_id)) for r in again.list()] == [(1, "down", False), (2, "up", True)]
    assert len(again.list(since=date(2025, 6, 1))) == 1


def test_a_full_disk_refuses_the_write_keeps_every_record_and_passes_once_space_is_freed(tmp_path: Path) -> None:
    """SQLite's max_page_count (set on each pooled connection as it is handed out) is a disk that fills up for real:
    the INSERT fails with SQLITE_FULL."""
    path = tmp_path / "feedback.sqlite3"
    store, turn = FeedbackStore(path), RecordedTurn(1, "q", "a", "", "answer", ("docs/a.md",), "v1", "a" * 32)
    for n in range(3):
        store.add(conversation_id=f"c{n}", turn=turn, earlier=[], rating="down", comment=f"{n}" * 2000)
    before = store.list()
    disk = {"pages": 1}  # max_page_count cannot go below the file's size: 1 means "full now"

    @event.listens_for(store._engine, "checkout")
    def limit(connection: sqlite3.Connection, *_: object) -> None:
        connection.execute(f"PRAGMA max_page_count = {disk['pages']}")

    with pytest.raises(StorageError, match=rf"cannot store the feedback at {path} \(database or disk is full\): "
                                           r"free disk space there .*records stored before are intact"):
        store.add(conversation_id="c3", turn=turn, earlier=[], rating="down", comment="x" * 2000, correction="y" * 4000)
    assert store.list() == before and FeedbackStore(path).list() == before  # nothing lost, nothing half-written
    disk["pages"] = 1_000_000  # space freed: the same store works again
    added = store.add(conversation_id="c3", turn=turn, earlier=[], rating="up", correction="y" * 4000)
    assert [r.id for r in store.list()] == [*(r.id for r in before), added]
    assert store.list()[-1].correction == "y" * 4000 and store.list()[:3] == before


def test_a_bad_url_is_refused_with_the_setting_and_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RAG_FEEDBACK__URL is not a database URL") as malformed:
        FeedbackStore("postgresql+psycopg://rag:s3cret@db:notaport/rag")
    with pytest.raises(ConfigError, match=r"cannot open the feedback store at nosuch://rag:\*\*\*@db/rag .*"
                                          r"check RAG_FEEDBACK__URL") as unknown:
        FeedbackStore("nosuch://rag:s3cret@db/rag")
    assert "s3cret" not in str(malformed.value) + str(unknown.value)
    assert sqlite_file(f"sqlite:///{tmp_path}/f.db") == tmp_path / "f.db" and sqlite_file("f.db") == Path("f.db")
    assert sqlite_file(":memory:") is None and sqlite_file("postgresql+psycopg://db/rag") is None
