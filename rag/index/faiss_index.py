"""The FAISS adapter: the only module that imports faiss.

Vectors are L2-normalised, so inner product is cosine similarity. Ids are chunk ids (IndexIDMap2).
A version keeps its vectors in up to two files:

    vectors.faiss       the exact Flat index: the source of truth that ingestion copies, removes from and
                        reconstructs from (HNSW can neither remove nor, with SQ8/PQ codes, reconstruct exactly)
    vectors.ann.faiss   an approximate search index, written when `AnnOptions.resolve` picks HNSW or IVF

With the second one present, searches go to it and the Flat is memory-mapped on first use (`vectors_of`, exact
re-scoring of compressed codes, filters that allow few ids), so serving memory is the approximate index's.
A removed vector stays in the approximate index as a tombstone (its id becomes -2 - id, which a selector skips)
until tombstones pass REBUILD_DEAD_FRACTION and the next save rebuilds it from the Flat.

GPU: when faiss has GPU support and a GPU is visible, Flat and IVF searches run on a GPU copy (filtered IVF
searches and IVF with tombstones stay on the CPU: GPU indexes take no id selector). faiss has no GPU HNSW, so
HNSW always searches on the CPU. Saved files are CPU indexes, loadable anywhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from rag.errors import ConfigError, IndexCorruptError, IndexNotFoundError
from rag.protocols import Vectors

__all__ = ["AnnOptions", "FaissIndex", "gpu_count", "set_threads"]

try:
    import faiss
except ImportError as exc:  # pragma: no cover - faiss is a hard dependency
    raise ImportError("faiss is not installed: pip install faiss-cpu (or the gpu extra)") from exc

GpuMode = Literal["auto", "on", "off"]
IndexKind = Literal["auto", "flat", "hnsw", "ivf"]
Compression = Literal["none", "sq8", "pq"]
REBUILD_DEAD_FRACTION = 0.1  # tombstones beyond this share of the approximate index: rebuild it on save
_PARAMS_HNSW: Any = faiss.SearchParametersHNSW  # type: ignore[attr-defined]  # missing from faiss's stubs
_PARAMS_IVF: Any = faiss.SearchParametersIVF
_LIVE = faiss.IDSelectorRange(0, 2**62)  # every real chunk id; tombstones are negative
_REFINE = {"none": 1, "sq8": 2, "pq": 4}  # candidates fetched per result, re-scored exactly, by compression
_MAX_BOOST = 16.0  # how far a filtered search may widen efSearch / nprobe
Ids = npt.NDArray[np.int64]


def gpu_count() -> int:
    """How many GPUs this faiss build can use (0 for faiss-cpu)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def set_threads(threads: int) -> None:
    """FAISS's OpenMP threads (0: leave faiss's default, one per core)."""
    if threads > 0:
        faiss.omp_set_num_threads(threads)


@dataclass(frozen=True, slots=True)
class AnnOptions:
    """Which search index a version gets and how it is searched (from IndexSettings, at the entry points)."""

    kind: IndexKind = "auto"
    threshold: int = 100_000
    compression: Compression = "none"
    hnsw_m: int = 32
    ef_construction: int = 40
    ef_search: int = 128
    nprobe: int = 32
    pq_m: int = 0  # PQ sub-quantizers; 0: dimension / 8 (48 bytes a vector at 384-d)
    refine: int = 0  # candidates per result re-scored with the exact vectors; 0: by compression (_REFINE)
    # filters allowing at most this many ids search those ids exactly; bench.ann at 1M: 10,000 allowed ids take
    # 7.8 ms exactly (recall 1.0) against 3.7 ms through IVF with a selector at recall 0.962
    exact_below: int = 10_000

    def __post_init__(self) -> None:
        if self.kind == "hnsw" and self.compression == "pq":
            raise ConfigError("compression pq needs an IVF index (HNSW over PQ codes loses too much recall): "
                              "set RAG_INDEX__KIND=ivf (or auto), or RAG_INDEX__COMPRESSION=sq8")

    def resolve(self, count: int) -> Literal["flat", "hnsw", "ivf"]:
        """The kind for `count` vectors: auto = flat below the threshold, else IVF. bench.ann: at 100k and 1M
        clustered 384-d vectors IVF-Flat at nprobe 32 beat HNSW32 at ef_search 128 on recall, speed, memory and
        build time (1M: recall 0.989 at 96x Flat's QPS against 0.972 at 92x, built in 56 s against 195 s)."""
        if count == 0 or (self.kind == "auto" and count < self.threshold):
            return "flat"
        return "ivf" if self.kind == "auto" else self.kind

    def spec(self, count: int, dimension: int) -> dict[str, Any]:
        """What a version of `count` vectors should carry, as its manifest records it (nlist aside)."""
        kind = self.resolve(count)
        if kind == "flat":
            return {"kind": "flat"}
        spec: dict[str, Any] = {"kind": kind, "compression": self.compression}
        if kind == "hnsw":
            spec["hnsw_m"] = self.hnsw_m
        if self.compression == "pq":
            spec["pq_m"] = self.pq_m or _pq_m(dimension)
        return spec

    def is_current(self, recorded: dict[str, Any] | None, count: int, dimension: int) -> bool:
        """Whether a version's recorded search index is what these options would build now."""
        recorded = recorded or {"kind": "flat"}
        return all(recorded.get(key) == value for key, value in self.spec(count, dimension).items())


class _Ann:
    """An approximate index (IndexIDMap2 over HNSW or IVF) with its tombstone count."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.inner: Any = faiss.downcast_index(index.index)
        self.dead = int(np.count_nonzero(faiss.vector_to_array(index.id_map) < 0))
        self.kind = "hnsw" if isinstance(self.inner, faiss.IndexHNSW) else "ivf"
        self.compression: Compression = (
            "sq8" if isinstance(self.inner, faiss.IndexHNSWSQ | faiss.IndexIVFScalarQuantizer)
            else "pq" if isinstance(self.inner, faiss.IndexIVFPQ) else "none")

    @classmethod
    def build(cls, rows: Vectors, ids: Any, kind: str, options: AnnOptions) -> _Ann:
        count, dimension = rows.shape
        codes = {"none": "Flat", "sq8": "SQ8", "pq": ""}[options.compression]
        if kind == "hnsw":
            index: Any = faiss.index_factory(dimension, f"IDMap2,HNSW{options.hnsw_m},{codes}",
                                             faiss.METRIC_INNER_PRODUCT)
            inner: Any = faiss.downcast_index(index.index)
            inner.hnsw.efConstruction = options.ef_construction
        else:
            if options.compression == "pq":
                codes = f"PQ{options.pq_m or _pq_m(dimension)}x{min(8, max(1, int(math.log2(max(2, count / 39)))))}"
            index = faiss.index_factory(dimension, f"IDMap2,IVF{_nlist(count)},{codes}", faiss.METRIC_INNER_PRODUCT)
            if options.compression == "pq":  # the factory turns it on; it took ~100 s at 10k vectors, for nothing used
                ivf: Any = faiss.downcast_index(index.index)
                ivf.do_polysemous_training = False
        # k-means wants at least 39 training vectors a list (faiss warns below that); ~40 keeps 1M at ~1 minute
        sample = np.random.default_rng(0).choice(count, size=min(count, 40 * _nlist(count) + 10_000), replace=False)
        index.train(rows[np.sort(sample)])
        index.add_with_ids(rows, ids)
        return cls(index)

    @property
    def live(self) -> int:
        return int(self.index.ntotal) - self.dead

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"kind": self.kind, "compression": self.compression}
        if self.kind == "hnsw":
            spec["hnsw_m"] = int(self.inner.hnsw.nb_neighbors(1))
        else:
            spec["nlist"] = int(self.inner.nlist)
        if self.compression == "pq":
            spec["pq_m"] = int(self.inner.pq.M)
        return spec

    def fits(self, options: AnnOptions, count: int, dimension: int) -> bool:
        """Worth updating in place (else rebuild): same spec, few tombstones, lists sized for `count`."""
        spec = self.spec()
        if not options.is_current(spec, count, dimension):
            return False
        lists_fit = self.kind == "hnsw" or 0.5 <= spec["nlist"] / _nlist(count) <= 2
        return lists_fit and self.dead <= REBUILD_DEAD_FRACTION * int(self.index.ntotal)

    def bury(self, ids: Sequence[int]) -> int:
        """Turn these ids into tombstones; returns how many were present."""
        id_map = faiss.vector_to_array(self.index.id_map)
        hit = np.isin(id_map, np.asarray(ids, dtype=np.int64)) & (id_map >= 0)
        if hit.any():
            id_map[hit] = -2 - id_map[hit]
            faiss.copy_array_to_vector(id_map, self.index.id_map)
            self.index.construct_rev_map()
            self.dead += int(hit.sum())
        return int(hit.sum())

    def params(self, options: AnnOptions, fetch: int, boost: float, selector: Any) -> Any:
        if self.kind == "hnsw":
            return _PARAMS_HNSW(efSearch=max(fetch, round(options.ef_search * boost)), sel=selector)
        return _PARAMS_IVF(nprobe=min(int(self.inner.nlist), round(options.nprobe * boost)), sel=selector)


class FaissIndex:
    """Cosine search over ID-mapped vectors: exact (Flat), or approximate over an HNSW/IVF search index."""

    def __init__(self, *, dimension: int, gpu: GpuMode = "auto", options: AnnOptions | None = None) -> None:
        self._dimension = dimension
        self._cpu: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._flat_path: Path | None = None  # where a not yet loaded (or memory-mapped) Flat lies
        self._mapped = False
        self._ann: _Ann | None = None
        self._options = options or AnnOptions()
        self._gpu_mode = gpu
        self._gpu: Any = None
        self._gpu_resources: Any = None

    @classmethod
    def load(cls, path: Path, *, gpu: GpuMode = "auto", ann_path: Path | None = None,
             options: AnnOptions | None = None) -> FaissIndex:
        """Open `path` (the Flat); with `ann_path`, search that index and map the Flat only when needed."""
        if not path.exists():
            raise IndexNotFoundError(f"FAISS index not found at {path}: run `rag ingest` first")
        if ann_path is None:
            cpu = _read(path)
            index = cls(dimension=cpu.d, gpu=gpu, options=options)
            index._cpu = cpu
            return index
        ann = _Ann(_read(ann_path))
        index = cls(dimension=ann.index.d, gpu=gpu, options=options)
        index._cpu, index._flat_path, index._ann = None, path, ann
        return index

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def on_gpu(self) -> bool:
        if self._ann is not None:
            return self._ann.kind == "ivf" and self._ann_searcher(None) is not self._ann.index
        return self._searcher() is not self._cpu

    @property
    def search_kind(self) -> str:
        """flat, hnsw or ivf: what `search` runs on."""
        return "flat" if self._ann is None else self._ann.kind

    def configure(self, **changes: Any) -> None:
        """Change search-time options (ef_search, nprobe, refine, exact_below) of an open index."""
        self._options = replace(self._options, **changes)
        self._gpu = None

    def __len__(self) -> int:
        return self._ann.live if self._cpu is None and self._ann is not None else int(self._flat().ntotal)

    def add(self, ids: Sequence[int], vectors: Vectors) -> None:
        matrix = self._as_matrix(vectors)
        if matrix.shape[0] != len(ids):
            raise ValueError(f"{len(ids)} ids for {matrix.shape[0]} vectors")
        keys = np.asarray(ids, dtype=np.int64)
        self._owned().add_with_ids(matrix, keys)
        if self._ann is not None:
            self._ann.index.add_with_ids(matrix, keys)
        self._gpu = None

    def remove(self, ids: Sequence[int]) -> int:
        removed = int(self._owned().remove_ids(np.asarray(ids, dtype=np.int64)))
        if self._ann is not None:
            self._ann.bury(ids)
        self._gpu = None
        return removed

    def copy(self) -> FaissIndex:
        """An independent CPU copy, search index included (to build a new version from this one)."""
        twin = FaissIndex(dimension=self.dimension, gpu=self._gpu_mode, options=self._options)
        owned = self._cpu is not None and not self._mapped
        twin._cpu = faiss.clone_index(self._cpu) if owned else _read(self._flat_path)  # type: ignore[arg-type]
        twin._ann = _Ann(faiss.clone_index(self._ann.index)) if self._ann is not None else None
        return twin

    def vectors_of(self, ids: Sequence[int]) -> Vectors:
        """The stored vectors of these ids, one row each (to reuse instead of re-embedding)."""
        if len(ids) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        rows: Vectors = self._flat().reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return rows

    def save(self, path: Path, *, ann_path: Path | None = None, options: AnnOptions | None = None) -> dict[str, Any]:
        """Write the Flat to `path` and, when `options` resolve to HNSW or IVF, the search index to `ann_path`
        (updated in place when it fits, else rebuilt from the Flat). Returns the search index's description."""
        faiss.write_index(self._flat(), str(path))
        if ann_path is None or options is None:
            return {"kind": "flat"}  # the Flat alone, as before search indexes existed
        kind = options.resolve(len(self))
        if kind == "flat":
            self._ann = None  # as saved: exact search from now on
            return {"kind": "flat"}
        tick = time.perf_counter()
        updated = self._ann is not None and self._ann.fits(options, len(self), self.dimension)
        if not updated:
            flat = self._flat()
            rows = flat.index.reconstruct_n(0, flat.ntotal)
            self._ann = _Ann.build(rows, faiss.vector_to_array(flat.id_map), kind, options)
        assert self._ann is not None and self._ann.live == len(self), "search index and Flat disagree"
        faiss.write_index(self._ann.index, str(ann_path))
        self._gpu = None
        return {**self._ann.spec(), "file": ann_path.name, "bytes": ann_path.stat().st_size, "vectors": self._ann.live,
                "tombstones": self._ann.dead, "build": "updated" if updated else "rebuilt",
                "build_s": round(time.perf_counter() - tick, 3), **_search_fields(options)}

    def search(
        self, query: Vectors, k: int, allowed_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """The k nearest ids with their cosine scores, best first."""
        if k <= 0 or len(self) == 0:
            return []
        matrix = self._as_matrix(query.reshape(1, -1))
        if self._ann is not None:
            return self._search_ann(matrix, k, allowed_ids)
        if allowed_ids is None:
            return self._search(matrix, min(k, len(self)))
        allowed = set(allowed_ids)
        if not allowed:
            return []
        if not self.on_gpu:
            return self._search_selected(matrix, k, allowed)
        return self._search_overfetch(matrix, k, allowed)

    def search_batch(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        """Unfiltered search of many queries at once: (ids, scores), one row per query, -1 where none."""
        matrix = self._as_matrix(queries)
        k = min(k, len(self))
        if k <= 0:
            return np.full((len(matrix), 0), -1, dtype=np.int64), np.empty((len(matrix), 0), dtype=np.float32)
        if self._ann is None:
            scores, ids = self._searcher().search(matrix, k)
            return ids, scores
        return self._ann_top(matrix, k, None)

    # -- exact (Flat) ---------------------------------------------------------------------------

    def _search(self, matrix: Vectors, k: int) -> list[tuple[int, float]]:
        scores, ids = self._searcher().search(matrix, k)
        return _pairs(ids[0], scores[0])

    def _search_selected(self, matrix: Vectors, k: int, allowed: set[int]) -> list[tuple[int, float]]:
        selector = faiss.IDSelectorBatch(np.fromiter(allowed, dtype=np.int64))
        params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        scores, ids = self._flat().search(matrix, min(k, len(allowed)), params=params)
        return _pairs(ids[0], scores[0])

    def _search_overfetch(self, matrix: Vectors, k: int, allowed: set[int]) -> list[tuple[int, float]]:
        fetch = min(len(self), max(k * 8, 64))
        while True:
            hits = [(i, s) for i, s in self._search(matrix, fetch) if i in allowed]
            if len(hits) >= k or fetch >= len(self):
                return hits[:k]
            fetch = min(len(self), fetch * 4)

    def _searcher(self) -> Any:
        if not self._use_gpu():
            return self._cpu
        return self._on_gpu(self._cpu)

    def _on_gpu(self, index: Any) -> Any:
        """The GPU copy of `index`, made once (until the index changes) on device 0."""
        if self._gpu is None:
            self._gpu_resources = self._gpu_resources or faiss.StandardGpuResources()
            self._gpu = faiss.index_cpu_to_gpu(self._gpu_resources, 0, index)
        return self._gpu

    def _use_gpu(self) -> bool:
        if self._gpu_mode == "off":
            return False
        if gpu_count() == 0:
            if self._gpu_mode == "on":
                raise ConfigError(
                    "GPU search was requested but faiss sees no GPU: install the gpu extra "
                    "on a CUDA machine or set RAG_INDEX__GPU=auto"
                )
            return False
        return True

    def _flat(self) -> Any:
        """The Flat, memory-mapped from its file on first use when it was not loaded."""
        if self._cpu is None:
            assert self._flat_path is not None
            self._cpu, self._mapped = _read(self._flat_path, faiss.IO_FLAG_MMAP_IFC), True
        return self._cpu

    def _owned(self) -> Any:
        """The Flat in memory, to change it (a mapped one is read into memory first)."""
        if self._cpu is None or self._mapped:
            assert self._flat_path is not None
            self._cpu, self._mapped = _read(self._flat_path), False
        return self._cpu

    # -- approximate ----------------------------------------------------------------------------

    def _search_ann(self, matrix: Vectors, k: int, allowed_ids: Iterable[int] | None) -> list[tuple[int, float]]:
        if allowed_ids is None:
            ids, scores = self._ann_top(matrix, k, None)
            return _pairs(ids[0], scores[0])
        allowed = np.fromiter(allowed_ids, dtype=np.int64)
        if len(allowed) == 0:
            return []
        if len(allowed) <= self._options.exact_below:
            return self._exact_among(matrix, k, np.unique(allowed))
        ids, scores = self._ann_top(matrix, k, allowed)
        return _pairs(ids[0], scores[0])

    def _ann_top(self, matrix: Vectors, k: int, allowed: Ids | None) -> tuple[Ids, Vectors]:
        """ANN search (widened for a filter, tombstones skipped), compressed codes re-scored exactly."""
        ann = self._ann
        assert ann is not None
        refine = self._options.refine or _REFINE[ann.compression]
        fetch = min(k * refine, ann.live)
        selector = _selector(allowed) if allowed is not None else _LIVE if ann.dead else None
        boost = 1.0 if allowed is None else min(_MAX_BOOST, math.sqrt(ann.live / len(allowed)))
        params = ann.params(self._options, fetch, boost, selector)
        scores, ids = self._ann_searcher(selector).search(matrix, fetch, params=params)
        if ann.compression != "none":
            ids, scores = self._rescore(matrix, ids)
        return ids[:, :k], scores[:, :k]

    def _ann_searcher(self, selector: Any) -> Any:
        assert self._ann is not None
        use_gpu = self._use_gpu()  # first: "on" without a GPU is an error whatever the kind
        if self._ann.kind != "ivf" or selector is not None or not use_gpu:
            return self._ann.index  # faiss has no GPU HNSW; GPU indexes take no selector
        if self._gpu is None:
            self._ann.inner.nprobe = self._options.nprobe  # the copy keeps it, whether or not it reads the params
        return self._on_gpu(self._ann.index)

    def _rescore(self, matrix: Vectors, ids: Ids) -> tuple[Ids, Vectors]:
        """Exact cosines of candidate ids (from the Flat), each row re-sorted; -1 stays last."""
        found = ids >= 0
        if not found.any():
            return ids, np.full(ids.shape, -np.inf, dtype=np.float32)
        keys = np.where(found, ids, ids[found][0])
        rows = self._flat().reconstruct_batch(keys.ravel()).reshape(*ids.shape, self.dimension)
        scores = np.where(found, np.einsum("qcd,qd->qc", rows, matrix), -np.inf).astype(np.float32)
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)

    def _exact_among(self, matrix: Vectors, k: int, allowed: Ids) -> list[tuple[int, float]]:
        """Exact search over a few allowed ids: cheaper than a filtered ANN walk, and exact."""
        try:
            rows = self._flat().reconstruct_batch(allowed)
        except RuntimeError:  # an allowed id that the index does not hold: scan the Flat with a selector
            return self._search_selected(matrix, k, set(allowed.tolist()))
        scores = rows @ matrix[0]
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(allowed[i]), float(scores[i])) for i in top]

    def _as_matrix(self, vectors: Vectors) -> Vectors:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise ValueError(
                f"vectors of shape {matrix.shape} do not match index dimension {self.dimension}"
            )
        return matrix


def _read(path: Path, flags: int = 0) -> Any:
    if not path.exists():
        raise IndexNotFoundError(f"FAISS index not found at {path}: run `rag ingest` first")
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError as exc:
        raise IndexCorruptError(f"cannot read FAISS index {path}: {exc}. Rebuild it with `rag ingest`") from exc


def _selector(allowed: Ids) -> Any:
    """Chunk ids are small dense integers: a bitmap is quicker to build and test than a hash set of many ids."""
    top = int(allowed.max()) + 1
    if allowed.min() < 0 or top > 2**28:
        return faiss.IDSelectorBatch(allowed)
    mask = np.zeros(top, dtype=bool)
    mask[allowed] = True
    bits = np.packbits(mask, bitorder="little")
    selector: Any = faiss.IDSelectorBitmap(top, faiss.swig_ptr(bits))
    selector.bits_owner = bits  # the selector only points at the array: keep it alive with it
    return selector


def _pairs(ids: Iterable[Any], scores: Iterable[Any]) -> list[tuple[int, float]]:
    return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0]


def _search_fields(options: AnnOptions) -> dict[str, Any]:
    return {"ef_search": options.ef_search, "nprobe": options.nprobe}


def _nlist(count: int) -> int:
    """IVF lists: about 4 sqrt(n), with at least 39 vectors per list to train on."""
    return max(1, min(round(4 * math.sqrt(count)), count // 39))


def _pq_m(dimension: int) -> int:
    """PQ sub-quantizers: the largest divisor of the dimension that is at most dimension / 8."""
    return max(m for m in range(1, max(1, dimension // 8) + 1) if dimension % m == 0)
