"""The chunk store: text and metadata of every chunk, in one SQLite file beside the FAISS index."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.types import Chunk, Filters

__all__ = ["ChunkStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    language TEXT NOT NULL,
    section TEXT NOT NULL,
    page INTEGER,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
"""
_COLUMNS = "id, source, title, doc_type, language, section, page, text, metadata"


class ChunkStore:
    """Chunks by id; safe to read from several threads."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        if not create and not path.exists():
            raise IndexNotFoundError(f"chunk store not found at {path}: run `rag ingest` first")
        self.path = path
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(
                f"cannot open chunk store {path}: {exc}. Rebuild it with `rag ingest`"
            ) from exc

    def add(self, chunks: Iterable[Chunk]) -> None:
        rows = [_to_row(chunk) for chunk in chunks]
        with self._lock, self._db:
            self._db.executemany(f"INSERT INTO chunks ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def get_many(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT {_COLUMNS} FROM chunks WHERE id IN ({marks})", list(ids))
        return {row[0]: _from_row(row) for row in rows}

    def ids_matching(self, filters: Filters) -> list[int]:
        clauses: list[str] = []
        args: list[str] = []
        for column, values in (
            ("doc_type", filters.doc_types),
            ("language", filters.languages),
            ("source", filters.sources),
        ):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return [row[0] for row in self._query(f"SELECT id FROM chunks{where}", args)]

    def all(self) -> list[Chunk]:
        return [_from_row(row) for row in self._query(f"SELECT {_COLUMNS} FROM chunks ORDER BY id", [])]

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM chunks", [])[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _query(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise IndexCorruptError(
                    f"chunk store {self.path} is unreadable: {exc}. Rebuild it with `rag ingest`"
                ) from exc


def _to_row(chunk: Chunk) -> tuple[Any, ...]:
    return (
        chunk.id, chunk.source, chunk.title, chunk.doc_type, chunk.language,
        chunk.section, chunk.page, chunk.text, json.dumps(chunk.metadata, ensure_ascii=False),
    )


def _from_row(row: tuple[Any, ...]) -> Chunk:
    return Chunk(
        id=row[0], source=row[1], title=row[2], doc_type=row[3], language=row[4],
        section=row[5], page=row[6], text=row[7], metadata=json.loads(row[8]),
    )
