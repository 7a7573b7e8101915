"""Thumbs up or down on an answer, kept until exported, so that every bad answer can become a
regression case (`rag eval from-feedback`).

A record stands on its own: it copies the rated turn (question, standalone rewrite, answer,
decision, cited sources, index version, answer id) and the turns before it out of the conversation
store, because a conversation is forgotten an hour after its last turn and feedback is not. The
answer is named by the answer id /ask returned with it, or by its conversation and turn number.

Records live wherever a SQLAlchemy URL points: a SQLite file by default (WAL mode, one short
transaction per write, so that several workers write at once while an export reads), PostgreSQL
for several hosts. This is the one module that imports SQLAlchemy: a store that cannot be opened
is a ConfigError, a write the database refuses (disk full, server down) a StorageError that
stores nothing, leaves earlier records intact and goes away once the cause is fixed.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, cast

from sqlalchemy import (
    URL,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    RowMapping,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from rag.conversations import ConversationStore, RecordedTurn
from rag.errors import ConfigError, InputError, NotFoundError, StorageError
from rag.types import Turn

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_CORRECTION_CHARS",
    "RATINGS",
    "Feedback",
    "FeedbackStore",
    "Rating",
    "rate_answer",
    "rate_turn",
    "sqlite_file",
]

Rating = Literal["up", "down"]
RATINGS: tuple[Rating, ...] = ("up", "down")
MAX_COMMENT_CHARS = 2000
MAX_CORRECTION_CHARS = 4000
# The first release's table, column for column (a file it wrote opens as it is), and answer_id added since.
_FEEDBACK = Table(
    "feedback", MetaData(),
    Column("id", Integer, primary_key=True),
    *(Column(name, Text, nullable=False) for name in ("created", "rating", "comment", "conversation")),
    Column("turn", Integer, nullable=False),
    *(Column(name, Text, nullable=False)
      for name in ("question", "standalone", "answer", "decision", "sources", "earlier", "index_version")),
    Column("correction", Text),
    Column("answer_id", Text, nullable=False, server_default=""),
    Index("feedback_by_created", "created"),
    sqlite_autoincrement=True,  # as the first release: an id is never given twice, even after a delete
)
_INSERT = insert(_FEEDBACK)  # built once, values bound per call: compiled once, not per record
_ADD_ANSWER_ID = "ALTER TABLE feedback ADD COLUMN answer_id TEXT NOT NULL DEFAULT ''"  # SQLite and PostgreSQL alike


@dataclass(frozen=True, slots=True)
class Feedback:
    """One rating of one answer, with all it takes to ask the question again later."""

    id: int
    created: str  # UTC, ISO 8601 to the second: sorts as text
    rating: Rating
    comment: str
    conversation_id: str
    turn: int  # 1 for the conversation's first answer
    question: str  # as the customer asked it
    standalone: str  # the follow-up rewritten to stand alone; "" for a first question
    answer: str
    decision: str
    sources: tuple[str, ...]  # the documents the answer cited
    earlier: tuple[Turn, ...]  # the conversation before this question, oldest first
    index_version: str
    correction: str | None = None  # the right answer, as the agent would write it
    answer_id: str = ""  # the id /ask returned with the answer; "" for an answer stored before ids existed


class FeedbackStore:
    """Feedback records in the database at a SQLAlchemy URL (`sqlite:///...`, `postgresql+psycopg://...`), or in
    a SQLite file given as a path (':memory:' for none); safe to share across threads and processes.

    `location` says where, without the password: the file for SQLite, the URL otherwise."""

    def __init__(self, url_or_path: str | Path = ":memory:", *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()  # in memory: one shared connection; elsewhere feedback is too rare to queue
        self._url = _url(url_or_path)
        self.location = _where(self._url)
        try:
            self._engine = _engine(self._url)
            _create(self._engine)
        except (OSError, ImportError, SQLAlchemyError) as exc:
            raise ConfigError(f"cannot open the feedback store at {self.location} ({_cause(exc, self._url)}): "
                              f"{_open_fix(self._url)}") from exc

    def add(self, *, conversation_id: str, turn: RecordedTurn, earlier: Sequence[Turn], rating: Rating,
            comment: str = "", correction: str | None = None) -> int:
        """Store a rating of `turn` in one transaction and return the record's id; StorageError, with nothing
        stored, when the database cannot take it."""
        _check(rating, comment, correction)
        row = {"created": datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds"), "rating": rating,
               "comment": comment.strip(), "conversation": conversation_id, "turn": turn.n, "question": turn.question,
               "standalone": turn.standalone, "answer": turn.answer, "decision": turn.decision,
               "sources": json.dumps(list(turn.sources), ensure_ascii=False), "earlier": _turns_json(earlier),
               "index_version": turn.index_version, "correction": (correction or "").strip() or None,
               "answer_id": turn.answer_id}
        with self._lock, self._storage("store the feedback"), self._engine.begin() as db:
            key = db.execute(_INSERT, row).inserted_primary_key  # RETURNING, or SQLite's rowid
        return int(key[0]) if key else 0  # one row inserted: always a key

    def close(self) -> None:
        with self._lock:
            self._engine.dispose()

    def list(self, rating: Rating | None = None, since: date | None = None) -> builtins.list[Feedback]:
        """The records, oldest first; only those with this rating, or created on or after `since` (UTC)."""
        if rating is not None and rating not in RATINGS:
            raise InputError(f"rating {rating!r} is not one of {', '.join(RATINGS)}: pass up, down, or none for both")
        query = select(_FEEDBACK).order_by(_FEEDBACK.c.id)
        if rating is not None:
            query = query.where(_FEEDBACK.c.rating == rating)
        if since is not None:
            query = query.where(_FEEDBACK.c.created >= _utc_text(since))
        with self._lock, self._storage("read the feedback"), self._engine.connect() as db:
            rows = db.execute(query).mappings().all()
        return [_record(row) for row in rows]

    @contextmanager
    def _storage(self, doing: str) -> Iterator[None]:
        """The database refusing (disk full, server down or gone) as a StorageError; the transaction it broke has
        been rolled back, and the next call tries afresh (a server's pooled connections are checked before use)."""
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            raise StorageError(f"cannot {doing} at {self.location} ({_cause(exc, self._url)}): "
                               f"{_write_fix(self._url)}; records stored before are intact") from exc


def sqlite_file(url_or_path: str | Path) -> Path | None:
    """The file a SQLite feedback store lives in (a tool reading it can say it is missing rather than create it);
    None for one in memory or on a database server."""
    url = _url(url_or_path)
    database = url.database if url.get_backend_name() == "sqlite" else None
    return Path(database) if database and database != ":memory:" else None


def rate_turn(conversations: ConversationStore, store: FeedbackStore, conversation_id: str, *, turn: int | None,
              rating: Rating, comment: str = "", correction: str | None = None) -> tuple[int, RecordedTurn]:
    """Copy a turn (the last one when `turn` is None) and the turns before it into a feedback record: its id and
    the turn rated. NotFoundError, with the fix, when the conversation or the turn is no longer kept."""
    turns = conversations.recorded(conversation_id)
    rated = _pick(turns, turn, conversation_id, conversations)
    return _rate(store, conversation_id, turns, rated, rating=rating, comment=comment, correction=correction), rated


def rate_answer(conversations: ConversationStore, store: FeedbackStore, answer_id: str, *, rating: Rating,
                comment: str = "", correction: str | None = None) -> tuple[int, str, RecordedTurn]:
    """Rate the answer /ask returned with `answer_id`: the record's id, the answer's conversation and its turn.
    NotFoundError, with the fix, when the id is unknown or its conversation or turn is no longer kept."""
    found = conversations.find_answer(answer_id)
    if found is None:
        raise NotFoundError(
            f"answer {answer_id[:40]!r} is unknown or has expired: send feedback within "
            f"{_duration(conversations.ttl_s)} of the conversation's last answer (RAG_CONVERSATIONS__TTL_S) and on "
            f"one of its last {conversations.max_turns} answers (RAG_CONVERSATIONS__MAX_TURNS), with the answer_id "
            "that /ask returned")
    conversation_id, turns = found
    rated = next(t for t in turns if t.answer_id == answer_id)
    record = _rate(store, conversation_id, turns, rated, rating=rating, comment=comment, correction=correction)
    return record, conversation_id, rated


def _rate(store: FeedbackStore, conversation_id: str, turns: Sequence[RecordedTurn], rated: RecordedTurn, *,
          rating: Rating, comment: str, correction: str | None) -> int:
    """Store the rating of `rated`, with the turns before it as its context."""
    earlier = [Turn(t.question, t.answer) for t in turns if t.n < rated.n]
    return store.add(conversation_id=conversation_id, turn=rated, earlier=earlier, rating=rating, comment=comment,
                     correction=correction)


def _pick(turns: Sequence[RecordedTurn], number: int | None, conversation_id: str,
          conversations: ConversationStore) -> RecordedTurn:
    """The turn numbered `number` (None: the last), or NotFoundError saying what can be rated instead."""
    if not turns:
        raise NotFoundError(
            f"conversation {conversation_id!r} is unknown or has expired: send feedback within "
            f"{_duration(conversations.ttl_s)} of the conversation's last answer (RAG_CONVERSATIONS__TTL_S), "
            "with the conversation_id that /ask returned")
    found = [t for t in turns if number is None or t.n == number]
    if found:
        return found[-1]
    first, last = turns[0].n, turns[-1].n
    trimmed = (f"; only the last {conversations.max_turns} turns are kept (RAG_CONVERSATIONS__MAX_TURNS)"
               if number is not None and number < first else "")
    raise NotFoundError(f"conversation {conversation_id!r} has no turn {number} (its answers are turns {first} to "
                        f"{last}{trimmed}): pass one of those, or leave turn out to rate the last answer")


def _check(rating: str, comment: str, correction: str | None) -> None:
    """InputError, with the limit, for a rating or text the API would have refused too."""
    if rating not in RATINGS:
        raise InputError(f"rating {rating!r} is not one of {', '.join(RATINGS)}: send up or down")
    if len(comment) > MAX_COMMENT_CHARS:
        raise InputError(f"the comment has {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}: shorten it")
    if correction is not None and len(correction) > MAX_CORRECTION_CHARS:
        raise InputError(f"the correction has {len(correction)} characters; the limit is {MAX_CORRECTION_CHARS}: "
                         "shorten it")


def _turns_json(turns: Sequence[Turn]) -> str:
    return json.dumps([{"question": t.question, "answer": t.answer} for t in turns], ensure_ascii=False)


def _record(row: RowMapping) -> Feedback:
    return Feedback(row["id"], row["created"], cast(Rating, row["rating"]), row["comment"], row["conversation"],
                    row["turn"], row["question"], row["standalone"], row["answer"], row["decision"],
                    tuple(json.loads(row["sources"])), tuple(Turn(**t) for t in json.loads(row["earlier"])),
                    row["index_version"], row["correction"], row["answer_id"])


def _utc_text(since: date) -> str:
    """`since` as stored timestamps compare with it: a day as YYYY-MM-DD, a time in UTC (naive = UTC)."""
    if not isinstance(since, datetime):
        return since.isoformat()
    aware = since if since.tzinfo else since.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds")


def _duration(seconds: float) -> str:
    """A TTL as a person says it: "1 hour", "30 minutes", "90 seconds"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"


def _url(url_or_path: str | Path) -> URL:
    """A SQLAlchemy URL as given, or a SQLite one for a plain path (what callers passed before URLs)."""
    if isinstance(url_or_path, Path) or "://" not in url_or_path:
        return URL.create("sqlite", database=str(url_or_path))
    try:
        return make_url(url_or_path)
    except (ArgumentError, ValueError) as exc:  # the URL itself stays out of the message: it may hold a password
        raise ConfigError("RAG_FEEDBACK__URL is not a database URL: write it as dialect+driver://user:password@host/"
                          "database, e.g. postgresql+psycopg://rag:secret@db.internal/rag") from exc


def _in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _where(url: URL) -> str:
    """Where the store is, fit for a message or a log: no password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def _engine(url: URL) -> Engine:
    """A server's connections pooled and checked before use, so that a restarted server is reconnected to; a SQLite
    file in WAL mode (the service's writes do not block `rag eval from-feedback` reading it); SQLite in memory as
    one connection (a pool would give each thread a database of its own)."""
    if url.get_backend_name() != "sqlite":  # PostgreSQL: an unreachable host fails in 10 s, unless the URL says
        postgres = url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query
        waits = {"connect_timeout": 10} if postgres else {}
        return create_engine(url, pool_pre_ping=True, connect_args=waits)
    if _in_memory(url):
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _wal)
    return engine


def _wal(connection: Any, _record: Any) -> None:
    connection.execute("PRAGMA journal_mode=WAL")


def _create(engine: Engine) -> None:
    """The table and its index where missing, and answer_id added to a first-release table; tried twice, since a
    worker starting at the same moment may have done part of it in between (the second try finds it done)."""
    try:
        _create_once(engine)
    except DBAPIError:
        _create_once(engine)


def _create_once(engine: Engine) -> None:
    with engine.begin() as db:
        db.execute(CreateTable(_FEEDBACK, if_not_exists=True))
        for index in _FEEDBACK.indexes:
            db.execute(CreateIndex(index, if_not_exists=True))
        if "answer_id" not in {column["name"] for column in inspect(db).get_columns("feedback")}:
            db.execute(text(_ADD_ANSWER_ID))


def _cause(exc: BaseException, url: URL) -> str:
    """The driver's own words on one line, with the password masked should a driver echo it."""
    cause = "; ".join(line.strip() for line in str(getattr(exc, "orig", None) or exc).splitlines() if line.strip())
    return cause.replace(url.password, "***") if url.password else cause


def _open_fix(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return "set RAG_FEEDBACK__PATH (or RAG_FEEDBACK__URL) to a file in a writable folder"
    return ("check RAG_FEEDBACK__URL: the database must be running and reachable, the user and password right, "
            "and the driver installed (pip install 'psycopg[binary]' for postgresql+psycopg)")


def _write_fix(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return "free disk space there (and check that the file is writable), then send it again"
    return "check that the database is up, reachable and has disk space, then send it again"
