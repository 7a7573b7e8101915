"""The BM25 adapter: the only module that imports bm25s.

A version folder holds the lexical index next to the FAISS one:

    bm25/   bm25s's own files (vocabulary, the sparse term-score matrix, parameters)
            and ids.npy, the chunk id of each BM25 row

BM25 statistics (document frequencies, average length) are corpus-wide, so each version's
index is built whole from the terms of every chunk; ingestion keeps those terms in the chunk
store, so only new chunks are tokenised.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import IndexCorruptError, IndexNotFoundError

__all__ = ["Bm25Index"]

try:
    import bm25s
except ImportError as exc:  # pragma: no cover - bm25s is a hard dependency
    raise ImportError("bm25s is not installed: pip install bm25s") from exc

logging.getLogger("bm25s").setLevel(logging.WARNING)
_IDS = "ids.npy"
_PARAMS = "params.index.json"


class Bm25Index:
    """Okapi BM25 (Lucene variant) over chunk ids, with optional restriction to allowed ids."""

    def __init__(self, model: Any, ids: np.ndarray) -> None:
        self._model = model  # None for an index without a single term
        self._ids = ids.astype(np.int64)
        indptr = np.asarray(model.scores["indptr"]) if model is not None else np.zeros(1, dtype=np.int64)
        self._df = np.diff(indptr)  # documents per term: the CSC matrix has one column per term

    @classmethod
    def build(cls, ids: Sequence[int], terms: Sequence[list[str]], *, k1: float = 1.2, b: float = 0.75) -> Bm25Index:
        if len(ids) != len(terms):
            raise ValueError(f"{len(ids)} ids for {len(terms)} term lists")
        if not any(terms):
            return cls(None, np.asarray(ids, dtype=np.int64))
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        # our own sorted vocabulary: bm25s numbers terms in the order of a Python set, which changes with the
        # process's hash seed, so the same chunks would give other bytes in another process (or on a Ray worker)
        vocabulary = {term: column for column, term in enumerate(sorted({t for doc in terms for t in doc}))}
        model.index(([[vocabulary[t] for t in doc] for doc in terms], vocabulary), show_progress=False)
        return cls(model, np.asarray(ids, dtype=np.int64))

    @classmethod
    def load(cls, folder: Path) -> Bm25Index:
        if not (folder / _IDS).exists():
            raise IndexNotFoundError(f"BM25 index not found at {folder}: rebuild the index with `rag ingest --full`")
        try:
            ids = np.load(folder / _IDS)
            empty = not (folder / _PARAMS).exists()
            model = None if empty else bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise IndexCorruptError(f"cannot read BM25 index {folder}: {exc}. Rebuild it with `rag ingest --full`") from exc
        return cls(model, ids)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self._model is not None:
            self._model.save(str(folder), show_progress=False)
        np.save(folder / _IDS, self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, terms: list[str], k: int, allowed_ids: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """The k best-scoring chunk ids with their BM25 scores; chunks sharing no term are left out."""
        known = self._model.get_tokens_ids(terms) if self._model is not None else []
        if k <= 0 or not known:
            return []
        scores = np.asarray(self._model.get_scores_from_ids(known), dtype=np.float32)
        if allowed_ids is not None:
            scores = np.where(np.isin(self._ids, np.asarray(allowed_ids, dtype=np.int64)), scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if candidates.size > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        return [(int(self._ids[row]), float(scores[row])) for row in order]

    def idf(self, terms: list[str]) -> dict[str, float]:
        """The inverse document frequency of each term (0 for terms the corpus lacks)."""
        n = len(self._ids)
        weights = {}
        for term in terms:
            column = self._model.vocab_dict.get(term) if self._model is not None else None
            df = int(self._df[column]) if column is not None else 0
            weights[term] = math.log(1 + (n - df + 0.5) / (df + 0.5)) if df else 0.0
        return weights
