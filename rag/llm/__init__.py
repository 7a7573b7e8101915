"""Language-model clients and the local vLLM server manager."""

from rag.llm.guard import GuardedLLM, is_server_fault
from rag.llm.openai_compatible import OpenAICompatibleLLM

__all__ = ["GuardedLLM", "OpenAICompatibleLLM", "is_server_fault"]
