"""The service under faults, over real HTTP: an LLM server returning 500s, timing out, trickling a stream,
killed mid-stream, and coming back; a full disk under the feedback store. Each with its expected outcome."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.api.limits import RateLimiter
from rag.factory import build_runtime
from rag.settings import ApiSettings, Settings
from rag.testing import Fault, ScriptedOpenAIServer
from tests.api.test_api import settings_for
from tests.conftest import free_port, running

QUESTION = {"question": "How long is the return window?"}


def guarded(index: Path, llm_url: str, tmp_path: Path, **answer: object) -> Settings:
    """Short timeouts and a 3-fault breaker, so that each fault shows in a second or two. The hash embedder's
    relevance means nothing: no relevance floor, so the extractive answer quotes the top passages by rank."""
    settings = settings_for(index, llm_url, timeout_s=1.0, deadline_s=1.5, breaker_failures=3, breaker_reset_s=0.5,
                            retry_backoff_s=0.05)
    settings.answer = settings.answer.model_copy(update={"min_relevance": 0.0, **answer})
    settings.conversations.path, settings.feedback.path = tmp_path / "talk.sqlite3", tmp_path / "feedback.sqlite3"
    return settings


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    app = create_app(lambda: build_runtime(settings), keys=KeyRing.off(), api=ApiSettings(ready_cache_s=0),
                     limiter=RateLimiter(rate_per_minute=1e9, burst=10**6))
    with running(app) as url:
        yield url


def events(url: str, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    """The SSE events of one /ask/stream call, as (type, data)."""
    with httpx.stream("POST", f"{url}/ask/stream", json=body, timeout=30) as reply:
        assert reply.status_code == 200
        text = reply.read().decode()
    parsed = []
    for block in text.strip().split("\n\n"):
        kind, data = block.split("\n", 1)
        parsed.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return parsed


def test_repeated_500s_open_the_circuit_and_it_closes_when_the_server_is_back(
        tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path) -> None:
    with serve(guarded(tiny_index, llm_server.base_url, tmp_path)) as url:
        llm_server.fault = "error"  # every chat request: HTTP 500
        first = [httpx.post(f"{url}/ask", json=QUESTION, timeout=30) for _ in range(3)]
        assert [r.status_code for r in first] == [502, 502, 502]
        sent = len(llm_server.requests)
        tick = time.perf_counter()
        refused = httpx.post(f"{url}/ask", json=QUESTION, timeout=30)
        refused_s = time.perf_counter() - tick
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "llm_unavailable"
        assert "3 times in a row" in refused.json()["error"]["message"]
        assert len(llm_server.requests) == sent  # refused without a call to the server
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 503 and ready.json()["llm_circuit"] == "open"
        llm_server.fault = None  # the server is back
        time.sleep(0.6)  # breaker_reset_s: the next call is the trial
        back = httpx.post(f"{url}/ask", json=QUESTION, timeout=30)
        assert back.status_code == 200 and back.json()["decision"] == "answer"
        ready = httpx.get(f"{url}/ready")
        assert ready.status_code == 200 and ready.json()["llm_circuit"] == "closed"
    print(f"\nopen circuit: /ask refused in {refused_s * 1000:.1f} ms over HTTP")


def test_with_extractive_answers_a_dead_llm_gets_cited_passages_then_recovers(tiny_index: Path, tmp_path: Path) -> None:
    port = free_port()
    settings = guarded(tiny_index, f"http://127.0.0.1:{port}/v1", tmp_path, on_llm_failure="extractive")
    with serve(settings) as url:
        reply = httpx.post(f"{url}/ask", json=QUESTION, timeout=30)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["decision"] == "escalate" and "language model is unavailable" in body["reason"]
        assert body["answer"].startswith("I can't answer that") and "45 days" in body["answer"]
        assert any(c["cited"] and c["source"] == "policies/returns.md" for c in body["citations"])
        streamed = events(url, QUESTION)
        assert streamed[0][0] == "citations" and streamed[-1][0] == "done"
        assert streamed[-1][1]["decision"] == "escalate" and "45 days" in str(streamed[-1][1]["answer"])
        ready = httpx.get(f"{url}/ready").json()
        assert ready["status"] == "ready" and ready["degraded"] is True and ready["llm_reachable"] is False
        with ScriptedOpenAIServer(port=port):  # the LLM server comes back on its address
            time.sleep(0.6)
            back = httpx.post(f"{url}/ask", json=QUESTION, timeout=30).json()
            assert back["decision"] == "answer" and back["answer"].endswith("[1]")
            assert httpx.get(f"{url}/ready").json()["degraded"] is False


def test_a_stream_trickling_past_the_deadline_ends_with_a_timeout_event(
        tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path) -> None:
    with serve(guarded(tiny_index, llm_server.base_url, tmp_path)) as url:
        llm_server.inject(Fault.slow_stream(0.4))  # each token within the read timeout; the whole past the deadline
        tick = time.perf_counter()
        streamed = events(url, {**QUESTION, "stream_unit": "token"})
        elapsed = time.perf_counter() - tick
    kind, data = streamed[-1]
    assert kind == "error" and data["type"] == "llm_timeout" and data["status"] == 504
    assert "RAG_LLM__DEADLINE_S" in str(data["message"])
    assert elapsed < 5.0  # deadline 1.5 s: bounded, never a hang


def test_a_stream_trickling_past_the_deadline_is_answered_extractively_when_configured(
        tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path) -> None:
    with serve(guarded(tiny_index, llm_server.base_url, tmp_path, on_llm_failure="extractive")) as url:
        llm_server.inject(Fault.slow_stream(0.4))
        streamed = events(url, QUESTION)
    kind, data = streamed[-1]
    assert kind == "done" and data["decision"] == "escalate" and "45 days" in str(data["answer"])


def test_an_llm_killed_mid_stream_is_an_error_event_or_an_extractive_answer(
        tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path) -> None:
    with serve(guarded(tiny_index, llm_server.base_url, tmp_path)) as url:
        llm_server.inject(Fault.drop_stream_after(2))
        kind, data = events(url, QUESTION)[-1]
        assert kind == "error" and data["status"] == 502 and "closed the stream after" in str(data["message"])
    with serve(guarded(tiny_index, llm_server.base_url, tmp_path, on_llm_failure="extractive")) as url:
        llm_server.inject(Fault.drop_stream_after(2))
        streamed = events(url, QUESTION)
        kind, data = streamed[-1]
        assert kind == "done" and data["decision"] == "escalate" and "45 days" in str(data["answer"])
        shown = "".join(str(d["text"]) for k, d in streamed if k == "delta")
        assert shown.endswith(str(data["answer"]))  # whatever was streamed, the reader ends with the final text


def test_a_slow_llm_is_a_504_within_the_timeout(tiny_index: Path, llm_server: ScriptedOpenAIServer,
                                                tmp_path: Path) -> None:
    with serve(guarded(tiny_index, llm_server.base_url, tmp_path)) as url:
        llm_server.inject(Fault.delay(10))
        tick = time.perf_counter()
        reply = httpx.post(f"{url}/ask", json=QUESTION, timeout=30)
        assert reply.status_code == 504 and time.perf_counter() - tick < 5.0


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB filesystem (tmpfs), where a full disk is a full disk; skipped where mounting is not allowed
    (tests/rag/test_feedback.py fills a database with SQLite's page limit everywhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here (needs root); the SQLite page-limit test covers it")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_refuses_feedback_with_507_and_loses_nothing(
        tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path, tiny_disk: Path) -> None:
    settings = guarded(tiny_index, llm_server.base_url, tmp_path)
    settings.feedback.path = tiny_disk / "feedback.sqlite3"
    with serve(settings) as url:
        answer = httpx.post(f"{url}/ask", json=QUESTION).json()
        rate = {"answer_id": answer["answer_id"], "rating": "down", "comment": "x" * 1500}
        assert httpx.post(f"{url}/feedback", json=rate).status_code == 201
        filler = tiny_disk / "filler"
        try:
            with filler.open("wb") as handle:  # take every byte left
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
        except OSError:
            pass
        full = httpx.post(f"{url}/feedback", json={**rate, "correction": "y" * 4000})
        assert full.status_code == 507, full.text
        assert full.json()["error"]["type"] == "storage_error"
        assert "disk is full" in full.json()["error"]["message"] and "intact" in full.json()["error"]["message"]
        assert httpx.post(f"{url}/ask", json=QUESTION).status_code == 200  # answering goes on
        filler.unlink()  # space freed: feedback works again, without a restart
        assert httpx.post(f"{url}/feedback", json=rate).status_code == 201
        export = httpx.get(f"{url}/admin/feedback").text.splitlines()
    assert len(export) == 2 and all(json.loads(line)["comment"] == "x" * 1500 for line in export)
