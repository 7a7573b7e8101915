"""Models made once from a sentence-transformers folder and kept in a cache: the ONNX export, quantized copies.

Layout: `<cache_dir>/<model>/<backend>-<precision>/` holds the model files and `manifest.json`: where the
source came from, a hash of its weights, the recipe (opset, quantization), the library versions, and each
file's size. A folder is reused while the weights hash and the recipe match and every file has its size;
otherwise it is made again. A folder is written under a temporary name beside its final one and renamed
into place, so a reader never sees half a model and two processes making the same one both end with a
whole one.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

from rag.errors import EmbeddingError

__all__ = ["MANIFEST", "OPSET", "ExportCache", "export_onnx", "library_versions"]

log = logging.getLogger("rag.embedders")

MANIFEST = "manifest.json"
FORMAT = 1  # bump when the layout or the export changes: every cached model is made again
OPSET = 17
WEIGHTS = ("model.safetensors", "pytorch_model.bin")
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
Make = Callable[[Path], Mapping[str, Any]]  # writes the model files into a folder; returns the recipe details


def library_versions(*names: str) -> dict[str, str]:
    """The installed versions of `names` (distribution names), for the manifest."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


class ExportCache:
    """The cached models made from one source model folder, one sub-folder per `<backend>-<precision>`."""

    def __init__(self, root: Path, *, model: str, source: Path) -> None:
        self.model = model
        self.source = source
        self.root = root.expanduser() / model.replace("/", "--")

    def folder(self, variant: str) -> Path:
        return self.root / variant

    @cached_property
    def _weights(self) -> Path:
        weights = next((self.source / name for name in WEIGHTS if (self.source / name).is_file()), None)
        if weights is None:
            raise EmbeddingError(f"no weights ({' or '.join(WEIGHTS)}) in {self.source}: point "
                                 "RAG_EMBEDDING__MODEL at a sentence-transformers model folder")
        return weights

    @property
    def source_stat(self) -> list[int]:
        """Size and modification time of the source's weights: while they match a manifest's, so does the hash."""
        stat = self._weights.stat()
        return [stat.st_size, stat.st_mtime_ns]

    @cached_property
    def source_hash(self) -> str:
        """sha256 of the source's weights file: a changed model invalidates everything made from it."""
        digest = hashlib.sha256()
        with self._weights.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
        return f"{self._weights.name}:{digest.hexdigest()}"

    def is_current(self, variant: str, recipe: Mapping[str, Any]) -> bool:
        """True when the variant's folder was made from this source with this recipe and is whole. The weights
        are hashed (~0.1 s for MiniLM) only when their size or time differs from the manifest's, not every start."""
        folder = self.folder(variant)
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(manifest, dict):
            return False
        same_source = manifest.get("source_stat") == self.source_stat or manifest.get("source_hash") == self.source_hash
        if not same_source or (manifest.get("format"), manifest.get("recipe")) != (FORMAT, json.loads(json.dumps(recipe))):
            return False
        files = manifest.get("files") or {}
        return bool(files) and all(_size(folder / name) == size for name, size in files.items())

    def ensure(self, variant: str, recipe: Mapping[str, Any], make: Make, *, rebuild: bool = False) -> Path:
        """The variant's folder, made with `make` first when it is missing, stale, broken, or `rebuild` is set."""
        if not rebuild and self.is_current(variant, recipe):
            return self.folder(variant)
        return self.build(variant, recipe, make)

    def build(self, variant: str, recipe: Mapping[str, Any], make: Make) -> Path:
        """Make the variant in a temporary folder, write its manifest, and rename it into place."""
        target = self.folder(variant)
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{variant}-", dir=self.root))
        log.info("making the %s model of %s in %s (once; later starts reuse it)", variant, self.model, target)
        started = time.perf_counter()
        try:
            details = _made(make, scratch, f"the {variant} model of {self.model!r}")
            manifest = self._manifest(variant, recipe, details, scratch, time.perf_counter() - started)
            (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            _replace(scratch, target)
        except OSError as exc:
            raise EmbeddingError(f"cannot write the {variant} model of {self.model!r} to {target}: {exc}. "
                                 "Free some disk space or point RAG_EMBEDDING__CACHE_DIR at a writable folder") from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return target

    def _manifest(self, variant: str, recipe: Mapping[str, Any], details: Mapping[str, Any], folder: Path,
                  seconds: float) -> dict[str, Any]:
        files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
        return {"format": FORMAT, "model": self.model, "variant": variant, "source": str(self.source),
                "source_hash": self.source_hash, "source_stat": self.source_stat, "recipe": dict(recipe), **details,
                "files": files,
                "seconds": round(seconds, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _made(make: Make, folder: Path, what: str) -> Mapping[str, Any]:
    """Run a maker, turning any failure of the libraries it drives into one EmbeddingError."""
    try:
        return make(folder)
    except EmbeddingError:
        raise
    except Exception as exc:  # torch, onnx, onnxruntime, openvino and nncf each raise their own types
        raise EmbeddingError(f"cannot make {what}: {type(exc).__name__}: {exc}. Use "
                             "RAG_EMBEDDING__BACKEND=sentence-transformers meanwhile, and report the error") from exc


def _replace(scratch: Path, target: Path) -> None:
    """Move the finished folder into place; an old one is moved aside first and removed after."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}-{time.monotonic_ns()}")
        target.rename(old)
    try:
        scratch.rename(target)
    except OSError:
        if not (target / MANIFEST).is_file():  # not another process finishing the same model first
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def export_onnx(source: Path, folder: Path, *, file_name: str = "model.onnx") -> dict[str, Any]:
    """Export the source's transformer (no pooling) to ONNX with dynamic batch and sequence axes."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise EmbeddingError(f"exporting to ONNX needs torch and transformers: pip install transformers torch ({exc})"
                             ) from exc
    model = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()
    names = [n for n in ONNX_INPUTS if n in inspect.signature(model.forward).parameters]
    sample = {name: torch.ones((2, 8), dtype=torch.long) for name in names}
    sample["attention_mask"][0, 5:] = 0  # a padded row: the traced graph must apply the mask
    if "token_type_ids" in sample:
        sample["token_type_ids"].zero_()
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(_positional(model, names), tuple(sample[n] for n in names), str(folder / file_name),
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, external_data=False)
    return {"inputs": names, "output": "last_hidden_state", "opset": OPSET,
            "versions": library_versions("torch", "transformers", "onnx")}


def _positional(model: Any, names: list[str]) -> Any:
    """The transformer with positional inputs and one output (last_hidden_state), as the ONNX graph has them."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    return LastHiddenState()
