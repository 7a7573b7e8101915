"""Follow-up questions: conversation histories kept in SQLite with a time limit, and the
condensation of a follow-up ("and how long does it take to charge?") into a question that
stands alone ("How long does the Aurora X2 headlamp take to charge?") before retrieval.

A conversation is forgotten `ttl_s` after its last turn; only its last `max_turns` turns are
kept. Ids are chosen by the client (its own chat session id) or by the service (a random one,
returned with the first answer); an unknown or expired id starts a new conversation.

Each turn also keeps its number in the conversation (1, 2, ...), the sources its answer cited, the
index version that answered and a random answer id, so feedback on it (`rag.feedback`) can say what
was answered; the answer id lets a client rate an answer without tracking turn numbers, and being
unguessable, only the client it was returned to can rate that answer.
A file written before those columns existed is upgraded in place when it is opened.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from prompts import PromptTemplate
from rag.errors import ConfigError, InputError
from rag.grounding import MARKER
from rag.tokenizer import TextTokenizer
from rag.types import Message, Turn

__all__ = [
    "ID_PATTERN",
    "AppendedTurn",
    "ConversationStore",
    "RecordedTurn",
    "check_conversation_id",
    "condense_messages",
    "new_conversation_id",
    "open_sqlite",
    "standalone",
]

ID_PATTERN = r"[A-Za-z0-9._:-]{1,128}"  # ids travel in URLs and logs: short and plain
_ID = re.compile(ID_PATTERN)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL, at REAL NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL,
    standalone TEXT NOT NULL DEFAULT '', decision TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns (conversation, at);
"""
# Columns added after the first release; `_upgrade` adds them to every file (old or new: one path, always run).
# n: the turn's number in its conversation; sources: the cited document ids, as a JSON list; answer_id: random,
# NULL for turns stored before it existed (they cannot be rated by id).
_ADDED_COLUMNS = {"n": "INTEGER", "sources": "TEXT NOT NULL DEFAULT '[]'", "index_version": "TEXT NOT NULL DEFAULT ''",
                  "answer_id": "TEXT"}
_ANSWER_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS turns_by_answer ON turns (answer_id)"  # NULLs do not collide
_NUMBER_OLD_TURNS = """
UPDATE turns SET n = (SELECT COUNT(*) FROM turns AS earlier WHERE earlier.conversation = turns.conversation
                      AND (earlier.at < turns.at OR (earlier.at = turns.at AND earlier.rowid <= turns.rowid)))
WHERE n IS NULL
"""


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """A turn as stored, with what feedback on it needs to stand on its own later."""

    n: int  # 1 for the conversation's first answer
    question: str
    answer: str
    standalone: str
    decision: str
    sources: tuple[str, ...]  # the documents the answer cited
    index_version: str
    answer_id: str = ""  # "" for a turn stored before answer ids existed


class AppendedTurn(NamedTuple):
    """What `ConversationStore.append` stored: the turn's number and the answer id to return to the client."""

    n: int
    answer_id: str


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def check_conversation_id(value: str) -> str:
    """The id as given, or InputError: ids travel in URLs and logs, so they stay short and plain."""
    if not _ID.fullmatch(value):
        raise InputError(f"conversation_id {value[:40]!r} is not valid: use 1-128 letters, digits or . _ : -, "
                         "or leave it out to start a new conversation")
    return value


def open_sqlite(path: Path | str, schema: str, *, what: str, setting: str, wal: bool = False) -> sqlite3.Connection:
    """A connection shared by threads (autocommit; callers lock), its folder made and `schema` applied;
    with `wal`, readers in other processes do not block writers. Failures name the setting to fix."""
    try:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if wal and str(path) != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open {what} at {path} ({exc}): set {setting} to a writable file") from exc
    return db


class ConversationStore:
    """Histories in one SQLite file (':memory:' for none), safe to share across threads."""

    def __init__(self, path: Path | str = ":memory:", *, ttl_s: float = 3600.0, max_turns: int = 20,
                 clock: Callable[[], float] = time.time) -> None:
        if ttl_s <= 0 or max_turns < 1:
            raise ConfigError("conversations need ttl_s > 0 and max_turns >= 1")
        self.ttl_s, self.max_turns, self._clock = ttl_s, max_turns, clock
        self._lock = threading.Lock()
        self._db = open_sqlite(path, _SCHEMA, what="the conversation store", setting="RAG_CONVERSATIONS__PATH")
        try:
            self._upgrade()
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot upgrade the conversation store at {path} ({exc}): "
                              "set RAG_CONVERSATIONS__PATH to a writable file") from exc

    def history(self, conversation_id: str) -> list[Turn]:
        """The turns of a live conversation, oldest first; [] when unknown or expired."""
        with self._lock:
            rows = self._db.execute(
                "SELECT question, answer, at FROM turns WHERE conversation = ? ORDER BY at DESC, rowid DESC LIMIT ?",
                (conversation_id, self.max_turns)).fetchall()
        if not rows or rows[0][2] < self._clock() - self.ttl_s:  # rows[0]: the last turn
            return []
        return [Turn(q, a) for q, a, _ in reversed(rows)]

    def recorded(self, conversation_id: str) -> list[RecordedTurn]:
        """The kept turns of a live conversation with their numbers and sources, oldest first; [] when unknown
        or expired."""
        with self._lock:
            rows = self._db.execute(
                "SELECT n, question, answer, standalone, decision, sources, index_version, "
                "COALESCE(answer_id, ''), at FROM turns WHERE conversation = ? ORDER BY at, rowid",
                (conversation_id,)).fetchall()
        if not rows or rows[-1][-1] < self._clock() - self.ttl_s:
            return []
        return [RecordedTurn(n, q, a, s, d, tuple(json.loads(cited)), v, answer)
                for n, q, a, s, d, cited, v, answer, _ in rows]

    def find_answer(self, answer_id: str) -> tuple[str, list[RecordedTurn]] | None:
        """The conversation an answer belongs to and its kept turns, oldest first; None when the id is unknown,
        its conversation expired or the turn is no longer kept (beyond `max_turns`)."""
        with self._lock:
            row = self._db.execute("SELECT conversation FROM turns WHERE answer_id = ?", (answer_id,)).fetchone()
        turns = self.recorded(row[0]) if row else []
        return (row[0], turns) if any(t.answer_id == answer_id for t in turns) else None

    def append(self, conversation_id: str, turn: Turn, *, standalone: str = "", decision: str = "",
               sources: Sequence[str] = (), index_version: str = "") -> AppendedTurn:
        """Record a turn and return its number and new answer id (and forget expired conversations and turns
        beyond `max_turns`). The answer id is what a client passes to rate this answer (`rag.feedback.rate_answer`)."""
        now, answer_id = self._clock(), secrets.token_hex(16)  # 128 random bits: only its client can know it
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._forget_expired(now)  # first: an expired conversation's id starts again at turn 1
                number = self._db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE conversation = ?",
                                          (conversation_id,)).fetchone()[0]
                self._db.execute(
                    "INSERT INTO turns (conversation, at, question, answer, standalone, decision, n, sources, "
                    "index_version, answer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (conversation_id, now, turn.question, turn.answer, standalone, decision, number,
                     json.dumps(list(sources), ensure_ascii=False), index_version, answer_id))
                self._forget_old_turns(conversation_id)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return AppendedTurn(int(number), answer_id)

    def _upgrade(self) -> None:
        """Add the columns (and the answer id index) a file from an earlier release lacks, numbering its turns;
        one writer at a time."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            have = {row[1] for row in self._db.execute("PRAGMA table_info(turns)")}
            for name, kind in _ADDED_COLUMNS.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE turns ADD COLUMN {name} {kind}")
            if "n" not in have:
                self._db.execute(_NUMBER_OLD_TURNS)
            self._db.execute(_ANSWER_INDEX)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _forget_expired(self, now: float) -> None:
        """Drop conversations idle for longer than the TTL."""
        self._db.execute("DELETE FROM turns WHERE conversation IN (SELECT conversation FROM turns "
                         "GROUP BY conversation HAVING MAX(at) < ?)", (now - self.ttl_s,))

    def _forget_old_turns(self, conversation_id: str) -> None:
        """Drop this conversation's turns beyond `max_turns`."""
        self._db.execute("DELETE FROM turns WHERE conversation = ? AND rowid NOT IN (SELECT rowid FROM turns "
                         "WHERE conversation = ? ORDER BY at DESC, rowid DESC LIMIT ?)",
                         (conversation_id, conversation_id, self.max_turns))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def condense_messages(prompt: PromptTemplate, history: Sequence[Turn], question: str, *,
                      max_turns: int = 4) -> list[Message]:
    """The condensation prompt: the last `max_turns` turns as quoted history, the follow-up as the question."""
    lines = []
    for turn in history[-max_turns:]:
        lines += [f"Customer: {_one_line(turn.question)}", f"Assistant: {_one_line(turn.answer)}"]
    system, user = prompt.render(history="\n".join(lines), question=question)
    return [Message("system", system), Message("user", user)]


def standalone(reply: str, question: str, history: Sequence[Turn], tokenizer: TextTokenizer, *,
               max_chars: int) -> str:
    """The model's standalone question, or (when it gave nothing usable) the previous question and the
    follow-up together, which still lets retrieval find the product the conversation is about.

    Usable: one line of at most `max_chars`, no citation markers, and at least half of the follow-up's
    content words kept (a model that answers instead of rewriting fails this)."""
    text = reply.strip().splitlines()[0].strip() if reply.strip() else ""
    text = re.sub(r"^(standalone question|question|answer)\s*:\s*", "", text, flags=re.IGNORECASE).strip(" \"'")
    asked, kept = set(tokenizer.tokens(question)), set(tokenizer.tokens(text))
    if 3 <= len(text) <= max_chars and not MARKER.search(text) and len(asked & kept) >= len(asked) / 2:
        return text
    return f"{history[-1].question} {question}"[-max_chars:] if history else question


def _one_line(text: str, limit: int = 400) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
