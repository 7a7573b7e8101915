"""Embedding backends, chosen by name through `rag.registry`."""

from rag.embedders.exported import ExportedEmbedder
from rag.embedders.hashing import HashEmbedder
from rag.embedders.onnx import OnnxEmbedder
from rag.embedders.openvino import OpenVINOEmbedder
from rag.embedders.sentence_transformer import SentenceTransformerEmbedder

__all__ = ["ExportedEmbedder", "HashEmbedder", "OnnxEmbedder", "OpenVINOEmbedder", "SentenceTransformerEmbedder"]
