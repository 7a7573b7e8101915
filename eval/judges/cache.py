"""A verdict cache: a judge's reply to the same input is asked for once, then read back.

Keyed by the judge's id (its name, model and prompt version) and the exact input, hashed with
SHA-256, so a new prompt version or another model never reuses an old verdict. SQLite in WAL mode:
concurrent runs may share one cache file; a write that loses a race is simply written again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from rag.errors import InputError

__all__ = ["VerdictCache", "cache_key"]


def cache_key(judge_id: str, item: Any) -> str:
    """The SHA-256 of the judge id and the item as canonical JSON."""
    text = json.dumps([judge_id, item], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VerdictCache:
    """Judge replies by cache key; `hits` and `misses` count lookups since opening."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot open the judge cache {self.path}: {exc}: pass another --cache path "
                             "or --no-cache") from exc
        self.hits = self.misses = 0

    def get(self, key: str) -> Any | None:
        row = self._db.execute("SELECT value FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO verdicts (key, value) VALUES (?, ?)",
                             (key, json.dumps(value, ensure_ascii=False)))

    def close(self) -> None:
        self._db.close()
