"""`rag serve` on SIGTERM, as a process manager stops it: no new connections, the answers in flight (plain
and streamed) finish, and the process exits within RAG_API__SHUTDOWN_GRACE_S.

One scenario runs once (module fixture); each test checks one promise of it."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.load import Service, served
from rag.testing import ScriptedOpenAIServer

pytestmark = pytest.mark.slow

LLM_DELAY_S = 2.0
GRACE_S = 10
QUESTION = {"question": "How many days do I have to return an item?"}


@dataclass
class Reply:
    status: int
    body: Any  # /ask: the JSON answer; /ask/stream: the events as (type, data)
    at: float  # time.monotonic() when the last byte came


@dataclass
class Shutdown:
    signalled_at: float
    asked: Reply
    streamed: Reply
    newcomer: str  # what a new connection got after SIGTERM: "refused", or the status code
    exited_at: float
    returncode: int
    log: str


def ask(service: Service) -> Reply:
    with httpx.Client(headers=service.headers, timeout=30) as client:
        reply = client.post(f"{service.url}/ask", json=QUESTION)
        return Reply(reply.status_code, reply.json(), time.monotonic())


def ask_streamed(service: Service) -> Reply:
    events: list[tuple[str, Any]] = []
    with httpx.Client(headers=service.headers, timeout=30) as client, \
            client.stream("POST", f"{service.url}/ask/stream", json=QUESTION) as reply:
        kind = ""
        for line in reply.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
        return Reply(reply.status_code, events, time.monotonic())


def knock(service: Service) -> str:
    """A request on a new connection: "refused" when nothing listens any more, else its status."""
    try:
        with httpx.Client(headers=service.headers, timeout=5) as client:
            return str(client.post(f"{service.url}/ask", json=QUESTION).status_code)
    except httpx.ConnectError:
        return "refused"


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def in_flight(service: Service) -> int:
    return int(httpx.get(f"{service.url}/ready").json()["in_flight"])


@pytest.fixture(scope="module")
def shutdown(tiny_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Shutdown:
    """Two answers in flight behind a model that takes LLM_DELAY_S, then SIGTERM; what happened next."""
    scratch = tmp_path_factory.mktemp("shutdown")
    with ScriptedOpenAIServer(delay_s=LLM_DELAY_S) as llm, served(tiny_index, llm.base_url, scratch,
                                                                  grace_s=GRACE_S) as service:
        llm.fault = "slow"
        with ThreadPoolExecutor(max_workers=2) as pool:
            asked, streamed = pool.submit(ask, service), pool.submit(ask_streamed, service)
            wait_for(lambda: in_flight(service) == 2)
            signalled_at = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # uvicorn looks at its exit flag every 0.1 s
            newcomer = knock(service)
            returncode = service.process.wait(timeout=GRACE_S + 10)
            exited_at = time.monotonic()
            return Shutdown(signalled_at, asked.result(), streamed.result(), newcomer, exited_at, returncode,
                            service.log.read_text(encoding="utf-8"))


def test_an_answer_in_flight_completes(shutdown: Shutdown) -> None:
    assert shutdown.asked.status == 200, shutdown.asked.body
    assert "45 days" in shutdown.asked.body["answer"]
    assert shutdown.asked.at > shutdown.signalled_at


def test_a_stream_in_flight_completes_with_its_done_event(shutdown: Shutdown) -> None:
    kinds = [kind for kind, _ in shutdown.streamed.body]
    assert shutdown.streamed.status == 200
    assert kinds[0] == "citations" and kinds[-1] == "done" and "error" not in kinds
    assert "45 days" in shutdown.streamed.body[-1][1]["answer"]
    assert shutdown.streamed.at > shutdown.signalled_at


def test_a_new_connection_after_sigterm_is_turned_away(shutdown: Shutdown) -> None:
    assert shutdown.newcomer in ("refused", "503")


def test_the_process_exits_after_its_answers_within_the_grace_period(shutdown: Shutdown) -> None:
    took = shutdown.exited_at - shutdown.signalled_at
    print(f"\nSIGTERM -> answer done {shutdown.asked.at - shutdown.signalled_at:.2f} s, stream done "
          f"{shutdown.streamed.at - shutdown.signalled_at:.2f} s, process gone {took:.2f} s "
          f"(LLM delay {LLM_DELAY_S:g} s, grace {GRACE_S} s); return code {shutdown.returncode}")
    assert took < GRACE_S
    assert shutdown.exited_at > max(shutdown.asked.at, shutdown.streamed.at)
    assert "Application shutdown complete" in shutdown.log


def test_the_process_exits_with_status_zero(shutdown: Shutdown) -> None:
    """uvicorn re-raises the SIGTERM it caught once it has shut down; `rag serve` turns it into exit 0, so a
    process manager sees a clean stop, not a death by signal (143)."""
    assert shutdown.returncode == 0
