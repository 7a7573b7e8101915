from __future__ import annotations

from pathlib import Path

import pytest

from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index import ChunkStore
from rag.types import Chunk, Filters


def chunk(i: int, **kw: object) -> Chunk:
    base: dict[str, object] = {"id": i, "text": f"text {i}", "source": f"s{i}.md", "title": "T",
                               "doc_type": "doc", "metadata": {"k": "é"}}
    base.update(kw)
    return Chunk(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "c.sqlite3", create=True)
    original = chunk(1, language="zh", section="A > B", page=3)
    store.add([original, chunk(2)])
    assert store.get_many([1])[1] == original
    assert len(store) == 2 and store.get_many([]) == {}


def test_ids_matching_filters(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "c.sqlite3", create=True)
    store.add([chunk(1, doc_type="policy"), chunk(2, doc_type="ticket", language="zh"), chunk(3)])
    assert sorted(store.ids_matching(Filters(doc_types=("policy", "ticket")))) == [1, 2]
    assert store.ids_matching(Filters(doc_types=("ticket",), languages=("en",))) == []
    assert sorted(store.ids_matching(Filters())) == [1, 2, 3]


def test_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError):
        ChunkStore(tmp_path / "none.sqlite3")
    (tmp_path / "bad.sqlite3").write_bytes(b"garbage" * 100)
    with pytest.raises(IndexCorruptError):
        ChunkStore(tmp_path / "bad.sqlite3")
