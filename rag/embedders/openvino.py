"""The OpenVINO adapter: the only module that imports openvino and nncf.

fp32 is the ONNX export (`rag.embedders.onnx.onnx_fp32`) read by OpenVINO and saved as its IR, run with
inference precision forced to f32: on CPUs with bf16 (AVX512-BF16, AMX) OpenVINO would otherwise
compute in bf16. int8 is NNCF post-training quantization of that IR (weights and activations; the
transformer preset keeps the softmax and layer norms in float), calibrated on `CALIBRATION_TEXTS`.
Weight-only compression (`nncf.compress_weights`, INT8) kept the vectors closer (mean cosine 0.9994)
but ran no faster than fp32 (the weights are expanded back to f32 for the matmuls), so it is not used.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.embedders._calibration import CALIBRATION_TEXTS
from rag.embedders.export import library_versions
from rag.embedders.exported import ExportedEmbedder, Ids, Runner
from rag.embedders.onnx import MODEL_FILE as ONNX_FILE
from rag.embedders.onnx import onnx_fp32
from rag.errors import EmbeddingError

__all__ = ["INT8_RECIPE", "OpenVINOEmbedder"]

MODEL_FILE = "model.xml"
FP32_RECIPE: dict[str, Any] = {"from": "onnx-fp32", "compress_to_fp16": False}
INT8_RECIPE: dict[str, Any] = {"method": "nncf.quantize", "model_type": "TRANSFORMER", "preset": "PERFORMANCE",
                               "calibration_texts": len(CALIBRATION_TEXTS), "calibration_batch": 8}


class OpenVINOEmbedder(ExportedEmbedder):
    """Embeds with OpenVINO on the CPU: fp32, or int8 (static post-training quantization), `threads` threads."""

    backend, model_file, int8_recipe = "openvino", MODEL_FILE, INT8_RECIPE  # the IR's .xml, with its .bin

    def _fp32_folder(self, *, rebuild: bool) -> Path:
        return self.cache.ensure("openvino-fp32", FP32_RECIPE, lambda out: _convert(onnx_fp32(self) / ONNX_FILE, out),
                                 rebuild=rebuild)

    def compile_config(self) -> dict[str, Any]:
        """OpenVINO's CPU settings: `threads` threads (0 = its own choice), f32 arithmetic, one request at a time."""
        return {"INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}

    def _session(self, path: Path) -> Runner:
        ov = _openvino()
        try:
            compiled = ov.Core().compile_model(str(path), "CPU", self.compile_config())
        except (RuntimeError, ValueError, OSError) as exc:
            raise EmbeddingError(f"OpenVINO cannot load {path}: {exc}") from exc
        request = compiled.create_infer_request()
        names = [port.get_any_name() for port in compiled.inputs]

        def run(feed: Mapping[str, Ids]) -> npt.NDArray[np.float32]:
            try:
                hidden = request.infer({name: feed[name] for name in names})[0]
            except (RuntimeError, ValueError) as exc:
                raise EmbeddingError(f"OpenVINO failed on {path}: {exc}") from exc
            return np.asarray(hidden, dtype=np.float32)

        return run

    def _quantize(self, source: Path, folder: Path) -> dict[str, Any]:
        """Static int8 quantization of the fp32 IR, calibrated on the bundled texts."""
        ov = _openvino()
        import nncf

        batches = list(self._calibration_batches(INT8_RECIPE["calibration_batch"]))
        quantized = nncf.quantize(ov.Core().read_model(str(source)), nncf.Dataset(batches),
                                  model_type=nncf.ModelType.TRANSFORMER, preset=nncf.QuantizationPreset.PERFORMANCE,
                                  subset_size=len(batches))
        ov.save_model(quantized, str(folder / MODEL_FILE))
        return {"from": "openvino-fp32", "versions": library_versions("openvino", "nncf")}

    def _calibration_batches(self, size: int) -> Iterator[dict[str, Ids]]:
        texts = [self._prepared(t) for t in CALIBRATION_TEXTS]
        for start in range(0, len(texts), size):
            yield self._features(texts[start:start + size])


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise EmbeddingError("the openvino backend needs OpenVINO, a dependency of support-rag: pip install "
                             "'openvino>=2024.4' 'nncf>=2.13' 'onnx>=1.16'") from exc
    return openvino


def _convert(onnx_file: Path, folder: Path) -> dict[str, Any]:
    """The ONNX model as OpenVINO IR, weights kept in fp32."""
    ov = _openvino()
    ov.save_model(ov.Core().read_model(str(onnx_file)), str(folder / MODEL_FILE), compress_to_fp16=False)
    return {"from": "onnx-fp32", "versions": library_versions("openvino")}
