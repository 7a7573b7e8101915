"""Thumbs up or down on an answer, kept until exported, so that every bad answer can become a
regression case (`rag eval from-feedback`).

A record stands on its own: it copies the rated turn (question, standalone rewrite, answer,
decision, cited sources, index version) and the turns before it out of the conversation store,
because a conversation is forgotten an hour after its last turn and feedback is not. Records live
in their own SQLite file, in WAL mode with one short transaction per write, so that several
workers can write at once while an export reads.
"""

from __future__ import annotations

import builtins
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, cast

from rag.conversations import ConversationStore, RecordedTurn, open_sqlite
from rag.errors import InputError, NotFoundError
from rag.types import Turn

__all__ = [
    "MAX_COMMENT_CHARS",
    "MAX_CORRECTION_CHARS",
    "RATINGS",
    "Feedback",
    "FeedbackStore",
    "Rating",
    "rate_turn",
]

Rating = Literal["up", "down"]
RATINGS: tuple[Rating, ...] = ("up", "down")
MAX_COMMENT_CHARS = 2000
MAX_CORRECTION_CHARS = 4000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT NOT NULL, rating TEXT NOT NULL, comment TEXT NOT NULL,
    conversation TEXT NOT NULL, turn INTEGER NOT NULL, question TEXT NOT NULL, standalone TEXT NOT NULL,
    answer TEXT NOT NULL, decision TEXT NOT NULL, sources TEXT NOT NULL, earlier TEXT NOT NULL,
    index_version TEXT NOT NULL, correction TEXT
);
CREATE INDEX IF NOT EXISTS feedback_by_created ON feedback (created);
"""
_COLUMNS = ("id, created, rating, comment, conversation, turn, question, standalone, answer, decision, sources, "
            "earlier, index_version, correction")


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


class FeedbackStore:
    """Feedback records in one SQLite file (':memory:' for none), safe to share across threads and processes."""

    def __init__(self, path: Path | str = ":memory:", *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # WAL: the service's writes do not block `rag eval from-feedback` reading the file
        self._db = open_sqlite(path, _SCHEMA, what="the feedback store", setting="RAG_FEEDBACK__PATH", wal=True)

    def add(self, *, conversation_id: str, turn: RecordedTurn, earlier: Sequence[Turn], rating: Rating,
            comment: str = "", correction: str | None = None) -> int:
        """Store a rating of `turn` (one autocommitted INSERT) and return the record's id."""
        _check(rating, comment, correction)
        created = datetime.fromtimestamp(self._clock(), UTC).isoformat(timespec="seconds")
        row = (created, rating, comment.strip(), conversation_id, turn.n, turn.question, turn.standalone, turn.answer,
               turn.decision, json.dumps(list(turn.sources), ensure_ascii=False), _turns_json(earlier),
               turn.index_version, (correction or "").strip() or None)
        with self._lock:
            cursor = self._db.execute(f"INSERT INTO feedback ({_COLUMNS.removeprefix('id, ')}) "
                                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        return int(cursor.lastrowid or 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def list(self, rating: Rating | None = None, since: date | None = None) -> builtins.list[Feedback]:
        """The records, oldest first; only those with this rating, or created on or after `since` (UTC)."""
        if rating is not None and rating not in RATINGS:
            raise InputError(f"rating {rating!r} is not one of {', '.join(RATINGS)}: pass up, down, or none for both")
        clauses: list[str] = []
        params: list[str] = []
        if rating is not None:
            clauses, params = [*clauses, "rating = ?"], [*params, rating]
        if since is not None:
            clauses, params = [*clauses, "created >= ?"], [*params, _utc_text(since)]
        where = " AND ".join(clauses) or "1"
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM feedback WHERE {where} ORDER BY id", params).fetchall()
        return [_record(row) for row in rows]


def rate_turn(conversations: ConversationStore, store: FeedbackStore, conversation_id: str, *, turn: int | None,
              rating: Rating, comment: str = "", correction: str | None = None) -> tuple[int, RecordedTurn]:
    """Copy a turn (the last one when `turn` is None) and the turns before it into a feedback record: its id and
    the turn rated. NotFoundError, with the fix, when the conversation or the turn is no longer kept."""
    turns = conversations.recorded(conversation_id)
    rated = _pick(turns, turn, conversation_id, conversations)
    earlier = [Turn(t.question, t.answer) for t in turns if t.n < rated.n]
    return store.add(conversation_id=conversation_id, turn=rated, earlier=earlier, rating=rating, comment=comment,
                     correction=correction), rated


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


def _record(row: tuple[Any, ...]) -> Feedback:
    (id_, created, rating, comment, conversation, turn, question, standalone, answer, decision, sources, earlier,
     version, correction) = row
    return Feedback(id_, created, cast(Rating, rating), comment, conversation, turn, question, standalone, answer,
                    decision, tuple(json.loads(sources)), tuple(Turn(**t) for t in json.loads(earlier)), version,
                    correction)


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
