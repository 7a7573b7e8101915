"""What the exported-model backends (ONNX Runtime, OpenVINO) share: tokenizing, batching and pooling.

The runtime only maps token ids to the transformer's last hidden state; the rest is done here exactly as
sentence-transformers does it for the model (its modules.json and 1_Pooling config): the model's own fast
tokenizer with its max_seq_length and right truncation, texts sorted by length into batches padded to the
longest, mean (or CLS) pooling over the attention mask, then L2 normalisation. The vectors therefore
match the torch backend's, and `name` is the model's name, so an index built with one backend is served
by another.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from rag.embedders.export import ExportCache
from rag.embedders.sentence_transformer import resolve_model_path
from rag.errors import ConfigError, EmbeddingError
from rag.protocols import Vectors

__all__ = ["DEFAULT_CACHE_DIR", "ExportedEmbedder", "Ids", "ModelLayout", "Runner"]

log = logging.getLogger("rag.embedders")

DEFAULT_CACHE_DIR = Path("~/.cache/rag/embedders")
PRECISIONS = ("fp32", "int8")
Ids = npt.NDArray[np.int64]
Runner = Callable[[Mapping[str, Ids]], npt.NDArray[np.float32]]  # token arrays -> last hidden state; EmbeddingError


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """What a sentence-transformers folder says about its modules: pooling, length, dimension."""

    folder: Path
    pooling: str  # "mean" or "cls"
    dimension: int
    max_seq_length: int
    lowercase: bool

    @classmethod
    def read(cls, folder: Path) -> ModelLayout:
        modules = _json(folder / "modules.json", [])
        pooling_path = next((m.get("path", "") for m in modules if str(m.get("type", "")).endswith(".Pooling")),
                            "1_Pooling")
        pooling = _json(folder / pooling_path / "config.json", {})
        config = _json(folder / "sentence_bert_config.json", {})
        hidden = int(_json(folder / "config.json", {}).get("hidden_size", 0))
        return cls(folder=folder, pooling=_pooling_mode(pooling, folder), dimension=int(
            pooling.get("word_embedding_dimension", hidden)), max_seq_length=int(config.get("max_seq_length") or 512),
                   lowercase=bool(config.get("do_lower_case", False)))


def _json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbeddingError(f"cannot read {path}: {exc}. Reinstall the model") from exc


def _pooling_mode(config: Mapping[str, Any], folder: Path) -> str:
    modes = [name for name in ("cls", "mean", "max", "mean_sqrt_len") if config.get(f"pooling_mode_{name}_tokens")]
    if modes in ([], ["mean"]):
        return "mean"  # sentence-transformers' default when a folder has no pooling config
    if modes == ["cls"]:
        return "cls"
    raise EmbeddingError(f"the model in {folder} pools with {'+'.join(modes)}, which the exported backends do "
                         "not do: use RAG_EMBEDDING__BACKEND=sentence-transformers for it")


class ExportedEmbedder(ABC):
    """An Embedder over a model exported from a sentence-transformers folder; subclasses bring the runtime."""

    backend: ClassVar[str]
    model_file: ClassVar[str]  # the runtime's model file name, the same in every variant's folder
    int8_recipe: ClassVar[Mapping[str, Any]]  # how the int8 variant is made from the fp32 one (in its manifest)

    def __init__(self, *, model: str = "all-MiniLM-L6-v2", precision: str = "auto", threads: int = 0,
                 cache_dir: Path | str = DEFAULT_CACHE_DIR, batch_size: int = 32, device: str = "auto",
                 max_tokens: int | None = None) -> None:
        precision = "int8" if precision == "auto" else precision  # bench.embedders: >= 0.99 of fp32's nDCG@10
        _check_options(self.backend, precision, device, batch_size)
        self._model_name = model
        self.precision = precision
        self.threads = threads
        self._cache_dir = Path(cache_dir).expanduser()
        self._batch_size = batch_size
        self._max_tokens = max_tokens
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The vector space, as indexes record it: an fp32 export gives the model's own vectors (cosine 1.00000 to
        torch's), so it keeps the model's name; int8 vectors differ (mean cosine ~0.996), so they are named apart
        and an index of one is never topped up or searched with the other."""
        return self._model_name if self.precision == "fp32" else f"{self._model_name} ({self.variant})"

    @property
    def dimension(self) -> int:
        return self._layout.dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens or self._layout.max_seq_length

    @property
    def variant(self) -> str:
        """The cache sub-folder: `<backend>-<precision>`."""
        return f"{self.backend}-{self.precision}"

    @cached_property
    def cache(self) -> ExportCache:
        path = Path(resolve_model_path(self._model_name))
        if not path.is_dir():
            raise EmbeddingError(f"the {self.backend} backend exports a local model folder, and {self._model_name!r} "
                                 "is none: use a packaged model (all-MiniLM-L6-v2) or a folder for RAG_EMBEDDING__MODEL")
        return ExportCache(self._cache_dir, model=self._model_name, source=path)

    def load(self) -> None:
        """Make (once) and open the model now rather than on the first text."""
        with self._lock:
            _ = self._runner

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(self._prepared(text), add_special_tokens=False).ids)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode([self._prepared(t) for t in texts])

    def embed_query(self, text: str) -> Vectors:
        vector: Vectors = self._encode([self._prepared(text)])[0]
        return vector

    def model_path(self, *, rebuild: bool = False) -> Path:
        """The model file for this precision, made first when missing or stale (always when `rebuild`): the fp32
        model, and for int8 the quantized one made from it."""
        fp32 = self._fp32_folder(rebuild=rebuild and self.precision == "fp32") / self.model_file
        if self.precision == "fp32":
            return fp32
        folder = self.cache.ensure(self.variant, self.int8_recipe, lambda out: self._quantize(fp32, out),
                                   rebuild=rebuild)
        return folder / self.model_file

    @abstractmethod
    def _fp32_folder(self, *, rebuild: bool) -> Path:
        """The cached folder of the fp32 model, made first when missing or stale."""

    @abstractmethod
    def _quantize(self, source: Path, folder: Path) -> dict[str, Any]:
        """Write the int8 model made from the fp32 `source` into `folder`; details for the manifest."""

    @abstractmethod
    def _session(self, path: Path) -> Runner:
        """The runtime's session over the model file; EmbeddingError when it cannot be read."""

    @cached_property
    def _layout(self) -> ModelLayout:
        return ModelLayout.read(self.cache.source)

    @cached_property
    def _runner(self) -> Runner:
        path = self.model_path()
        try:
            return self._session(path)
        except EmbeddingError as exc:  # a cached file that is whole in size but unreadable: make it once more
            log.warning("the cached %s model of %s cannot be opened (%s): making it again", self.variant,
                        self._model_name, " ".join(str(exc).split()))
        return self._session(self.model_path(rebuild=True))

    @cached_property
    def _tokenizer(self) -> Any:
        tokenizer = _load_tokenizer(self.cache.source)
        tokenizer.enable_truncation(max_length=self.max_tokens, strategy="longest_first", direction="right")
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def _counter(self) -> Any:
        counter = _load_tokenizer(self.cache.source)
        counter.no_truncation()
        counter.no_padding()
        return counter

    def _features(self, texts: Sequence[str]) -> dict[str, Ids]:
        """The model's inputs for one batch of (prepared) texts."""
        return _padded(self._tokenizer.encode_batch(list(texts)))

    def _prepared(self, text: str) -> str:
        return text.lower() if self._layout.lowercase else text

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            runner = self._runner
            encodings = self._tokenizer.encode_batch(texts)
            order = np.argsort([-len(e.ids) for e in encodings], kind="stable")  # longest first, little padding
            out = np.empty((len(texts), self.dimension), dtype=np.float32)
            for start in range(0, len(texts), self._batch_size):
                rows = order[start:start + self._batch_size]
                feed = _padded([encodings[i] for i in rows])
                out[rows] = self._pooled(runner(feed), feed["attention_mask"])
        return out

    def _pooled(self, hidden: npt.NDArray[np.float32], mask: Ids) -> Vectors:
        """Mean (or CLS) pooling over the real tokens, then L2 normalisation, as sentence-transformers does."""
        if self._layout.pooling == "cls":
            vectors = hidden[:, 0, :].astype(np.float32)
        else:
            weights = mask.astype(np.float32)
            summed = np.einsum("bsd,bs->bd", hidden, weights, dtype=np.float32)
            vectors = summed / np.clip(weights.sum(axis=1, keepdims=True), 1e-9, None)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: Vectors = (vectors / np.clip(norms, 1e-12, None)).astype(np.float32, copy=False)
        return normalised


def _check_options(backend: str, precision: str, device: str, batch_size: int) -> None:
    if precision == "fp16":
        raise ConfigError(f"precision fp16 is for a GPU, and the {backend} backend runs on the CPU: use fp32 or "
                          "int8 (RAG_EMBEDDING__PRECISION), or RAG_EMBEDDING__BACKEND=sentence-transformers with a CUDA "
                          "device for fp16")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r} for the {backend} backend: choose fp32 or int8 "
                          "(RAG_EMBEDDING__PRECISION)")
    if device not in ("auto", "cpu"):
        raise ConfigError(f"the {backend} backend runs on the CPU, not on {device!r}: set RAG_EMBEDDING__DEVICE=cpu, "
                          "or RAG_EMBEDDING__BACKEND=sentence-transformers for a GPU")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size} (RAG_EMBEDDING__BATCH_SIZE)")


def _load_tokenizer(folder: Path) -> Any:
    """The model's own fast tokenizer (tokenizer.json), as transformers' AutoTokenizer would load it."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust binding raises plain Exception for a missing or broken file
        raise EmbeddingError(f"cannot load the tokenizer {path}: {exc}. The exported backends need the model's "
                             "fast tokenizer (tokenizer.json): use RAG_EMBEDDING__BACKEND=sentence-transformers") from exc


def _padded(encodings: Sequence[Any]) -> dict[str, Ids]:
    """input_ids, attention_mask and token_type_ids for one batch, padded with 0 to its longest text."""
    width = max(len(e.ids) for e in encodings)
    ids, mask, types = (np.zeros((len(encodings), width), dtype=np.int64) for _ in range(3))
    for row, encoding in enumerate(encodings):
        length = len(encoding.ids)
        ids[row, :length] = encoding.ids
        mask[row, :length] = 1
        types[row, :length] = encoding.type_ids
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

