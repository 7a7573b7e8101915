"""The chunk store: text and metadata of every chunk, and the source files they came from,
in one SQLite file beside the FAISS index."""

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
CREATE INDEX IF NOT EXISTS chunks_doc_type ON chunks(doc_type, id);
CREATE INDEX IF NOT EXISTS chunks_language ON chunks(language, id);
CREATE INDEX IF NOT EXISTS chunks_product ON chunks(lower(json_extract(metadata, '$.product')));
CREATE TABLE IF NOT EXISTS terms (
    id INTEGER PRIMARY KEY,
    terms TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
"""
_IN_EFFECT = (
    "(doc_type != 'policy' OR ((COALESCE(json_extract(metadata, '$.effective_from'), '') = '' "
    "OR json_extract(metadata, '$.effective_from') <= ?) AND (COALESCE(json_extract(metadata, '$.effective_to'), '') = '' "
    "OR ? < json_extract(metadata, '$.effective_to'))))"
)
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

    def remove(self, ids: Sequence[int]) -> None:
        with self._lock, self._db:
            self._db.executemany("DELETE FROM chunks WHERE id = ?", [(i,) for i in ids])
            self._db.executemany("DELETE FROM terms WHERE id = ?", [(i,) for i in ids])

    def put_terms(self, rows: Iterable[tuple[int, list[str]]]) -> None:
        """Remember each chunk's BM25 terms, so the next version's BM25 index needs no re-tokenising."""
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO terms (id, terms) VALUES (?, ?)",
                                 [(i, " ".join(t)) for i, t in rows])

    def clear_terms(self) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM terms")

    def without_terms(self) -> list[tuple[int, str]]:
        """(id, text) of the chunks whose terms are not stored yet."""
        return [(int(i), str(t)) for i, t in self._query(
            "SELECT id, text FROM chunks WHERE id NOT IN (SELECT id FROM terms) ORDER BY id", [])]

    def terms_of(self, ids: Sequence[int]) -> dict[int, list[str]]:
        """The stored BM25 terms of these chunks (chunks without stored terms are left out)."""
        if not ids:
            return {}
        rows = self._query(f"SELECT id, terms FROM terms WHERE id IN ({','.join('?' * len(ids))})", list(ids))
        return {int(i): t.split(" ") if t else [] for i, t in rows}

    def terms(self) -> tuple[list[int], list[list[str]]]:
        """Every chunk's id and BM25 terms, in id order."""
        rows = self._query("SELECT c.id, t.terms FROM chunks c JOIN terms t ON t.id = c.id ORDER BY c.id", [])
        return [int(r[0]) for r in rows], [r[1].split(" ") if r[1] else [] for r in rows]

    def update_metadata(self, source: str, updates: dict[str, Any]) -> int:
        """Merge `updates` into the metadata of every chunk of one document; returns chunks changed."""
        rows = self._query("SELECT id, metadata FROM chunks WHERE source = ?", [source])
        changed = []
        for chunk_id, text in rows:
            merged = {**json.loads(text), **updates}
            changed.append((json.dumps(merged, ensure_ascii=False), chunk_id))
        with self._lock, self._db:
            self._db.executemany("UPDATE chunks SET metadata = ? WHERE id = ?", changed)
        return len(changed)

    def max_id(self) -> int:
        """The largest chunk id ever stored here, -1 when empty."""
        value = self._query("SELECT MAX(id) FROM chunks", [])[0][0]
        return -1 if value is None else int(value)

    def put_file(self, source: str, record: dict[str, Any]) -> None:
        """Remember what was ingested from one source file (hash, loader, chunk ids, ...)."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO files (source, record) VALUES (?, ?)",
                             (source, json.dumps(record, ensure_ascii=False)))

    def drop_file(self, source: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM files WHERE source = ?", (source,))

    def files(self) -> dict[str, dict[str, Any]]:
        return {row[0]: json.loads(row[1]) for row in self._query("SELECT source, record FROM files", [])}

    def copy_to(self, path: Path) -> None:
        """A consistent copy of the whole store (SQLite's online backup)."""
        target = sqlite3.connect(str(path))
        try:
            with self._lock:
                self._db.backup(target)
        finally:
            target.close()

    def get_many(self, ids: Sequence[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT {_COLUMNS} FROM chunks WHERE id IN ({marks})", list(ids))
        return {row[0]: _from_row(row) for row in rows}

    def ids_matching(self, filters: Filters) -> list[int]:
        """Ids of the chunks that pass `filters` (the same rules as `Filters.accepts`, in SQL)."""
        clauses: list[str] = []
        args: list[str] = []
        for column, values in (
            ("doc_type", filters.doc_types),
            ("language", filters.languages),
            ("source", filters.sources),
            ("lower(json_extract(metadata, '$.product'))", tuple(sorted(filters.product_keys()))),
        ):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        if filters.effective_on is not None:
            clauses.append(_IN_EFFECT)
            args.extend([filters.effective_on.isoformat()] * 2)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return [row[0] for row in self._query(f"SELECT id FROM chunks{where}", args)]

    def distinct(self, key: str) -> list[str]:
        """The values one metadata key takes across the store (products, say), sorted."""
        rows = self._query("SELECT DISTINCT json_extract(metadata, ?) FROM chunks", [f"$.{key}"])
        return sorted(str(row[0]) for row in rows if row[0] not in (None, ""))

    def of_doc_type(self, doc_type: str) -> list[Chunk]:
        """Every chunk of one doc type, in id order (documents' chunks stay in reading order)."""
        rows = self._query(f"SELECT {_COLUMNS} FROM chunks WHERE doc_type = ? ORDER BY id", [doc_type])
        return [_from_row(row) for row in rows]

    def documents_by_doc_type(self) -> dict[str, int]:
        """How many documents (distinct sources) of each doc type the store holds."""
        rows = self._query("SELECT doc_type, COUNT(DISTINCT source) FROM chunks GROUP BY doc_type", [])
        return {str(kind): int(count) for kind, count in rows}

    def duplicate_groups(self) -> dict[str, str]:
        """Source -> its near-duplicate group, for the documents that share a group with others."""
        rows = self._query(
            "SELECT DISTINCT source, json_extract(metadata, '$.duplicate_group') FROM chunks "
            "WHERE json_extract(metadata, '$.duplicates') > 1", [])
        return {str(source): str(group) for source, group in rows}

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
