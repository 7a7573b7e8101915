"""/ask over a real uvicorn on the real sample index (MiniLM + FAISS), scripted LLM."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import build_runtime
from rag.settings import Settings
from rag.testing import ScriptedOpenAIServer
from tests.conftest import running

pytestmark = pytest.mark.slow


def test_ask_cites_the_current_returns_policy(sample_index: tuple[Path, object], shipped: object,
                                               llm_server: ScriptedOpenAIServer) -> None:
    settings = Settings(index={"dir": sample_index[0], "gpu": "off"}, llm={"base_url": llm_server.base_url,
                                                                          "model": "scripted"})
    with running(create_app(lambda: build_runtime(settings, embedder=shipped), keys=KeyRing.off())) as url:  # type: ignore[arg-type]
        reply = httpx.post(f"{url}/ask", json={"question": "How many days do I have to return an item?",
                                               "filters": {"doc_type": ["policy"]}}, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    sources = [c["source"] for c in body["citations"]]
    assert "policies/returns-policy-2025.md" in sources[:3]
    assert all(c["doc_type"] == "policy" for c in body["citations"])
    assert body["timings_ms"]["retrieve"] < 5000
