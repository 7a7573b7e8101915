"""The whole product on real components: sample corpus → MiniLM/FAISS → /ask over HTTP → real vLLM (CPU).

Starts the vLLM server exactly as `rag llm serve` does (its own venv under RAG_TEST_VLLM_HOME or
~/.cache/rag/vllm, installed and prepared on first use: minutes; cached afterwards).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import build_runtime
from rag.llm.server import VLLMServer
from rag.settings import Settings
from tests.conftest import running

pytestmark = [pytest.mark.slow, pytest.mark.vllm]


@pytest.fixture(scope="module")
def api(vllm: VLLMServer, sample_index: tuple[Path, object], shipped: object) -> Iterator[str]:
    settings = Settings(index={"dir": sample_index[0], "gpu": "off"},
                        llm={"base_url": vllm.base_url, "model": vllm.served_model_name, "timeout_s": 120,
                             "max_tokens": 160, "structured_output": "on"})
    with running(create_app(lambda: build_runtime(settings, embedder=shipped), keys=KeyRing.off())) as url:  # type: ignore[arg-type]
        yield url


def test_ask_through_real_vllm(api: str) -> None:
    reply = httpx.post(f"{api}/ask", json={"question": "How many days do I have to return an item?"}, timeout=300)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    print("\nanswer:", body["answer"], body["decision"], body["reason"], "\ntimings_ms:", body["timings_ms"])
    assert body["answer"].strip() and body["decision"] in ("answer", "escalate") and body["reason"]
    assert body["prompt"] == "answer@v2"
    assert body["model"] == "gemma-3-270m"
    assert body["citations"] and [c["n"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))
    retrieved = {c["source"] for c in body["citations"]}
    assert "policies/returns-policy-2025.md" in retrieved
    for marker in {int(m) for m in re.findall(r"\[(\d+)\]", body["answer"])}:
        if 1 <= marker <= len(body["citations"]):
            assert body["citations"][marker - 1]["cited"] is True
    assert body["timings_ms"]["generate"] > 0 and body["timings_ms"]["total"] >= body["timings_ms"]["retrieve"]


def test_stream_through_real_vllm(api: str) -> None:
    with httpx.stream("POST", f"{api}/ask", timeout=300,
                      json={"question": "How long does the Aurora X2 take to charge?", "stream": True}) as reply:
        assert reply.status_code == 200
        blocks = reply.read().decode().strip().split("\n\n")
    kinds = [b.split("\n")[0].removeprefix("event: ") for b in blocks]
    assert kinds[0] == "citations" and kinds[-1] == "done" and "delta" in kinds
    done = json.loads(blocks[-1].split("data: ", 1)[1])
    assert done["answer"] and done["timings_ms"]["first_token"] <= done["timings_ms"]["generate"]
    assert done["decision"] in ("answer", "escalate") and done["reason"]


def test_a_follow_up_is_rewritten_by_the_real_model_and_answered(api: str) -> None:
    first = httpx.post(f"{api}/ask", json={"question": "How bright is the Aurora X2 headlamp?"}, timeout=300).json()
    follow = httpx.post(f"{api}/ask", timeout=300, json={"question": "and how long does it take to charge?",
                                                          "conversation_id": first["conversation_id"]})
    assert follow.status_code == 200, follow.text
    body = follow.json()
    print("\nstandalone:", body["standalone_question"], "|", body["decision"], body["reason"], body["timings_ms"])
    assert body["conversation_id"] == first["conversation_id"] and body["timings_ms"]["condense"] > 0
    # the rewrite (or, when the tiny model answers instead, the fallback) keeps the product in the question
    assert "aurora" in body["standalone_question"].lower() and "charge" in body["standalone_question"].lower()
    assert any(c["source"].startswith("docs/aurora-x2") for c in body["citations"])


def test_the_openai_sdk_talks_to_the_service_backed_by_real_vllm(api: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{api}/v1", api_key="unused", timeout=300)
    assert [m.id for m in client.models.list().data] == ["rag"]
    completion = client.chat.completions.create(
        model="rag", messages=[{"role": "user", "content": "How many days do I have to return an item?"}])
    extra = completion.model_extra or {}
    print("\n/v1 answer:", completion.choices[0].message.content, "|", extra["rag"]["decision"])
    assert completion.choices[0].message.content and extra["rag"]["decision"] in ("answer", "escalate")
    assert extra["rag"]["citations"] and extra["rag"]["index_version"]
    pieces = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="rag", stream=True, messages=[{"role": "user", "content": "How many days do I have to return an item?"}])
        if c.choices]
    assert "".join(pieces).strip()
