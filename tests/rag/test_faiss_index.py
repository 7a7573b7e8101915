from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.errors import ConfigError, IndexCorruptError, IndexNotFoundError
from rag.index import FaissIndex, gpu_count


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_search_returns_own_vector_first_with_cosine_one() -> None:
    index = FaissIndex(dimension=8, gpu="off")
    rows = unit_rows(20, 8)
    index.add(list(range(100, 120)), rows)
    hits = index.search(rows[7], 3)
    assert hits[0][0] == 107
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


def test_allowed_ids_restrict_results() -> None:
    index = FaissIndex(dimension=8, gpu="off")
    rows = unit_rows(20, 8)
    index.add(list(range(20)), rows)
    hits = index.search(rows[0], 5, allowed_ids=[3, 4, 5])
    assert {i for i, _ in hits} == {3, 4, 5}
    assert index.search(rows[0], 5, allowed_ids=[]) == []


def test_k_larger_than_index_and_empty_index() -> None:
    index = FaissIndex(dimension=4, gpu="off")
    assert index.search(unit_rows(1, 4)[0], 3) == []
    index.add([1, 2], unit_rows(2, 4))
    assert len(index.search(unit_rows(1, 4, seed=3)[0], 10)) == 2


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = FaissIndex(dimension=8, gpu="off")
    rows = unit_rows(5, 8)
    index.add([10, 11, 12, 13, 14], rows)
    index.save(tmp_path / "v.faiss")
    loaded = FaissIndex.load(tmp_path / "v.faiss", gpu="off")
    assert len(loaded) == 5 and loaded.dimension == 8
    assert loaded.search(rows[2], 1)[0][0] == 12


def test_remove_ids() -> None:
    index = FaissIndex(dimension=4, gpu="off")
    index.add([1, 2, 3], unit_rows(3, 4))
    assert index.remove([2]) == 1
    assert len(index) == 2


def test_wrong_dimension_is_a_clear_error() -> None:
    index = FaissIndex(dimension=8, gpu="off")
    with pytest.raises(ValueError, match="do not match index dimension 8"):
        index.add([1], unit_rows(1, 4))


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        FaissIndex.load(tmp_path / "none.faiss")
    (tmp_path / "bad.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexCorruptError, match="Rebuild"):
        FaissIndex.load(tmp_path / "bad.faiss")


@pytest.mark.skipif(gpu_count() > 0, reason="checks the no-GPU error; this machine has a GPU")
def test_gpu_on_without_gpu_says_how_to_fix() -> None:
    index = FaissIndex(dimension=4, gpu="on")
    index.add([1], unit_rows(1, 4))
    with pytest.raises(ConfigError, match="no GPU"):
        index.search(unit_rows(1, 4)[0], 1)


@pytest.mark.gpu
@pytest.mark.skipif(gpu_count() == 0, reason="needs faiss with GPU support and a CUDA GPU")
def test_gpu_search_matches_cpu(tmp_path: Path) -> None:
    rows = unit_rows(500, 32)
    cpu, gpu = FaissIndex(dimension=32, gpu="off"), FaissIndex(dimension=32, gpu="on")
    for index in (cpu, gpu):
        index.add(list(range(500)), rows)
    assert gpu.on_gpu
    for query in rows[:10]:
        assert [i for i, _ in gpu.search(query, 5)] == [i for i, _ in cpu.search(query, 5)]
        assert [i for i, _ in gpu.search(query, 5, allowed_ids=range(0, 500, 3))] == \
            [i for i, _ in cpu.search(query, 5, allowed_ids=range(0, 500, 3))]
    gpu.save(tmp_path / "g.faiss")
    assert FaissIndex.load(tmp_path / "g.faiss", gpu="off").search(rows[3], 1)[0][0] == 3
