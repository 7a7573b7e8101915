"""Access to the API: every route without a key, with a wrong key, with a wrong scope; rate limits;
CORS and security headers; request ids; the keys file and `rag keys`; JSON logs without secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from rag.api import create_app
from rag.api.keys import SCOPES, ApiKey, KeyRing, add_key, hash_key, load_keyring, remove_key
from rag.api.limits import RateLimiter
from rag.api.logs import JsonFormatter
from rag.errors import ConfigError
from rag.factory import build_runtime
from rag.settings import ApiSettings, AuthSettings
from rag.testing import ScriptedOpenAIServer
from tests.api.test_api import settings_for
from tests.conftest import REPO, running

KEYS = {scope: f"rag_test-{scope}-key" for scope in SCOPES}
PUBLIC = {("GET", "/health"), ("GET", "/ready")}
# the scope each route needs; a route missing here fails test_every_route_is_in_the_scope_table
SCOPE_OF = {
    ("POST", "/ask"): "ask", ("POST", "/ask/stream"): "ask", ("GET", "/v1/models"): "ask",
    ("POST", "/v1/chat/completions"): "ask", ("POST", "/feedback"): "feedback", ("GET", "/metrics"): "metrics",
    ("GET", "/admin/index"): "admin", ("POST", "/admin/index/reload"): "admin",
    ("POST", "/admin/index/rollback"): "admin", ("GET", "/admin/feedback"): "admin",
}
BODIES = {"/ask": {"question": "How long is the return window?"}, "/ask/stream": {"question": "return window?"},
          "/v1/chat/completions": {"model": "rag", "messages": [{"role": "user", "content": "return window?"}]},
          "/feedback": {"answer_id": "0" * 32, "rating": "up"}, "/admin/index/rollback": {}}


def keyring() -> KeyRing:
    return KeyRing(ApiKey(f"{scope}-caller", hash_key(key), frozenset({scope})) for scope, key in KEYS.items())


def build(tiny_index: Path, llm_url: str, tmp_path: Path, **api: object) -> FastAPI:
    settings = settings_for(tiny_index, llm_url)
    settings.conversations.path, settings.feedback.path = tmp_path / "talk.sqlite3", tmp_path / "feedback.sqlite3"
    return create_app(lambda: build_runtime(settings), keys=keyring(), api=ApiSettings(**api),  # type: ignore[arg-type]
                      limiter=RateLimiter(rate_per_minute=1e9, burst=10**6))


@pytest.fixture()
def api(tiny_index: Path, llm_server: ScriptedOpenAIServer, tmp_path: Path) -> Iterator[str]:
    with running(build(tiny_index, llm_server.base_url, tmp_path)) as url:
        yield url


def call(url: str, method: str, path: str, key: str | None = None, *, header: str = "bearer") -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    return httpx.request(method, url + path, json=BODIES.get(path) if method == "POST" else None, headers=headers,
                         timeout=30)


def test_every_route_is_in_the_scope_table(api: str) -> None:
    spec = httpx.get(f"{api}/openapi.json").json()
    routes = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert routes == set(SCOPE_OF) | PUBLIC, "a new route needs its scope in SCOPE_OF (and a test here)"


@pytest.mark.parametrize(("method", "path"), sorted(SCOPE_OF))
def test_a_route_refuses_no_key_a_wrong_key_and_a_wrong_scope(api: str, method: str, path: str) -> None:
    needed = SCOPE_OF[(method, path)]
    missing = call(api, method, path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "an API key is required" in missing.json()["error"]["message"]
    wrong = call(api, method, path, "rag_not-a-key")
    assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]
    for scope, key in KEYS.items():
        if scope not in (needed, "admin"):
            refused = call(api, method, path, key)
            assert refused.status_code == 403, (scope, refused.text)
            assert f"lacks the {needed!r} scope" in refused.json()["error"]["message"]
    for key in (KEYS[needed], KEYS["admin"]):  # the route's own scope, and admin, which has every scope
        for header in ("bearer", "x-api-key"):
            assert call(api, method, path, key, header=header).status_code not in (401, 403)


@pytest.mark.parametrize("path", ["/ask", "/feedback", "/v1/chat/completions", "/admin/index/rollback"])
def test_the_key_is_checked_before_the_body_is_read(api: str, path: str) -> None:
    reply = httpx.post(api + path, content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 401, reply.text


def test_probes_and_docs_need_no_key(api: str) -> None:
    for path in ("/health", "/ready", "/docs", "/openapi.json"):
        assert httpx.get(api + path).status_code == 200, path


def test_openai_routes_refuse_in_openai_shape(api: str) -> None:
    refused = call(api, "POST", "/v1/chat/completions")
    assert refused.json()["error"] | {"message": ""} == {"type": "unauthenticated", "message": "", "param": None,
                                                         "code": 401}


def test_the_openapi_schema_declares_both_key_schemes(api: str) -> None:
    spec = httpx.get(f"{api}/openapi.json").json()
    assert set(spec["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    assert {"HTTPBearer": []} in spec["paths"]["/ask"]["post"]["security"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_a_key_over_its_rate_gets_429_with_retry_after(tiny_index: Path, llm_server: ScriptedOpenAIServer,
                                                       tmp_path: Path) -> None:
    settings = settings_for(tiny_index, llm_server.base_url)
    slow = KeyRing([ApiKey("slow", hash_key("rag_slow"), frozenset({"ask"}), rate_per_minute=6),
                    ApiKey("fast", hash_key("rag_fast"), frozenset({"ask"}))])
    app = create_app(lambda: build_runtime(settings), keys=slow, limiter=RateLimiter(rate_per_minute=600, burst=2))
    with running(app) as url:
        statuses = [call(url, "GET", "/v1/models", "rag_slow").status_code for _ in range(3)]
        refused = call(url, "GET", "/v1/models", "rag_slow")
        other = call(url, "GET", "/v1/models", "rag_fast")  # buckets are per key
    assert statuses == [200, 200, 429] and refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 10  # 6 a minute: the next one in 10 s
    assert "rate limit of 6 requests per minute reached for 'slow'" in refused.json()["error"]["message"]
    assert other.status_code == 200


def test_the_rate_limiter_refills_continuously() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [None, None]
    assert limiter.take("a") == pytest.approx(1.0)
    now[0] = 0.5
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] = 1.0
    assert limiter.take("a") is None and limiter.take("b") is None
    many = RateLimiter(rate_per_minute=60, burst=1, max_callers=3, clock=lambda: now[0])
    for caller in "abcdef":
        many.take(caller)
    assert len(many._buckets) == 3  # a flood of addresses does not grow memory


def test_responses_carry_security_headers_and_the_request_id(api: str) -> None:
    reply = httpx.get(f"{api}/health", headers={"X-Request-ID": "proxy-42.a"})
    assert reply.headers["x-request-id"] == "proxy-42.a"
    assert reply.headers["x-content-type-options"] == "nosniff" and reply.headers["x-frame-options"] == "DENY"
    assert reply.headers["content-security-policy"].startswith("default-src 'none'")
    assert reply.headers["cache-control"] == "no-store"
    fresh = httpx.get(f"{api}/health", headers={"X-Request-ID": "x" * 65})
    assert len(fresh.headers["x-request-id"]) == 32 and fresh.headers["x-request-id"] != "x" * 65
    refused = call(api, "POST", "/ask")
    assert refused.headers["x-content-type-options"] == "nosniff" and refused.headers["x-request-id"]
    assert "content-security-policy" not in httpx.get(f"{api}/docs").headers  # Swagger UI loads its scripts


def test_cors_allows_only_the_configured_origins(tiny_index: Path, llm_server: ScriptedOpenAIServer,
                                                 tmp_path: Path) -> None:
    app = build(tiny_index, llm_server.base_url, tmp_path, cors_origins=["https://shop.example"])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with running(app) as url:
        allowed = httpx.options(f"{url}/ask", headers={"Origin": "https://shop.example", **preflight})
        other = httpx.options(f"{url}/ask", headers={"Origin": "https://evil.example", **preflight})
        simple = httpx.get(f"{url}/health", headers={"Origin": "https://shop.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


def test_without_cors_origins_no_cross_origin_headers(api: str) -> None:
    reply = httpx.get(f"{api}/health", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in reply.headers


def test_keys_file_holds_hashes_and_changes_count_without_a_restart(tmp_path: Path) -> None:
    keys_file = tmp_path / "api-keys.toml"
    key = add_key(keys_file, "bot", ["ask", "feedback"], rate_per_minute=120)
    text = keys_file.read_text()
    assert key.startswith("rag_") and key not in text and hash_key(key) in text
    assert keys_file.stat().st_mode & 0o777 == 0o600
    now = [0.0]
    ring = KeyRing(keys_file=keys_file, clock=lambda: now[0])
    found = ring.find(key)
    assert found is not None and found.name == "bot" and found.rate_per_minute == 120 and found.allows("feedback")
    assert not found.allows("admin")
    with pytest.raises(ConfigError, match="already has a key named 'bot'"):
        add_key(keys_file, "bot", ["ask"])
    assert remove_key(keys_file, "bot")
    now[0] = 1.5  # the file is checked at most once a second
    assert ring.find(key) is None
    with pytest.raises(ConfigError, match="scopes"):
        add_key(keys_file, "x", ["everything"])


def test_a_broken_keys_file_is_a_clear_error_at_start(tmp_path: Path) -> None:
    keys_file = tmp_path / "api-keys.toml"
    keys_file.write_text('[[keys]]\nname = "bot"\nhash = "plaintext-key"\nscopes = ["ask"]\n')
    with pytest.raises(ConfigError, match=r"invalid API keys file .*hash"):
        load_keyring(AuthSettings(), keys_file)
    assert not load_keyring(AuthSettings(enabled=False), keys_file).enabled


def test_rag_keys_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.toml"

    def rag(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from rag.cli import main; main()", *args, "--keys-file", str(keys_file)]
        return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)

    created = rag("keys", "create", "--name", "support-bot", "--scopes", "ask,feedback")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("rag_") and len(key) > 40 and "shown only now" in created.stderr
    listed = rag("keys", "list")
    assert "support-bot" in listed.stdout and "ask,feedback" in listed.stdout and key not in listed.stdout
    assert rag("keys", "revoke", "support-bot").returncode == 0
    assert rag("keys", "revoke", "support-bot").returncode == 2
    bad = rag("keys", "create", "--name", "x", "--scopes", "root")
    assert bad.returncode == 2 and "scopes" in bad.stderr


def test_rag_serve_refuses_to_start_with_auth_on_and_no_keys(tmp_path: Path) -> None:
    env = {"RAG_INDEX__DIR": str(tmp_path / "index"), "RAG_AUTH__KEYS_FILE": str(tmp_path / "none.toml"),
           "PATH": "/usr/bin:/bin"}
    started = subprocess.run([sys.executable, "-c", "from rag.cli import main; main()", "serve"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 2
    assert "no API keys are configured" in started.stderr and "rag keys create" in started.stderr


def test_auth_off_lets_anyone_in_and_warns_loudly(tiny_index: Path, llm_server: ScriptedOpenAIServer,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tiny_index, llm_server.base_url)
    with caplog.at_level(logging.WARNING), running(create_app(lambda: build_runtime(settings),
                                                              keys=KeyRing.off())) as url:
        assert httpx.get(f"{url}/v1/models").status_code == 200
    assert any("AUTHENTICATION IS OFF" in r.getMessage() for r in caplog.records)


def test_json_logs_carry_the_request_id_and_never_the_key_or_question(
        api: str, caplog: pytest.LogCaptureFixture) -> None:
    question = "My card 4111 1111 1111 1111 was charged twice, why?"
    with caplog.at_level(logging.INFO):
        reply = httpx.post(f"{api}/ask", json={"question": question},
                           headers={"Authorization": f"Bearer {KEYS['ask']}", "X-Request-ID": "req-7"})
        httpx.post(f"{api}/ask", json={"question": question}, headers={"Authorization": "Bearer rag_wrong-key"})
    assert reply.status_code == 200
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    access = [line for line in lines if line["logger"] == "rag.access" and line.get("request_id") == "req-7"]
    assert access and access[0] | {"duration_ms": 0} == {
        "time": access[0]["time"], "level": "info", "logger": "rag.access", "message": "request", "request_id": "req-7",
        "method": "POST", "route": "/ask", "status": 200, "duration_ms": 0, "caller": "ask-caller"}
    everything = "\n".join(json.dumps(line) for line in lines)
    assert "4111" not in everything and KEYS["ask"] not in everything and "rag_wrong-key" not in everything


def test_metrics_count_requests_stages_decisions_and_the_index(api: str) -> None:
    auth = {"Authorization": f"Bearer {KEYS['ask']}"}
    assert httpx.post(f"{api}/ask", json={"question": "How long is the return window?"}, headers=auth).status_code == 200
    call(api, "POST", "/ask")  # a 401
    text = httpx.get(f"{api}/metrics", headers={"Authorization": f"Bearer {KEYS['metrics']}"}).text
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line and not line.startswith("#")}
    assert samples['rag_http_requests_total{method="POST",route="/ask",status="200"}'] >= 1
    assert samples['rag_http_requests_total{method="POST",route="/ask",status="401"}'] >= 1
    assert samples['rag_rejected_requests_total{reason="unauthenticated"}'] >= 1
    for stage in ("embed", "search", "generate", "total"):
        assert samples[f'rag_stage_duration_seconds_count{{stage="{stage}"}}'] >= 1, stage
    assert samples['rag_answers_total{decision="answer"}'] >= 1
    assert samples["rag_index_chunks"] > 0 and any(k.startswith('rag_index_info{version="') for k in samples)
    assert "rag_llm_circuit_open" in samples and "rag_in_flight_requests" in samples


def test_admin_lists_rolls_back_and_exports_feedback(tiny_index: Path, llm_server: ScriptedOpenAIServer,
                                                     tmp_path: Path) -> None:
    import shutil

    from tests.conftest import TINY_CORPUS, make_job, roots_of, write_corpus

    index = tmp_path / "index"
    shutil.copytree(tiny_index, index)
    corpus = write_corpus(tmp_path / "corpus", {**TINY_CORPUS, "docs/new.md": "# New\n\nA new page.\n"})
    with running(build(index, llm_server.base_url, tmp_path)) as url, httpx.Client() as first:
        admin = {"Authorization": f"Bearer {KEYS['admin']}"}
        listed = first.get(f"{url}/admin/index", headers=admin).json()
        [original] = [v["id"] for v in listed["versions"]]
        second = make_job(index).run(roots_of(corpus)).version
        reloaded = first.post(f"{url}/admin/index/reload", headers=admin).json()
        assert reloaded == {"before": original, "served": second, "changed": True}
        rolled = first.post(f"{url}/admin/index/rollback", headers=admin, json={}).json()
        assert rolled == {"before": second, "served": original, "changed": True}
        again = first.post(f"{url}/admin/index/rollback", headers=admin, json={"version": original})
        assert again.status_code == 422 and "already the current version" in again.json()["error"]["message"]
        missing = first.post(f"{url}/admin/index/rollback", headers=admin, json={"version": "20000101T000000Z"})
        assert missing.status_code == 404
        answer = first.post(f"{url}/ask", headers=admin, json={"question": "How long is the return window?"}).json()
        first.post(f"{url}/feedback", headers=admin, json={"answer_id": answer["answer_id"], "rating": "down",
                                                            "comment": "too vague"})
        export = first.get(f"{url}/admin/feedback", headers=admin, params={"rating": "down"})
        assert first.get(f"{url}/admin/feedback", headers=admin, params={"rating": "up"}).text == ""
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    [record] = [json.loads(line) for line in export.text.splitlines()]
    assert (record["answer_id"], record["comment"], record["answer"]) == (answer["answer_id"], "too vague",
                                                                         answer["answer"])
