"""Deterministic fakes for fast tests and fault injection (shipped, like httpx's MockTransport).

- `ScriptedLLM`: an in-process `LLMClient` that answers from the passages it is given.
- `ScriptedOpenAIServer`: a real HTTP server on localhost speaking the OpenAI chat API
  (plain and streamed), with switchable faults: errors, delays, dropped connections.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rag.types import Message

__all__ = ["ScriptedLLM", "ScriptedOpenAIServer", "extractive_answer"]

_WORD = re.compile(r"\w{3,}")
_PASSAGE = re.compile(r"^\[(\d+)\] \(.*?\)\n(.+?)(?:\n\n\[\d+\] \(|\Z)", re.MULTILINE | re.DOTALL)


def extractive_answer(system_prompt: str, question: str = "") -> str:
    """The sentence of passage [1] sharing most words with the question, cited as [1].

    With no passages, the refusal the prompt asks for.
    """
    match = _PASSAGE.search(system_prompt)
    if match is None:
        return "I can't answer that from our documentation; let me connect you with a person."
    body = "\n".join(match.group(2).splitlines()[1:]) or match.group(2)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?。])\s+|\n", body) if s.strip()]
    words = set(_WORD.findall(question.lower()))
    best = max(sentences, key=lambda s: len(words & set(_WORD.findall(s.lower()))))
    return f"{best} [{match.group(1)}]"


@dataclass
class ScriptedLLM:
    """Answers extractively; records every call for assertions."""

    model: str = "scripted"
    calls: list[list[Message]] = field(default_factory=list)

    async def complete(self, messages: Sequence[Message]) -> str:
        self.calls.append(list(messages))
        return extractive_answer(messages[0].content, messages[-1].content)

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        text = await self.complete(messages)
        for word in text.split(" "):
            yield word + " "

    async def aclose(self) -> None:
        return None


class ScriptedOpenAIServer:
    """A real OpenAI-compatible HTTP server on 127.0.0.1; set `fault` to inject failures.

    fault: None | "error" (HTTP 500) | "slow" (sleeps `delay_s` first) | "drop" (closes the socket)
    """

    def __init__(self, *, model: str = "scripted", delay_s: float = 0.0) -> None:
        self.model = model
        self.fault: str | None = None
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(server: ScriptedOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            server.requests.append(body)
            if server.fault == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if server.fault == "slow":
                time.sleep(server.delay_s)
            if server.fault == "error":
                self._json(500, {"error": {"message": "scripted failure", "type": "server_error"}})
                return
            if body.get("model") != server.model:
                self._json(404, {"error": {"message": f"model {body.get('model')} not found"}})
                return
            text = extractive_answer(body["messages"][0]["content"], body["messages"][-1]["content"])
            self._stream(text) if body.get("stream") else self._json(200, _completion(server.model, text))

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, text: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for word in text.split(" "):
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": server.model,
                         "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.close_connection = True

    return Handler


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
