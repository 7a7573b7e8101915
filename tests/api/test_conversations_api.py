"""Follow-up questions over HTTP: conversation ids, persisted histories, rewritten questions, clarify."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import build_runtime
from rag.testing import ScriptedOpenAIServer
from tests.api.test_api import settings_for
from tests.conftest import running


@pytest.fixture()
def api(tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path) -> Iterator[str]:
    settings = settings_for(tiny_index, llm_server.base_url, timeout_s=2.0)
    settings.conversations.path = tmp_path / "conversations.sqlite3"
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
        yield url


def test_every_answer_opens_a_conversation_and_a_follow_up_is_read_in_its_light(
    api: str, llm_server: ScriptedOpenAIServer,
) -> None:
    first = httpx.post(f"{api}/ask", json={"question": "What does the Aurora X2 headlamp give?"}).json()
    assert first["conversation_id"] and first["standalone_question"] == ""
    follow = httpx.post(f"{api}/ask", json={"question": "how many hours does it need over USB-C?",
                                            "conversation_id": first["conversation_id"]}).json()
    assert follow["conversation_id"] == first["conversation_id"]
    # the scripted model rewrites "<follow-up>, regarding: <previous question>": retrieval saw that
    assert follow["standalone_question"] == (
        "how many hours does it need over USB-C, regarding: What does the Aurora X2 headlamp give?")
    condense = llm_server.requests[-2]["messages"]
    assert "Customer: What does the Aurora X2 headlamp give?" in condense[0]["content"]
    assert f"Assistant: {first['answer']}" in condense[0]["content"]
    assert follow["citations"][0]["source"] == "docs/aurora.md" and "4 hours" in follow["answer"]
    assert follow["timings_ms"]["condense"] > 0


def test_a_chosen_id_keeps_its_history_and_other_ids_do_not_see_it(api: str, llm_server: ScriptedOpenAIServer) -> None:
    httpx.post(f"{api}/ask", json={"question": "How fast is standard shipping?", "conversation_id": "chat-1"})
    other = httpx.post(f"{api}/ask", json={"question": "and returns?", "conversation_id": "chat-2"}).json()
    assert other["standalone_question"] == "" and other["conversation_id"] == "chat-2"
    again = httpx.post(f"{api}/ask", json={"question": "and returns?", "conversation_id": "chat-1"}).json()
    assert again["standalone_question"].endswith("regarding: How fast is standard shipping?")


def test_a_bad_conversation_id_is_a_clear_422(api: str) -> None:
    reply = httpx.post(f"{api}/ask", json={"question": "hi", "conversation_id": "no spaces allowed"})
    assert reply.status_code == 422 and "conversation_id" in reply.json()["error"]["message"]


def test_a_streamed_answer_joins_the_conversation_too(api: str) -> None:
    with httpx.stream("POST", f"{api}/ask", json={"question": "How fast is standard shipping?", "stream": True,
                                                 "conversation_id": "chat-s"}) as reply:
        blocks = reply.read().decode().strip().split("\n\n")
    done = json.loads(blocks[-1].split("data: ", 1)[1])
    assert done["conversation_id"] == "chat-s"
    follow = httpx.post(f"{api}/ask", json={"question": "and to Canada?", "conversation_id": "chat-s"}).json()
    assert follow["standalone_question"].endswith("regarding: How fast is standard shipping?")


def test_sentence_streaming_over_http_sends_whole_sentences(api: str) -> None:
    with httpx.stream("POST", f"{api}/ask/stream", json={"question": "How many days do I have to return an item?",
                                                        "stream_unit": "sentence"}) as reply:
        blocks = reply.read().decode().strip().split("\n\n")
    deltas = [json.loads(b.split("data: ", 1)[1])["text"] for b in blocks if b.startswith("event: delta")]
    done = json.loads(blocks[-1].split("data: ", 1)[1])
    assert deltas and "".join(deltas) == done["answer"] and done["answer"].endswith("[1]")
