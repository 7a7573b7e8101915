"""One real vLLM server (CPU, packaged gemma-3-270m) for every end-to-end test of the session.

Started as `rag llm serve` starts it (its own environment under RAG_TEST_VLLM_HOME or
~/.cache/rag/vllm, installed and prepared on first use: minutes; cached afterwards).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.llm.server import VLLMServer
from tests.conftest import free_port


@pytest.fixture(scope="session")
def vllm() -> Iterator[VLLMServer]:
    home = Path(os.environ.get("RAG_TEST_VLLM_HOME", "~/.cache/rag/vllm")).expanduser()
    server = VLLMServer(home=home, port=free_port(), startup_timeout_s=1500, echo=print)
    tick = time.perf_counter()
    with server:
        print(f"\nvLLM ready in {time.perf_counter() - tick:.1f} s")
        yield server
    assert not server.running
