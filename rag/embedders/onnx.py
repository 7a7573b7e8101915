"""The ONNX Runtime adapter: the only module that imports onnxruntime.

fp32 runs the transformer exported from the sentence-transformers folder (`rag.embedders.export`);
int8 is that model with its MatMul weights quantized per output channel to int8 and activations
quantized on the fly (`quantize_dynamic`). Of the variants measured on the sample corpus (per-tensor
or per-channel, QInt8 or QUInt8, MatMul only or every op, with or without pre-processing), per-channel
QInt8 on the MatMuls kept the vectors closest to fp32 (mean cosine 0.994, lowest 0.986; per-tensor
QInt8: 0.949 / 0.866). bench/results/embedders.md has the speed and retrieval quality.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.embedders.export import OPSET, export_onnx, library_versions
from rag.embedders.exported import ExportedEmbedder, Ids, Runner
from rag.errors import EmbeddingError

__all__ = ["INT8_RECIPE", "OnnxEmbedder", "onnx_fp32"]

MODEL_FILE = "model.onnx"
FP32_RECIPE: dict[str, Any] = {"export": "torch.onnx.export (TorchScript)", "opset": OPSET}
INT8_RECIPE: dict[str, Any] = {"method": "quantize_dynamic", "weight_type": "QInt8", "per_channel": True,
                               "reduce_range": False, "op_types": ["MatMul"]}


def onnx_fp32(embedder: ExportedEmbedder, *, rebuild: bool = False) -> Path:
    """The fp32 ONNX export of the embedder's model (made once), which every other variant starts from."""
    return embedder.cache.ensure("onnx-fp32", FP32_RECIPE, lambda folder: export_onnx(embedder.cache.source, folder),
                                 rebuild=rebuild)


class OnnxEmbedder(ExportedEmbedder):
    """Embeds with ONNX Runtime on the CPU: fp32, or int8 (dynamic quantization), `threads` intra-op threads."""

    backend, model_file, int8_recipe = "onnx", MODEL_FILE, INT8_RECIPE

    def _fp32_folder(self, *, rebuild: bool) -> Path:
        return onnx_fp32(self, rebuild=rebuild)

    def _quantize(self, source: Path, folder: Path) -> dict[str, Any]:
        return _quantize(source, folder)

    def session_options(self) -> Any:
        """ONNX Runtime's options: `threads` intra-op threads, one inter-op thread, every graph optimisation."""
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle workers sleep instead of spinning: on a few shared cores the spinning took the cores FAISS and
        # the web server needed (query p50 7.3 ms spinning vs 3.3 ms not, int8, 2 busy cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def _session(self, path: Path) -> Runner:
        ort = _onnxruntime()
        try:
            session = ort.InferenceSession(str(path), self.session_options(), providers=["CPUExecutionProvider"])
        except _errors(ort) as exc:
            raise EmbeddingError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        names = [i.name for i in session.get_inputs()]

        def run(feed: Mapping[str, Ids]) -> npt.NDArray[np.float32]:
            try:
                hidden = session.run(None, {name: feed[name] for name in names})[0]
            except _errors(ort) as exc:
                raise EmbeddingError(f"ONNX Runtime failed on {path}: {exc}") from exc
            return np.asarray(hidden, dtype=np.float32)

        return run


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise EmbeddingError("the onnx backend needs ONNX Runtime: pip install 'support-rag[onnx]'") from exc
    return onnxruntime


def _errors(ort: Any) -> tuple[type[BaseException], ...]:
    """ONNX Runtime's exception types (none derives from RuntimeError) plus the standard ones it raises."""
    state = ort.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "InvalidProtobuf", "NoSuchFile", "RuntimeException", "InvalidGraph",
             "NotImplemented", "EPFail", "NoModel", "EngineError", "ModelLoaded")
    return (RuntimeError, ValueError, OSError, *(getattr(state, n) for n in names if hasattr(state, n)))


def _quantize(source: Path, folder: Path) -> dict[str, Any]:
    """int8 weights (per channel) for the MatMuls, activations quantized at run time."""
    _onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_quantizer():
        quantize_dynamic(str(source), str(folder / MODEL_FILE), weight_type=QuantType.QInt8,
                         per_channel=INT8_RECIPE["per_channel"], reduce_range=INT8_RECIPE["reduce_range"],
                         op_types_to_quantize=INT8_RECIPE["op_types"])
    return {"from": "onnx-fp32", "opset": OPSET, "versions": library_versions("onnxruntime", "onnx")}


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Drop the quantizer's per-tensor notes, which it logs on the root logger (errors still pass)."""
    marker = f"onnxruntime{os.sep}quantization"

    def keep(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or marker not in record.pathname

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)
