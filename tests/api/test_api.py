"""The HTTP API over a real uvicorn on localhost, with a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import build_runtime
from rag.settings import Settings
from rag.testing import ScriptedOpenAIServer
from tests.conftest import free_port, running


def settings_for(index: Path, llm_url: str, **llm: object) -> Settings:
    return Settings(index={"dir": index}, embedding={"backend": "hash", "model": "hash-64"},
                    llm={"base_url": llm_url, "model": "scripted", **llm})


@pytest.fixture()
def api(tiny_index: Path, llm_server: ScriptedOpenAIServer) -> Iterator[str]:
    settings = settings_for(tiny_index, llm_server.base_url, timeout_s=2.0)
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
        yield url


def test_ask_answers_with_citations_mapped_to_sources(api: str) -> None:
    reply = httpx.post(f"{api}/ask", json={"question": "How many days do I have to return an item?"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["answer"].endswith("[1]")
    assert body["model"] == "scripted"
    assert body["index_version"]
    first = body["citations"][0]
    assert first["n"] == 1 and first["cited"] is True
    assert first["source"] == "policies/returns.md"
    assert "45 days" in body["answer"]
    assert [c["n"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))
    assert {"retrieve", "generate", "total"} <= set(body["timings_ms"])


def test_filters_restrict_sources(api: str) -> None:
    reply = httpx.post(f"{api}/ask", json={"question": "kettle does not heat", "filters": {"doc_type": ["ticket"]}})
    assert reply.status_code == 200
    citations = reply.json()["citations"]
    assert citations and all(c["doc_type"] == "ticket" for c in citations)
    assert citations[0]["source"] == "tickets/tickets.jsonl#T-1"


def test_top_k_limits_passages(api: str) -> None:
    reply = httpx.post(f"{api}/ask", json={"question": "shipping", "top_k": 2})
    assert len(reply.json()["citations"]) == 2


def test_stream_sends_citations_deltas_then_done(api: str) -> None:
    with httpx.stream("POST", f"{api}/ask", json={"question": "How fast is standard shipping?", "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [(block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\ndata: ")[1]))
                  for block in r.read().decode().strip().split("\n\n")]
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "citations" and kinds[-1] == "done" and set(kinds[1:-1]) == {"delta"}
    text = "".join(data["text"] for kind, data in events if kind == "delta").strip()
    assert text == events[-1][1]["answer"]
    assert events[-1][1]["cited"] == [1]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "question is empty"),
        ({"question": "x" * 2001}, "limit is 2000"),
        ({"question": "ok", "top_k": 0}, "top_k"),
        ({"question": "ok", "top_k": 50}, "top_k must be between 1 and 20"),
        ({"question": "ok", "filters": {"doc_type": ["memo"]}}, "doc_type"),
        ({"question": "ok", "colour": "red"}, "colour"),
        ({}, "question"),
    ],
)
def test_bad_input_gets_422_with_a_message(api: str, body: dict[str, object], fragment: str) -> None:
    reply = httpx.post(f"{api}/ask", json=body)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["type"] == "invalid_request"
    assert fragment in error["message"]


def test_invalid_json_gets_422(api: str) -> None:
    reply = httpx.post(f"{api}/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 422
    assert "error" in reply.json()


def test_llm_down_gives_503_with_the_fix(tiny_index: Path) -> None:
    settings = settings_for(tiny_index, f"http://127.0.0.1:{free_port()}/v1")
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
        reply = httpx.post(f"{url}/ask", json={"question": "return window?"}, timeout=30)
        ready = httpx.get(f"{url}/ready")
        alive = httpx.get(f"{url}/health")
    assert reply.status_code == 503
    assert reply.json()["error"]["type"] == "llm_unavailable"
    assert "rag llm serve" in reply.json()["error"]["message"]
    assert ready.status_code == 503 and ready.json()["llm_reachable"] is False
    assert "LLM server is not answering" in ready.json()["reasons"][0] and ready.json()["index_version"]
    assert alive.status_code == 200 and alive.json()["status"] == "ok"  # alive, though not ready


def test_llm_error_gives_502(api: str, llm_server: ScriptedOpenAIServer) -> None:
    llm_server.fault = "error"
    reply = httpx.post(f"{api}/ask", json={"question": "return window?"})
    assert reply.status_code == 502
    assert "500" in reply.json()["error"]["message"]


def test_slow_llm_gives_504_not_a_hang(api: str, llm_server: ScriptedOpenAIServer) -> None:
    llm_server.fault, llm_server.delay_s = "slow", 5.0
    reply = httpx.post(f"{api}/ask", json={"question": "return window?"}, timeout=30)
    assert reply.status_code == 504
    assert reply.json()["error"]["type"] == "llm_timeout"


def test_stream_reports_llm_failure_as_an_error_event(api: str, llm_server: ScriptedOpenAIServer) -> None:
    llm_server.fault = "error"
    with httpx.stream("POST", f"{api}/ask", json={"question": "return window?", "stream": True}) as r:
        blocks = r.read().decode().strip().split("\n\n")
    assert blocks[0].startswith("event: citations")
    assert blocks[-1].startswith("event: error") and '"status": 502' in blocks[-1]


def test_missing_index_gives_503_on_ask_and_ready(tmp_path: Path, llm_server: ScriptedOpenAIServer) -> None:
    settings = settings_for(tmp_path / "nowhere", llm_server.base_url)
    with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
        ask = httpx.post(f"{url}/ask", json={"question": "hello?"})
        ready = httpx.get(f"{url}/ready")
        alive = httpx.get(f"{url}/health")
    assert ask.status_code == 503
    assert ask.json()["error"] == {"type": "index_unavailable", "message": ask.json()["error"]["message"]}
    assert "run `rag ingest" in ask.json()["error"]["message"]
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert "rag ingest" in ready.json()["reasons"][0]
    assert alive.status_code == 200


def test_ready_health_and_openapi(api: str) -> None:
    ready = httpx.get(f"{api}/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["chunks"] > 0 and body["llm_reachable"] is True
    assert body["llm_circuit"] == "closed" and body["reasons"] == []
    assert httpx.get(f"{api}/health").json()["status"] == "ok"
    schema = httpx.get(f"{api}/openapi.json").json()
    assert "/ask" in schema["paths"] and "503" in schema["paths"]["/ask"]["post"]["responses"]
    assert httpx.get(f"{api}/docs").status_code == 200
