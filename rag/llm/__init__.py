"""Language-model clients and the local vLLM server manager."""

from rag.llm.openai_compatible import OpenAICompatibleLLM

__all__ = ["OpenAICompatibleLLM"]
