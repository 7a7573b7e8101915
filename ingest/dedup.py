"""Near-duplicate tickets, grouped so that one recurring problem does not flood search results.

Two similarity measures; `threshold` is in the units of the one used:

- lexical (default): Jaccard similarity of the sets of word bigrams of the normalised text
  (lower-cased; redaction tokens such as <EMAIL>, digits and punctuation removed; Chinese,
  Japanese and Korean characters count as words). Candidates come from MinHash signatures
  (128 hash functions) with LSH banding tuned so that a pair at the threshold is a candidate
  with at least 99% probability; every candidate's Jaccard is then computed exactly. Default
  0.5: catches re-sent and lightly edited tickets, not paraphrases. No lexical threshold
  separates paraphrases from different problems: on the sample tickets T-1001/T-1002 (the
  same Aurora X2 step-down problem in other words) score 0.066, T-1008/T-2005 (a 2024 return
  window question and a 2025 restocking fee question) 0.063; the highest pair is 0.125.
- semantic (`vectors` given): cosine similarity of sentence embeddings, one row per item
  (L2-normalised here if they are not). Default 0.8, for all-MiniLM-L6-v2: the sample's
  same-problem pairs score 0.86-0.90 (T-1001/T-1002/T-2009 step-down, T-1003/T-1004 E1 without
  a C wire), the closest different problems 0.63 (T-1002/T-1018, a dimming lamp and a lamp
  that will not turn on).

Pairs at or above the threshold are joined transitively (single link); every group's id is
the smallest source id in it, so the result does not depend on the order of the items.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import combinations, pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import ConfigError

__all__ = ["LEXICAL_THRESHOLD", "SEMANTIC_THRESHOLD", "near_duplicate_groups", "shingles"]

LEXICAL_THRESHOLD = 0.5
SEMANTIC_THRESHOLD = 0.8

_PERMUTATIONS = 128
_RECALL = 0.99
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_WORD = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+")
_REDACTED = re.compile(r"<[A-Za-z_]+>")
_rng = np.random.default_rng(20250601)
_A = _rng.integers(1, 1 << 63, _PERMUTATIONS, dtype=np.uint64) | np.uint64(1)  # odd multipliers
_B = _rng.integers(0, 1 << 63, _PERMUTATIONS, dtype=np.uint64)
_SHIFT = np.uint64(32)


def near_duplicate_groups(
    items: Sequence[tuple[str, str]],
    *,
    threshold: float | None = None,
    vectors: npt.ArrayLike | None = None,
) -> dict[str, str]:
    """{source: group id} for every item; the group id is the smallest source id of its group.

    `items` are (source id, text); `vectors`, when given, one embedding per item in the same
    order. `threshold` defaults to LEXICAL_THRESHOLD, or SEMANTIC_THRESHOLD with vectors.
    """
    sources = [source for source, _ in items]
    if len(set(sources)) != len(sources):
        raise ValueError("near_duplicate_groups needs distinct source ids; merge the texts of one source first")
    limit = _threshold(threshold, LEXICAL_THRESHOLD if vectors is None else SEMANTIC_THRESHOLD)
    if vectors is None:
        pairs = _lexical_pairs([shingles(text) for _, text in items], limit)
    else:
        pairs = _cosine_pairs(_normalised(vectors, len(items)), limit)
    order = sorted(range(len(sources)), key=sources.__getitem__)
    rank = np.empty(len(sources), dtype=np.int64)
    rank[order] = np.arange(len(sources))
    labels = _components(len(sources), rank[pairs[0]], rank[pairs[1]])
    return {source: sources[order[labels[rank[i]]]] for i, source in enumerate(sources)}


def shingles(text: str) -> frozenset[int]:
    """The text's word bigrams (a lone word on its own), hashed to 32 bits, after normalisation."""
    words = _WORD.findall(_REDACTED.sub(" ", text).lower())
    grams = [f"{a} {b}" for a, b in pairwise(words)] or words
    return frozenset(map(zlib.crc32, map(str.encode, grams)))


def _threshold(value: float | None, default: float) -> float:
    if value is None:
        return default
    if not 0 < value <= 1:
        raise ConfigError(f"dedup threshold must be in (0, 1], got {value}: set ingest.dedup_threshold, "
                          f"e.g. {default}")
    return float(value)


Pairs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]


# -- lexical: MinHash + LSH candidates, exact Jaccard --------------------------------------------


def _lexical_pairs(sets: Sequence[frozenset[int]], threshold: float) -> Pairs:
    """Index pairs whose exact Jaccard similarity is at least `threshold`."""
    same: dict[frozenset[int], list[int]] = defaultdict(list)
    for i, grams in enumerate(sets):
        if grams:
            same[grams].append(i)
    found = [(a, b) for members in same.values() for a, b in pairwise(members)]
    unique = [members[0] for members in same.values()]
    if len(unique) > 1:
        signatures = _minhash([sets[i] for i in unique])
        for a, b in _candidates(signatures, _rows_per_band(threshold)):
            x, y = sets[unique[a]], sets[unique[b]]
            common = len(x & y)
            if common >= threshold * (len(x) + len(y) - common):
                found.append((unique[a], unique[b]))
    return _as_arrays(found)


def _minhash(sets: Sequence[frozenset[int]], batch_rows: int = 32_768) -> npt.NDArray[np.uint32]:
    """One row of _PERMUTATIONS min-hashes per non-empty set (multiply-add-shift hashing, mod 2**64)."""
    rows: list[npt.NDArray[np.uint32]] = []
    start = 0
    while start < len(sets):
        stop, total = start, 0
        while stop < len(sets) and (total == 0 or total + len(sets[stop]) <= batch_rows):
            total += len(sets[stop])
            stop += 1
        values = np.fromiter((h for s in sets[start:stop] for h in s), dtype=np.uint64, count=total)
        offsets = np.cumsum([0] + [len(s) for s in sets[start:stop - 1]], dtype=np.int64)
        hashed = ((values[:, None] * _A[None, :] + _B[None, :]) >> _SHIFT).astype(np.uint32)
        rows.append(np.minimum.reduceat(hashed, offsets, axis=0))
        start = stop
    return np.concatenate(rows)


def _rows_per_band(threshold: float) -> int:
    """The most rows per band that still makes a pair at `threshold` a candidate with _RECALL."""
    best = 1
    for rows in range(1, _PERMUTATIONS + 1):
        if 1 - (1 - threshold**rows) ** (_PERMUTATIONS // rows) >= _RECALL:
            best = rows
    return best


def _candidates(signatures: npt.NDArray[np.uint32], rows: int) -> Iterator[tuple[int, int]]:
    """Pairs of rows that agree on every hash of at least one band, each once, in sorted order."""
    seen: set[tuple[int, int]] = set()
    for band in range(_PERMUTATIONS // rows):
        block = np.ascontiguousarray(signatures[:, band * rows:(band + 1) * rows])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows))).ravel()
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        for begin, end in zip(starts, np.r_[starts[1:], len(keys)], strict=True):
            if end - begin > 1:
                seen.update(combinations(sorted(order[begin:end].tolist()), 2))
    yield from sorted(seen)


# -- semantic: cosine of embeddings ----------------------------------------------------------------


def _normalised(vectors: npt.ArrayLike, count: int) -> npt.NDArray[np.float32]:
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != count:
        raise ValueError(f"vectors must be one row per item: expected ({count}, dim), got {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit


def _cosine_pairs(matrix: npt.NDArray[np.float32], threshold: float, block: int = 1024) -> Pairs:
    """Index pairs (i < j) whose cosine similarity is at least `threshold`, a block of rows at a time."""
    firsts, seconds = [], []
    for start in range(0, len(matrix), block):
        scores = matrix[start:start + block] @ matrix.T
        i, j = np.nonzero(scores >= np.float32(threshold))
        keep = j > i + start
        firsts.append(i[keep] + start)
        seconds.append(j[keep])
    if not firsts:
        return _as_arrays([])
    return np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)


# -- grouping ----------------------------------------------------------------------------------------


def _as_arrays(pairs: Sequence[tuple[int, int]]) -> Pairs:
    array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return array[:, 0].copy(), array[:, 1].copy()


def _components(count: int, first: npt.NDArray[np.int64], second: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """For each node, the smallest node connected to it (hooking plus pointer jumping)."""
    labels = np.arange(count, dtype=np.int64)
    while True:
        low, high = np.minimum(labels[first], labels[second]), np.maximum(labels[first], labels[second])
        if np.array_equal(low, high):
            return labels
        np.minimum.at(labels, high, low)
        while not np.array_equal(jumped := labels[labels], labels):
            labels = jumped
