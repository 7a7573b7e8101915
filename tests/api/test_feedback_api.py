"""POST /feedback over HTTP: thumbs up/down on an answer, stored apart from conversations and kept after they expire."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import build_runtime
from rag.feedback import Feedback, FeedbackStore
from rag.settings import Settings
from rag.testing import ScriptedOpenAIServer
from tests.api.test_api import settings_for
from tests.conftest import running


def stores_in(tmp_path: Path, settings: Settings, *, ttl_s: float = 3600.0) -> Settings:
    settings.conversations.path = tmp_path / "conversations.sqlite3"
    settings.conversations.ttl_s = ttl_s
    settings.feedback.path = tmp_path / "feedback.sqlite3"
    return settings


@pytest.fixture()
def api(tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path) -> Iterator[str]:
    settings = stores_in(tmp_path, settings_for(tiny_index, llm_server.base_url, timeout_s=2.0))
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
        yield url


def recorded(tmp_path: Path) -> list[Feedback]:
    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    try:
        return store.list()
    finally:
        store.close()


def test_a_thumbs_down_with_a_correction_stores_the_answer_it_rates(api: str, tmp_path: Path) -> None:
    first = httpx.post(f"{api}/ask", json={"question": "What does the Aurora X2 headlamp give?"}).json()
    chat = first["conversation_id"]
    follow = httpx.post(f"{api}/ask", json={"question": "how many hours does it need over USB-C?",
                                            "conversation_id": chat}).json()
    reply = httpx.post(f"{api}/feedback", json={
        "conversation_id": chat, "rating": "down", "comment": "It takes 4 hours, say so plainly.",
        "correction": "About 4 hours over USB-C."})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert isinstance(body["id"], int)
    assert body | {"id": 0} == {"id": 0, "conversation_id": chat, "turn": 2, "rating": "down",
                                "answer_id": follow["answer_id"], "question": "how many hours does it need over USB-C?"}
    [record] = recorded(tmp_path)
    assert record.id == body["id"] and record.turn == 2
    assert (record.question, record.answer) == ("how many hours does it need over USB-C?", follow["answer"])
    assert record.standalone == follow["standalone_question"]
    assert record.decision == follow["decision"] and record.index_version == follow["index_version"]
    assert record.sources == tuple(c["source"] for c in follow["citations"] if c["cited"]) == ("docs/aurora.md",)
    assert [(t.question, t.answer) for t in record.earlier] == [
        ("What does the Aurora X2 headlamp give?", first["answer"])]
    assert (record.comment, record.correction) == ("It takes 4 hours, say so plainly.",
                                                   "About 4 hours over USB-C.")


def test_an_earlier_turn_and_a_streamed_answer_can_be_rated(api: str, tmp_path: Path) -> None:
    httpx.post(f"{api}/ask", json={"question": "How fast is standard shipping?", "conversation_id": "chat-s"})
    with httpx.stream("POST", f"{api}/ask/stream", json={"question": "and is it free?",
                                                        "conversation_id": "chat-s"}) as reply:
        done = json.loads(reply.read().decode().strip().split("\n\n")[-1].split("data: ", 1)[1])
    up = httpx.post(f"{api}/feedback", json={"conversation_id": "chat-s", "turn": 1, "rating": "up"})
    down = httpx.post(f"{api}/feedback", json={"conversation_id": "chat-s", "rating": "down"})
    assert (up.status_code, up.json()["turn"], down.status_code, down.json()["turn"]) == (201, 1, 201, 2)
    first, second = recorded(tmp_path)
    assert first.question == "How fast is standard shipping?" and first.earlier == ()
    assert second.answer == done["answer"] and second.index_version == done["index_version"]
    assert second.sources == ("policies/shipping.txt",)


def test_an_unknown_conversation_is_a_404_that_says_to_rate_within_the_ttl(api: str) -> None:
    reply = httpx.post(f"{api}/feedback", json={"conversation_id": "never-asked", "rating": "down"})
    assert reply.status_code == 404
    error = reply.json()["error"]
    assert error["type"] == "not_found"
    assert "'never-asked' is unknown or has expired: send feedback within 1 hour" in error["message"]
    assert "RAG_CONVERSATIONS__TTL_S" in error["message"]


def test_a_turn_out_of_range_is_a_404_that_names_the_turns(api: str) -> None:
    httpx.post(f"{api}/ask", json={"question": "How fast is standard shipping?", "conversation_id": "chat-1"})
    reply = httpx.post(f"{api}/feedback", json={"conversation_id": "chat-1", "turn": 5, "rating": "down"})
    assert reply.status_code == 404
    assert "has no turn 5 (its answers are turns 1 to 1)" in reply.json()["error"]["message"]


def test_an_answer_is_rated_by_the_answer_id_ask_returned(api: str, tmp_path: Path) -> None:
    first = httpx.post(f"{api}/ask", json={"question": "How fast is standard shipping?"}).json()
    second = httpx.post(f"{api}/ask", json={"question": "What does the Aurora X2 headlamp give?",
                                            "conversation_id": first["conversation_id"]}).json()
    assert first["answer_id"] != second["answer_id"]
    reply = httpx.post(f"{api}/feedback", json={"answer_id": first["answer_id"], "rating": "up", "comment": "clear"})
    assert reply.status_code == 201, reply.text
    assert reply.json()["turn"] == 1 and reply.json()["question"] == "How fast is standard shipping?"
    [record] = recorded(tmp_path)
    assert (record.answer_id, record.turn, record.answer) == (first["answer_id"], 1, first["answer"])
    unknown = httpx.post(f"{api}/feedback", json={"answer_id": "f" * 32, "rating": "down"})
    assert unknown.status_code == 404 and "unknown or has expired" in unknown.json()["error"]["message"]


def test_a_streamed_answer_carries_its_answer_id_in_done(api: str, tmp_path: Path) -> None:
    with httpx.stream("POST", f"{api}/ask/stream", json={"question": "How fast is standard shipping?"}) as reply:
        blocks = reply.read().decode().strip().split("\n\n")
    done = json.loads(blocks[-1].split("data: ", 1)[1])
    assert blocks[-1].startswith("event: done") and len(done["answer_id"]) == 32
    rated = httpx.post(f"{api}/feedback", json={"answer_id": done["answer_id"], "rating": "down"})
    assert rated.status_code == 201 and recorded(tmp_path)[0].answer == done["answer"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"conversation_id": "chat-1", "rating": "meh"}, "rating: Input should be 'up' or 'down'"),
    ({"rating": "down"}, "name the answer rated by answer_id (from /ask), or by conversation_id"),
    ({"answer_id": "0" * 32, "conversation_id": "chat-1", "rating": "up"}, "not both and not neither"),
    ({"answer_id": "0" * 32, "turn": 1, "rating": "up"}, "turn goes with conversation_id"),
    ({"answer_id": "../etc/passwd", "rating": "up"}, "answer_id: String should match pattern"),
    ({"conversation_id": "no spaces", "rating": "down"}, "conversation_id: String should match pattern"),
    ({"conversation_id": "chat-1", "rating": "down", "turn": 0}, "turn: Input should be greater than or equal to 1"),
    ({"conversation_id": "chat-1", "rating": "down", "comment": "x" * 2001}, "comment: String should have at most 2000"),
    ({"conversation_id": "chat-1", "rating": "down", "correction": "x" * 4001}, "correction: String should have at most"),
    ({"conversation_id": "chat-1", "rating": "down", "stars": 5}, "stars: Extra inputs are not permitted"),
])
def test_a_bad_body_is_a_422_naming_the_field(api: str, body: dict[str, object], fragment: str) -> None:
    reply = httpx.post(f"{api}/feedback", json=body)
    assert reply.status_code == 422
    assert reply.json()["error"]["type"] == "invalid_request" and fragment in reply.json()["error"]["message"]


def test_feedback_outlives_the_conversation_it_rates(
    tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path,
) -> None:
    settings = stores_in(tmp_path, settings_for(tiny_index, llm_server.base_url, timeout_s=2.0), ttl_s=1.0)
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as api:
        httpx.post(f"{api}/ask", json={"question": "How many days do I have to return an item?",
                                       "conversation_id": "chat-x"})
        assert httpx.post(f"{api}/feedback", json={"conversation_id": "chat-x", "rating": "down",
                                                   "comment": "too short"}).status_code == 201
        time.sleep(1.2)
        late = httpx.post(f"{api}/feedback", json={"conversation_id": "chat-x", "rating": "down"})
        assert late.status_code == 404 and "within 1 second " in late.json()["error"]["message"]
        httpx.post(f"{api}/ask", json={"question": "How fast is standard shipping?"})  # a write purges chat-x
    with sqlite3.connect(tmp_path / "conversations.sqlite3") as talk:
        assert talk.execute("SELECT COUNT(*) FROM turns WHERE conversation = 'chat-x'").fetchone()[0] == 0
    [record] = recorded(tmp_path)
    assert (record.conversation_id, record.comment) == ("chat-x", "too short")
    assert "45 days" in record.answer and record.sources == ("policies/returns.md",)


def test_openapi_documents_the_route_with_examples_and_errors(api: str) -> None:
    spec = httpx.get(f"{api}/openapi.json").json()
    route = spec["paths"]["/feedback"]["post"]
    assert route["summary"].startswith("Rate an answer")
    assert {"201", "404", "422", "503"} <= set(route["responses"])
    assert "RAG_CONVERSATIONS__TTL_S" in json.dumps(route["responses"]["404"])
    request = spec["components"]["schemas"]["FeedbackRequest"]
    assert request["examples"][0]["rating"] == "down" and "correction" in request["examples"][0]
    assert httpx.get(f"{api}/health").json()["status"] == "ok"
