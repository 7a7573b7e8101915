"""Hostile requests against a real uvicorn: oversized, malformed, mis-encoded, injected, out of bounds.

Each is refused with the status the schema documents and a JSON error that says what to fix
({"error": {"type", "message"}}, OpenAI's shape on /v1), and the service keeps answering afterwards.
Requests httpx refuses to send (CR/LF in a header, a body that never comes) go over a raw socket.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import SCOPES, ApiKey, KeyRing, hash_key
from rag.api.limits import RateLimiter
from rag.factory import build_runtime
from rag.feedback import FeedbackStore
from rag.settings import ApiSettings
from rag.testing import ScriptedOpenAIServer
from tests.api.test_api import settings_for
from tests.api.test_feedback_api import stores_in
from tests.conftest import running

KEY = "rag_hostile-input-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LIMIT = 256 * 1024  # request body bytes: room for JSON nested 100,000 deep, which the parser must refuse itself
FRESH_ID = re.compile(r"[0-9a-f]{32}")
DECODE = "the body cannot be decoded"


@contextmanager
def serve(tmp: Path, index: Path, api: ApiSettings | None = None) -> Iterator[str]:
    """The service over a copy of `index` (the admin routes may roll it back) with its own stores, a key with
    every scope and no rate limit; yields its base URL."""
    api = api or ApiSettings(max_body_bytes=LIMIT)
    shutil.copytree(index, tmp / "index")
    with ScriptedOpenAIServer() as llm:
        settings = stores_in(tmp, settings_for(tmp / "index", llm.base_url, timeout_s=5.0))
        settings.api = api
        keys = KeyRing([ApiKey("fuzz", hash_key(KEY), frozenset(SCOPES))])
        app = create_app(lambda: build_runtime(settings), keys=keys, api=api,
                         limiter=RateLimiter(rate_per_minute=1e9, burst=10**6))
        with running(app) as url:
            yield url


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def api(stores: Path, tiny_index: Path) -> Iterator[str]:
    with serve(stores, tiny_index) as url:
        yield url


def post(url: str, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={**AUTH, "Content-Type": "application/json", **headers},
                      timeout=10)


def refused(reply: httpx.Response, status: int, fragment: str = "", *, openai: bool = False) -> dict[str, Any]:
    """The error of a refusal in the service's shape (OpenAI's on /v1), its message holding `fragment`."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error: dict[str, Any] = reply.json()["error"]
    assert set(error) == ({"type", "message", "param", "code"} if openai else {"type", "message"})
    assert fragment in error["message"]
    return error


def exchange(url: str, request: bytes, *, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole reply (the server closes): status, headers, body."""
    where = urlsplit(url)
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, body


def health_with(url: str, request_id: bytes) -> tuple[int, dict[str, str], bytes]:
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nX-Request-ID: "
    return exchange(url, head + request_id + b"\r\n\r\n")


def request_head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Authorization: Bearer {KEY}",
             "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# Oversized bodies


@pytest.mark.parametrize(("path", "openai"), [("/ask", False), ("/v1/chat/completions", True), ("/feedback", False)])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(api: str, path: str, openai: bool) -> None:
    status, headers, body = exchange(api, request_head(path, f"Content-Length: {LIMIT + 1}"))  # and no body at all
    assert status == 413 and headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert "RAG_API__MAX_BODY_BYTES" in error["message"] and str(LIMIT) in error["message"]
    assert ("code" in error) is openai


def test_a_chunked_body_over_the_limit_is_refused(api: str) -> None:
    piece = b"x" * (LIMIT // 4)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (piece, piece, piece, piece, b"x")) + b"0\r\n\r\n"
    status, _, body = exchange(api, request_head("/ask", "Transfer-Encoding: chunked") + chunks)
    assert status == 413 and json.loads(body)["error"]["type"] == "too_large"


def test_a_body_at_the_limit_is_read(api: str) -> None:
    frame = len(json.dumps({"question": ""}).encode())
    reply = post(f"{api}/ask", {"question": "x" * (LIMIT - frame)})
    assert len(reply.request.content) == LIMIT
    refused(reply, 422, "the limit is 2000")  # read and judged on its question, not refused for its size
    refused(post(f"{api}/ask", {"question": "x" * (LIMIT - frame + 1)}), 413, "RAG_API__MAX_BODY_BYTES")


# Bodies that are not the JSON object a route takes

BAD_JSON: list[tuple[str, bytes, str]] = [
    ("truncated", b'{"question": "How long do I have to ret', "not valid JSON"),
    ("empty", b"", "body: Field required"),
    ("a list", b'["How long do I have to return a jacket?"]', "valid dictionary"),
    ("a string", b'"How long do I have to return a jacket?"', "valid dictionary"),
    ("a number", b"42", "valid dictionary"),
    ("null", b"null", "valid dictionary"),
    ("arrays nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, DECODE),
    ("objects nested 40,000 deep", b'{"a":' * 40_000 + b"1" + b"}" * 40_000, DECODE),
    ("a question nested 1,000 deep", b'{"question": ' + b"[" * 1000 + b"]" * 1000 + b"}", DECODE),
    ("a top_k of 5,000 digits", b'{"question": "ok", "top_k": ' + b"9" * 5000 + b"}", DECODE),
    ("a top_k of 1e400", b'{"question": "ok", "top_k": 1e400}', "top_k: Input should be a finite number"),
    ("a top_k of 1e300", b'{"question": "ok", "top_k": 1e300}', "top_k: Unable to parse input string as an integer"),
    ("a top_k of 2**64", b'{"question": "ok", "top_k": 18446744073709551616}', "less than or equal to 100"),
    ("a top_k of -1", b'{"question": "ok", "top_k": -1}', "top_k: Input should be greater than or equal to 1"),
    ("a top_k of 4.5", b'{"question": "ok", "top_k": 4.5}', "fractional part"),
    ("a top_k of true", b'{"question": "ok", "top_k": true}', "top_k: Value error, True is not a whole number"),
    ('a top_k of "4"', b'{"question": "ok", "top_k": "4"}', "is not a whole number"),
    ("stream of 0", b'{"question": "ok", "stream": 0}', "stream: Input should be a valid boolean"),
    ("effective_on of 0", b'{"question": "ok", "filters": {"effective_on": 0}}', "0 is not a day"),
    ("a question that is a number", b'{"question": 42}', "question: Input should be a valid string"),
    ("duplicate keys, the last one bad", b'{"question": "ok", "question": ""}', "question: String should have at least 1"),
]


@pytest.mark.parametrize(("body", "fragment"), [case[1:] for case in BAD_JSON], ids=[case[0] for case in BAD_JSON])
def test_a_body_that_is_not_an_ask_request_is_a_422_that_says_why(api: str, body: bytes, fragment: str) -> None:
    refused(post(f"{api}/ask", body), 422, fragment)


def test_a_v1_body_that_is_not_json_is_an_openai_400(api: str) -> None:
    error = refused(post(f"{api}/v1/chat/completions", b'{"model": "rag", "messages": [{"ro'), 400, "not valid JSON",
                    openai=True)
    assert error["type"] == "invalid_request_error" and error["param"] is None
    refused(post(f"{api}/v1/chat/completions", b"[" * 100_000 + b"]" * 100_000), 400, DECODE, openai=True)


# Text that is not Unicode text

BAD_TEXT: list[tuple[str, str, bytes, int, str]] = [
    ("invalid UTF-8 in /ask", "/ask", b'{"question": "caf\xe9 \xff\xfe"}', 422, DECODE),
    ("invalid UTF-8 in /feedback", "/feedback", b'{"answer_id": "' + b"0" * 32 + b'", "rating": "up", "comment": "\xc3"}',
     422, DECODE),
    ("a lone surrogate in the question", "/ask", rb'{"question": "return \ud800 window?"}', 422, "question: "),
    ("a lone low surrogate in the question", "/ask", rb'{"question": "\udfff"}', 422, "question: "),
    ("a lone surrogate in a filter", "/ask", rb'{"question": "ok", "filters": {"product": ["\ud83d"]}}', 422,
     "filters.product.0: "),
    ("a lone surrogate in the comment", "/feedback",
     rb'{"conversation_id": "chat-1", "rating": "down", "comment": "wrong \udc00"}', 422, "comment: "),
    ("a lone surrogate in the correction", "/feedback",
     rb'{"conversation_id": "chat-1", "rating": "down", "correction": "\ud800"}', 422, "correction: "),
    ("NUL in the question", "/ask", rb'{"question": "return\u0000window"}', 422, "question: Value error, character 6 is "
                                                                              "U+0000"),
    ("NUL in the comment", "/feedback", rb'{"conversation_id": "chat-1", "rating": "up", "comment": "\u0000"}', 422,
     "comment: Value error, character 0 is U+0000"),
]


@pytest.mark.parametrize(("path", "body", "status", "fragment"), [case[1:] for case in BAD_TEXT],
                         ids=[case[0] for case in BAD_TEXT])
def test_text_that_is_not_unicode_is_refused_naming_the_field(api: str, path: str, body: bytes, status: int,
                                                              fragment: str) -> None:
    refused(post(f"{api}{path}", body), status, fragment)


@pytest.mark.parametrize(("content", "param"), [
    (r'"return \ud800 window?"', "messages.0.content.text"),
    (r'[{"type": "text", "text": "\udc00"}]', "messages.0.content.parts.0.text"),
    (r'"return\u0000window"', "messages.0.content.text"),
])
def test_a_v1_message_that_is_not_unicode_is_an_openai_400_naming_it(api: str, content: str, param: str) -> None:
    body = b'{"model": "rag", "messages": [{"role": "user", "content": %s}]}' % content.encode()
    error = refused(post(f"{api}/v1/chat/completions", body), 400, "which is not allowed in text", openai=True)
    assert error["param"] == param and error["message"].startswith(param)
    refused(post(f"{api}/v1/chat/completions", b'{"model": "rag", "messages": [{"role": "user", "content": "\xff"}]}'),
            400, DECODE, openai=True)


# Request ids: only a short plain one is echoed; anything else is replaced, never reflected


@pytest.mark.parametrize(("sent", "echoed"), [
    (b"proxy-42.a:7", True),
    (b"caf\xc3\xa9", False),  # non-ASCII (UTF-8)
    (b"caf\xe9", False),  # non-ASCII (Latin-1)
    (b"x" * 500, False),
    (b"a b", False),
    (b"abc\r\n def", False),  # an obsolete folded line: one value with a line break in it
])
def test_a_request_id_that_is_not_short_and_plain_is_replaced(api: str, sent: bytes, echoed: bool) -> None:
    status, headers, _ = health_with(api, sent)
    assert status == 200
    assert headers["x-request-id"] == sent.decode("latin-1") if echoed else FRESH_ID.fullmatch(headers["x-request-id"])


def test_a_request_id_cannot_inject_a_header_or_split_the_response(api: str) -> None:
    status, headers, _ = health_with(api, b"abc\r\nSet-Cookie: a=1")  # CRLF ends the header: a request header
    assert (status, headers["x-request-id"]) == (200, "abc") and "set-cookie" not in headers
    status, headers, body = health_with(api, b"abc\rSet-Cookie: a=1")  # h11 refuses it before the app sees it
    assert status == 400 and "set-cookie" not in headers and b"abc" not in body


# Limits, unknown fields, content types, methods and ids


@pytest.mark.parametrize(("body", "fragment"), [
    ({"question": "x" * 2001}, "the question is 2001 characters long; the limit is 2000"),
    ({"question": "ok", "top_k": 21}, "top_k must be between 1 and 20, got 21"),
    ({"question": "ok", "top_k": 101}, "top_k: Input should be less than or equal to 100"),
    ({"question": "ok", "filters": {"product": [f"p{i}" for i in range(51)]}}, "filters.product: List should have at "
                                                                                "most 50 items"),
    ({"question": "ok", "filters": {"doc_type": ["doc", "policy", "ticket", "doc"]}}, "filters.doc_type: List should "
                                                                                       "have at most 3 items"),
    ({"question": "ok", "filters": {"product": ["x" * 201]}}, "filters.product.0: String should have at most 200"),
    ({"question": "ok", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"question": "ok", "filters": {"colour": ["red"]}}, "filters.colour: Extra inputs are not permitted"),
    ({"question": "ok", "conversation_id": "../../etc/passwd"}, "conversation_id: String should match pattern"),
])
def test_an_ask_over_a_limit_or_with_unknown_fields_is_a_422_naming_it(api: str, body: dict[str, Any],
                                                                       fragment: str) -> None:
    refused(post(f"{api}/ask", body), 422, fragment)


@pytest.mark.parametrize(("body", "fragment"), [
    ({"answer_id": "../../etc", "rating": "down"}, "answer_id: String should match pattern"),
    ({"answer_id": "../" * 10 + "a" * 2, "rating": "down"}, "answer_id: String should match pattern"),
    ({"conversation_id": "../../etc", "rating": "down"}, "conversation_id: String should match pattern"),
    ({"conversation_id": "chat-1", "rating": "down", "stars": 5}, "stars: Extra inputs are not permitted"),
    ({"conversation_id": "chat-1", "rating": "down", "turn": "1"}, "turn: Value error, '1' is not a whole number"),
])
def test_feedback_with_a_traversal_id_or_an_unknown_field_is_a_422(api: str, body: dict[str, Any], fragment: str) -> None:
    refused(post(f"{api}/feedback", body), 422, fragment)


def test_a_rollback_to_a_traversal_version_is_a_422(api: str) -> None:
    refused(post(f"{api}/admin/index/rollback", {"version": "../../etc"}), 422, "version: String should match pattern")


def test_v1_over_max_messages_is_a_400_naming_the_setting(api: str) -> None:
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(41)]
    error = refused(post(f"{api}/v1/chat/completions", {"model": "rag", "messages": messages}), 400,
                    "41 messages sent; the limit is 40 (RAG_API__MAX_MESSAGES)", openai=True)
    assert error["param"] == "messages"


def test_v1_ignores_unknown_fields_as_openai_clients_expect(api: str) -> None:
    body = {"model": "rag", "messages": [{"role": "user", "content": "How fast is standard shipping?", "x": 1}],
            "logprobs": True, "tools": [], "colour": "red"}
    assert post(f"{api}/v1/chat/completions", body).status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          "application/xml", ""])
def test_a_body_that_is_not_declared_json_is_a_422(api: str, content_type: str) -> None:
    reply = httpx.post(f"{api}/ask", content=b'{"question": "ok"}', headers={**AUTH, "Content-Type": content_type})
    refused(reply, 422, "body: Input should be a valid dictionary")


@pytest.mark.parametrize("path", ["/ask", "/ask/stream", "/feedback", "/v1/chat/completions", "/admin/index/reload"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_another_method_on_a_post_route_is_a_405_with_allow(api: str, path: str, method: str) -> None:
    reply = httpx.request(method, f"{api}{path}", headers=AUTH)
    refused(reply, 405, f"{method} {path} is not allowed: this route takes POST", openai=path.startswith("/v1/"))
    assert reply.headers["allow"] == "POST"


def test_an_unknown_route_is_a_404_in_the_same_shape(api: str) -> None:
    refused(httpx.get(f"{api}/etc/passwd", headers=AUTH), 404, "no route GET /etc/passwd")
    refused(httpx.get(f"{api}/v1/completions", headers=AUTH), 404, "GET /docs lists the routes", openai=True)


# And afterwards


def test_after_the_barrage_the_service_answers_and_its_stores_are_intact(api: str, stores: Path) -> None:
    served = httpx.get(f"{api}/admin/index", headers=AUTH).json()
    for _, body, _ in BAD_JSON:
        post(f"{api}/ask", body)
    for _, path, body, _, _ in BAD_TEXT:
        post(f"{api}{path}", body)
    for version in ("../../etc", "", "x" * 65, None):
        post(f"{api}/admin/index/rollback", {"version": version})
    asked = post(f"{api}/ask", {"question": "How many days do I have to return an item?"})
    assert asked.status_code == 200 and "45 days" in asked.json()["answer"]
    follow = post(f"{api}/ask", {"question": "and opened electronics?", "conversation_id": asked.json()["conversation_id"]})
    assert follow.status_code == 200 and follow.json()["standalone_question"]
    rated = post(f"{api}/feedback", {"answer_id": asked.json()["answer_id"], "rating": "up"})
    assert rated.status_code == 201 and rated.json()["turn"] == 1
    assert httpx.get(f"{api}/admin/index", headers=AUTH).json() == served  # no rollback got through
    assert httpx.get(f"{api}/ready").json()["status"] == "ready"
    store = FeedbackStore(stores / "feedback.sqlite3")
    try:
        assert [(f.answer_id, f.rating) for f in store.list()] == [(asked.json()["answer_id"], "up")]
    finally:
        store.close()
