"""The FAISS adapter: the only module that imports faiss.

Vectors are L2-normalised, so inner product is cosine similarity. Ids are chunk ids
(IndexIDMap2). When faiss has GPU support and a GPU is visible, search runs on a GPU
copy; the saved file is always the CPU index, loadable anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rag.errors import ConfigError, IndexCorruptError, IndexNotFoundError
from rag.protocols import Vectors

__all__ = ["FaissIndex", "gpu_count"]

try:
    import faiss
except ImportError as exc:  # pragma: no cover - faiss is a hard dependency
    raise ImportError("faiss is not installed: pip install faiss-cpu (or the gpu extra)") from exc

GpuMode = Literal["auto", "on", "off"]


def gpu_count() -> int:
    """How many GPUs this faiss build can use (0 for faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class FaissIndex:
    """Exact cosine search over ID-mapped vectors, on the GPU when one is usable."""

    def __init__(self, *, dimension: int, gpu: GpuMode = "auto") -> None:
        self._cpu: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._gpu_mode = gpu
        self._gpu: Any = None
        self._gpu_resources: Any = None

    @classmethod
    def load(cls, path: Path, *, gpu: GpuMode = "auto") -> FaissIndex:
        if not path.exists():
            raise IndexNotFoundError(f"FAISS index not found at {path}: run `rag ingest` first")
        try:
            cpu = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexCorruptError(
                f"cannot read FAISS index {path}: {exc}. Rebuild it with `rag ingest`"
            ) from exc
        index = cls(dimension=cpu.d, gpu=gpu)
        index._cpu = cpu
        return index

    @property
    def dimension(self) -> int:
        return int(self._cpu.d)

    @property
    def on_gpu(self) -> bool:
        return self._searcher() is not self._cpu

    def __len__(self) -> int:
        return int(self._cpu.ntotal)

    def add(self, ids: Sequence[int], vectors: Vectors) -> None:
        matrix = self._as_matrix(vectors)
        if matrix.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} ids for {matrix.shape[0]} vectors")
        self._cpu.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
        self._gpu = None

    def remove(self, ids: Sequence[int]) -> int:
        removed = int(self._cpu.remove_ids(np.asarray(ids, dtype=np.int64)))
        self._gpu = None
        return removed

    def copy(self) -> FaissIndex:
        """An independent CPU copy (to build a new version from this one without reading the file again)."""
        twin = FaissIndex(dimension=self.dimension, gpu=self._gpu_mode)
        twin._cpu = faiss.clone_index(self._cpu)
        return twin

    def vectors_of(self, ids: Sequence[int]) -> Vectors:
        """The stored vectors of these ids, one row each (to reuse instead of re-embedding)."""
        matrix = np.empty((len(ids), self.dimension), dtype=np.float32)
        for row, chunk_id in enumerate(ids):
            matrix[row] = self._cpu.reconstruct(int(chunk_id))
        return matrix

    def save(self, path: Path) -> None:
        faiss.write_index(self._cpu, str(path))

    def search(
        self, query: Vectors, k: int, allowed_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k nearest ids with their cosine scores, best first."""
        if k <= 0 or len(self) == 0:
            return []
        matrix = self._as_matrix(query.reshape(1, -1))
        if allowed_ids is None:
            return self._search(matrix, min(k, len(self)))
        allowed = set(allowed_ids)
        if not allowed:
            return []
        if not self.on_gpu:
            return self._search_selected(matrix, k, allowed)
        return self._search_overfetch(matrix, k, allowed)

    def _search(self, matrix: Vectors, k: int) -> list[tuple[int, float]]:
        scores, ids = self._searcher().search(matrix, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def _search_selected(self, matrix: Vectors, k: int, allowed: set[int]) -> list[tuple[int, float]]:
        selector = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
        params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, ids = self._cpu.search(matrix, min(k, len(allowed)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def _search_overfetch(self, matrix: Vectors, k: int, allowed: set[int]) -> list[tuple[int, float]]:
        fetch = min(len(self), max(k * 8, 64))
        while True:
            hits = [(i, s) for i, s in self._search(matrix, fetch) if i in allowed]
            if len(hits) >= k or fetch >= len(self):
                return hits[:k]
            fetch = min(len(self), fetch * 4)

    def _searcher(self) -> Any:
        if self._gpu_mode == "off":
            return self._cpu
        if gpu_count() == 0:
            if self._gpu_mode == "on":
                raise ConfigError(
                    "GPU search was requested but faiss sees no GPU: install the gpu extra "
                    "on a CUDA machine or set RAG_INDEX__GPU=auto"
                )
            return self._cpu
        if self._gpu is None:
            self._gpu_resources = self._gpu_resources or faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._cpu)
        return self._gpu

    def _as_matrix(self, vectors: Vectors) -> Vectors:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(
                f"vectors of shape {matrix.shape} do not match index dimension {self.dimension}"
            )
        return matrix
