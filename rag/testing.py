"""Deterministic fakes for fast tests and fault injection (shipped, like httpx's MockTransport).

- `ScriptedLLM`: an in-process `LLMClient` that answers from the passages it is given.
- `ScriptedOpenAIServer`: a real HTTP server on localhost speaking the OpenAI chat API
  (plain and streamed), with scripted faults: a queue of `Fault`s, one per request.

Both honour a JSON schema as vLLM's guided decoding does: asked for one (`schema=`, or a
`response_format` of type `json_schema`), they answer `structured_answer`'s JSON, streamed in
small pieces that split words, escapes and JSON syntax alike. The server reports `usage` as vLLM
does (in a stream, in a last chunk when `stream_options.include_usage` asks): the prompt's words as
prompt tokens, the reply's pieces as completion tokens.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rag.types import Message

__all__ = ["Fault", "ScriptedLLM", "ScriptedOpenAIServer", "extractive_answer", "structured_answer"]

_LAST_CUSTOMER = re.compile(r"^Customer: (.*)$", re.MULTILINE)
_WORD = re.compile(r"\w{3,}")
_CITED = re.compile(r"(.+) \[(\d+)\]", re.DOTALL)
_PIECE = re.compile(r"\s+|\w+|[^\w\s]")  # token-like pieces of an exact reply: they rebuild it character for character
_PASSAGE = re.compile(r"^\[(\d+)\] \(.*?\)\n(.+?)(?:\n\n\[\d+\] \(|\Z)", re.MULTILINE | re.DOTALL)


def extractive_answer(system_prompt: str, question: str = "") -> str:
    """The sentence of passage [1] sharing most words with the question, cited as [1].

    With no passages, the refusal the prompt asks for. Asked to rewrite a follow-up (the condense
    prompt: a quoted "Conversation:"), "<follow-up>, regarding: <the customer's last question>".
    """
    asked = _LAST_CUSTOMER.findall(system_prompt) if "\nConversation:\n" in system_prompt else []
    if asked:
        return f"{question.strip().rstrip('?')}, regarding: {asked[-1].strip()}"
    match = _PASSAGE.search(system_prompt)
    if match is None:
        return "I can't answer that from our documentation; let me connect you with a person."
    body = "\n".join(match.group(2).splitlines()[1:]) or match.group(2)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?。])\s+|\n", body) if s.strip()]
    words = set(_WORD.findall(question.lower()))
    best = max(sentences, key=lambda s: len(words & set(_WORD.findall(s.lower()))))
    return f"{best} [{match.group(1)}]"


def structured_answer(system_prompt: str, question: str = "") -> str:
    """`extractive_answer` as JSON following `rag.answer_format.answer_schema`: one cited sentence, or a refusal."""
    cited = _CITED.fullmatch(extractive_answer(system_prompt, question))
    if cited is None:
        return json.dumps({"answerable": False, "sentences": []})
    sentence = {"text": cited.group(1), "citations": [int(cited.group(2))]}
    return json.dumps({"answerable": True, "sentences": [sentence]}, ensure_ascii=False)


def _pieces(text: str, *, exact: bool) -> list[str]:
    """How a reply streams: exact token-like pieces, or (free text, as before) each word plus a space."""
    return _PIECE.findall(text) if exact else [word + " " for word in text.split(" ")]


@dataclass
class ScriptedLLM:
    """Answers extractively (as JSON when given a schema, unless `structured` is False); records every call."""

    model: str = "scripted"
    structured: bool = True  # False: a client whose server lacks structured output (free text despite a schema)
    calls: list[list[Message]] = field(default_factory=list)
    schemas: list[Mapping[str, Any] | None] = field(default_factory=list)

    async def complete(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None,
                       max_tokens: int | None = None, stop: Sequence[str] | None = None) -> str:
        self.calls.append(list(messages))
        self.schemas.append(schema)
        answer = structured_answer if schema is not None and self.structured else extractive_answer
        return answer(messages[0].content, messages[-1].content)

    async def stream(self, messages: Sequence[Message], *, schema: Mapping[str, Any] | None = None) -> AsyncIterator[str]:
        text = await self.complete(messages, schema=schema)
        for piece in _pieces(text, exact=schema is not None and self.structured):
            yield piece

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour; `ScriptedOpenAIServer.inject` queues it for the next request.

    Build them with the class methods: `Fault.status(503)`, `Fault.status(429, retry_after=1)`,
    `Fault.delay(2.0)`, `Fault.empty()`, `Fault.no_choices()`, `Fault.not_json()`,
    `Fault.drop_stream_after(3)`, `Fault.close_connection()`; for structured output,
    `Fault.ignore_schema()` and `Fault.reply(text)`.
    """

    kind: str
    code: int = 200
    retry_after: float | None = None
    seconds: float = 0.0
    tokens: int = 0
    content: str | None = ""
    content_type: str = "text/html"
    message: str = ""

    @classmethod
    def status(cls, code: int, *, retry_after: float | None = None, message: str = "") -> Fault:
        """Answer with this HTTP status and an OpenAI-style error body (and `Retry-After` if given)."""
        return cls("status", code=code, retry_after=retry_after, message=message or f"scripted failure ({code})")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally, but only after `seconds` (to trigger the client's read timeout)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def empty(cls, content: str | None = "") -> Fault:
        """A 200 whose answer is `content`: "" by default, None for null, or whitespace."""
        return cls("empty", content=content)

    @classmethod
    def no_choices(cls) -> Fault:
        """A 200 whose `choices` list is empty (streamed: chunks without choices)."""
        return cls("no_choices")

    @classmethod
    def not_json(cls, content_type: str = "text/html") -> Fault:
        """A 200 whose body is not JSON (streamed: an event whose data is not JSON)."""
        return cls("not_json", content_type=content_type)

    @classmethod
    def drop_stream_after(cls, tokens: int) -> Fault:
        """Send `tokens` streamed tokens, then close the connection mid-stream (plain: cut the body short)."""
        return cls("drop_stream", tokens=tokens)

    @classmethod
    def slow_stream(cls, seconds_per_token: float) -> Fault:
        """Stream normally, one token every `seconds_per_token`; a client hanging up is recorded in
        `ScriptedOpenAIServer.abandoned` (tokens sent before it went away)."""
        return cls("slow_stream", seconds=seconds_per_token)

    @classmethod
    def close_connection(cls) -> Fault:
        """Read the request, then close the connection without any response."""
        return cls("close")

    @classmethod
    def ignore_schema(cls) -> Fault:
        """Answer free text although a `response_format` schema was asked (a server that drops the field)."""
        return cls("ignore_schema")

    @classmethod
    def reply(cls, text: str) -> Fault:
        """Answer exactly `text` (streamed: in small pieces), e.g. malformed or cut-off JSON."""
        return cls("reply", content=text)


_LEGACY = {"error": Fault.status(500), "drop": Fault.close_connection()}


class ScriptedOpenAIServer:
    """A real OpenAI-compatible HTTP server on 127.0.0.1 that answers extractively.

    Misbehaviour, two ways:
    - `inject(*faults)`: each queued `Fault` applies to the next request (chat or /models),
      then normal answers resume;
    - `fault` (kept for older tests), applied to every chat request while set:
      None | "error" (HTTP 500) | "slow" (sleeps `delay_s` first) | "drop" (closes the socket).
    `requests` holds the chat request bodies; `calls` holds every request as "METHOD /path".
    A `responder` (request body -> reply text) replaces the extractive answers, for other roles.
    A `response_format` of type `json_schema` gets `structured_answer`'s JSON, as from vLLM's guided
    decoding; with `structured=False` the server is one without structured output, answering 400 to it.
    With `stream_usage=False` it is one without `stream_options`, answering 400 to them.
    A `port` (default: any free one) lets a test start the server where a client already knocks in vain.
    """

    def __init__(self, *, model: str = "scripted", delay_s: float = 0.0, structured: bool = True,
                 responder: Responder | None = None, stream_usage: bool = True, port: int = 0) -> None:
        self.model = model
        self.structured = structured
        self.stream_usage = stream_usage
        self.responder = responder  # when set, writes every chat reply (another role than answering: a judge)
        self.fault: str | None = None
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.abandoned: list[int] = []  # streamed tokens sent before a client hung up (Fault.slow_stream)
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _QuietHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        # a short poll lets `__exit__` return at once instead of after serve_forever's default 0.5 s
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def inject(self, *faults: Fault) -> None:
        """Queue faults: the next requests get them in order, one each."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending(self) -> int:
        """Faults queued but not yet served."""
        return len(self._faults)

    def _take(self, call: str, body: dict[str, Any] | None) -> Fault | None:
        """Record a request and pick its fault: a queued one first, else the legacy `fault`."""
        with self._lock:
            self.calls.append(call)
            if body is not None:
                self.requests.append(body)
            if self._faults:
                return self._faults.popleft()
        if body is None or self.fault is None:
            return None
        return Fault.delay(self.delay_s) if self.fault == "slow" else _LEGACY.get(self.fault)

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless the server is closing; True when the wait ran its course."""
        return not self._closing.wait(seconds)

    def __enter__(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up is expected here, not worth a traceback."""


def _handler(server: ScriptedOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart (delayed ACK)

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            fault = server._take(f"GET {self.path}", None)
            if self._misbehave(fault, stream=False):
                return
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            fault = server._take(f"POST {self.path}", body)
            stream = bool(body.get("stream"))
            if self._misbehave(fault, stream=stream):
                return
            if body.get("model") != server.model:
                self._json(404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
                return
            refused = [k for k, ok in (("response_format", server.structured), ("stream_options", server.stream_usage))
                       if k in body and not ok]
            if refused:
                self._json(400, {"error": {"message": f"{refused[0]} is not supported by this server",
                                           "type": "BadRequestError", "code": 400}})
                return
            text, exact = (server.responder(body), True) if server.responder and not fault else _reply(body, fault)
            kind = fault.kind if fault else ""
            if kind == "drop_stream":
                self._cut_short(_pieces(text, exact=exact), fault.tokens if fault else 0, stream=stream)
            elif stream:
                pieces = _pieces(text, exact=exact)
                usage = [{"choices": [], "usage": _usage(body, pieces)}] if _asks_usage(body) else []
                self._stream(_tokens(pieces, fault) + usage,
                             pause_s=fault.seconds if fault and kind == "slow_stream" else 0.0)
            else:
                self._json(200, _completion(server.model, text, fault, body))

        def _misbehave(self, fault: Fault | None, *, stream: bool) -> bool:
            """Apply a transport-level fault; True when it has answered (or hung up)."""
            if fault is None:
                return False
            if fault.kind == "delay" and not server._sleep(fault.seconds):
                return self._hang_up()
            if fault.kind == "close":
                return self._hang_up()
            if fault.kind == "status":
                self._error(fault)
            elif fault.kind == "not_json":
                self._not_json(fault, stream=stream)
            return fault.kind in ("status", "not_json")

        def _hang_up(self) -> bool:
            self.close_connection = True
            self.connection.close()
            return True

        def _error(self, fault: Fault) -> None:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            self._json(fault.code, {"error": {"message": fault.message, "type": "scripted", "code": fault.code}},
                       headers)

        def _not_json(self, fault: Fault, *, stream: bool) -> None:
            if stream:
                self._stream_head()
                self._chunk(b'data: {"choices": [{"delta": <html>\n\n')
                self._chunk(b"")
                return
            self._send(200, b"<html><body><h1>Welcome to nginx!</h1></body></html>", fault.content_type)

        def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json", headers)

        def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, chunks: list[dict[str, Any]], *, pause_s: float = 0.0) -> None:
            self._stream_head()
            for sent, chunk in enumerate(chunks):
                try:
                    self._chunk(_event(server.model, chunk))
                    self.wfile.flush()
                except OSError:  # the client went away: note how far it got
                    server.abandoned.append(sent)
                    return
                if pause_s and not server._sleep(pause_s):
                    return
            self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _stream_head(self) -> None:
            """Chunked, as vLLM sends it: a client can tell a finished stream from a broken one."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")

        def _cut_short(self, pieces: list[str], tokens: int, *, stream: bool) -> None:
            if stream:
                self._stream_head()
                for chunk in _tokens(pieces, None)[:tokens]:
                    self._chunk(_event(server.model, chunk))
            else:
                data = json.dumps(_completion(server.model, "".join(pieces), None, {})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
            self._hang_up()

    return Handler


Responder = Callable[[dict[str, Any]], str]


def _reply(body: dict[str, Any], fault: Fault | None) -> tuple[str, bool]:
    """What the model says, and whether it streams exactly: scripted text, JSON for a schema, or free text."""
    if fault is not None and fault.kind == "reply":
        return fault.content or "", True
    system, question = body["messages"][0]["content"], body["messages"][-1]["content"]
    format_type = (body.get("response_format") or {}).get("type")
    if format_type == "json_schema" and not (fault is not None and fault.kind == "ignore_schema"):
        return structured_answer(system, question), True
    return extractive_answer(system, question), False


def _tokens(pieces: list[str], fault: Fault | None) -> list[dict[str, Any]]:
    """The streamed `choices` of each chunk: one piece a chunk, then the finish."""
    if fault is not None and fault.kind == "no_choices":
        return [{"choices": []}]
    if fault is not None and fault.kind == "empty":
        pieces = [fault.content] if fault.content else []
    deltas = [{"index": 0, "delta": {"content": piece}, "finish_reason": None} for piece in pieces]
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    return [{"choices": [delta]} for delta in deltas] + [{"choices": [finish]}]


def _event(model: str, chunk: dict[str, Any]) -> bytes:
    payload = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model, **chunk}
    return f"data: {json.dumps(payload)}\n\n".encode()


def _completion(model: str, text: str, fault: Fault | None, body: dict[str, Any]) -> dict[str, Any]:
    kind = fault.kind if fault else ""
    content = fault.content if fault and kind == "empty" else text
    choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
    return {
        "id": "c1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [] if kind == "no_choices" else [choice],
        "usage": _usage(body, _pieces(content or "", exact=True)),
    }


def _asks_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


def _usage(body: dict[str, Any], pieces: list[str]) -> dict[str, int]:
    """Token counts as a server reports them: the prompt's words, the reply's pieces (at least 1 each)."""
    prompt = max(1, sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])))
    completion = max(1, len(pieces))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
