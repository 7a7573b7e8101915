"""A deterministic, dependency-free embedder for fast tests: hashed bag of words."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from rag.protocols import Vectors

__all__ = ["HashEmbedder"]

_TOKEN = re.compile(r"[\w']+|[^\w\s]", re.UNICODE)


class HashEmbedder:
    """Texts sharing words get similar vectors; identical texts get identical ones."""

    def __init__(self, *, dimension: int = 64, max_tokens: int = 256) -> None:
        self._dimension = dimension
        self._max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"hash-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row] = self._vector(text)
        return out

    def embed_query(self, text: str) -> Vectors:
        return self._vector(text)

    def _vector(self, text: str) -> Vectors:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for token in _TOKEN.findall(text.lower())[: self._max_tokens]:
            digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "little") % self._dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector
