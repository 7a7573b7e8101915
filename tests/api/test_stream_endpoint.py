"""POST /ask/stream over a real uvicorn: the event order and contract, and a client hanging up
cancelling the LLM request (seen by the real scripted LLM server as a closed connection)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import build_runtime
from rag.settings import Settings
from rag.testing import Fault, ScriptedOpenAIServer, _pieces, structured_answer
from tests.conftest import running


@pytest.fixture(scope="module")
def servers(tiny_index: Path) -> Iterator[tuple[str, ScriptedOpenAIServer]]:
    with ScriptedOpenAIServer() as llm_server:
        settings = Settings(index={"dir": tiny_index, "gpu": "off"}, embedding={"backend": "hash", "model": "hash-64"},
                            llm={"base_url": llm_server.base_url, "model": "scripted", "timeout_s": 10.0},
                            answer={"min_relevance": 0.0})  # hash-embedding relevance means nothing
        with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
            yield url, llm_server


def events_of(text: str) -> list[tuple[str, dict[str, object]]]:
    blocks = [b for b in text.strip().split("\n\n") if b]
    return [(b.split("\n")[0].removeprefix("event: "), json.loads(b.split("data: ", 1)[1])) for b in blocks]


def test_stream_sends_citations_then_deltas_then_the_verified_answer(servers: tuple[str, ScriptedOpenAIServer]) -> None:
    url, _ = servers
    reply = httpx.post(f"{url}/ask/stream", json={"question": "How many lumens does the Aurora X2 give?"}, timeout=30)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = events_of(reply.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "citations" and kinds[-1] == "done" and "delta" in kinds
    done = events[-1][1]
    assert done["decision"] == "answer" and "650 lumens" in str(done["answer"]) and done["prompt"] == "answer@v2"
    assert done["citations"] and done["cited"] and "first_token" in done["timings_ms"]  # type: ignore[operator]


def test_bad_input_is_a_status_code_not_a_broken_stream(servers: tuple[str, ScriptedOpenAIServer]) -> None:
    url, _ = servers
    reply = httpx.post(f"{url}/ask/stream", json={"question": "x", "filters": {"effective_on": "soon"}}, timeout=30)
    assert reply.status_code == 422 and "effective_on" in reply.text


def test_a_client_hanging_up_cancels_the_llm_request(servers: tuple[str, ScriptedOpenAIServer]) -> None:
    url, llm_server = servers
    llm_server.inject(Fault.slow_stream(0.1))
    started = time.monotonic()
    with httpx.stream("POST", f"{url}/ask/stream", timeout=30,
                      json={"question": "How long does the Aurora X2 take to charge?"}) as reply:
        for line in reply.iter_lines():
            if line.startswith("event: delta"):
                break  # one token seen: hang up
    deadline = time.monotonic() + 5
    while not llm_server.abandoned and time.monotonic() < deadline:
        time.sleep(0.05)
    assert llm_server.abandoned, "the LLM server never saw the request go away"
    asked = llm_server.requests[-1]["messages"]
    whole = len(_pieces(structured_answer(asked[0]["content"], asked[-1]["content"]), exact=True))
    first_text = len(_pieces('{"answerable": true, "sentences": [{"text": "The', exact=True))  # JSON before any text
    # the server stopped within a few pieces of the first visible word, far from the end of the answer
    assert llm_server.abandoned[0] <= first_text + 4 < whole - 10 and time.monotonic() - started < 10
