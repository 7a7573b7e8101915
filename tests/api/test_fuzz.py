"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis, over a real uvicorn).

Every operation gets the schema's examples, coverage cases (boundaries, missing and wrong-typed fields,
undeclared methods, wrong content types) and random valid and invalid requests. Every response must be
no 5xx and conform to the schema: a documented status code, content type, body and headers; valid
requests must be accepted and invalid ones refused. Once with a key holding every scope, once with no
key, where every protected route must refuse with a documented 401.

A real uvicorn rather than schemathesis' in-process ASGI transport: the body limit then reads the request
as uvicorn delivers it, streamed answers go out through uvicorn's writer, and h11 checks the headers
both ways; an in-process client would skip all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from schemathesis import Case, CheckFunction, Response
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
)

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import Runtime
from rag.settings import ApiSettings
from tests.api.test_hostile_input import KEY, serve

pytestmark = pytest.mark.slow


def _never_served() -> Runtime:
    raise AssertionError("this app only gives its schema")


# The schema is a function of create_app's arguments alone, not of the runtime, so it is read (at collection, one
# test per operation) from an app never served; test_the_schema_fuzzed_is_the_one_served checks the server's is equal.
SCHEMA: dict[str, Any] = create_app(_never_served, keys=KeyRing.off()).openapi()
keyed = schemathesis.openapi.from_dict(SCHEMA)
keyed.config.generation.update(with_security_parameters=False)  # the test sends the real key
keyless = schemathesis.openapi.from_dict(SCHEMA)  # may send made-up keys
for _schema in (keyed, keyless):  # a body over RAG_API__MAX_BODY_BYTES is refused (413), valid or not
    for _check in (_schema.config.checks.positive_data_acceptance, _schema.config.checks.negative_data_rejection):
        _check.expected_statuses = [*_check.expected_statuses, "413"]

# ~30 generated requests per operation and mode, on top of the examples and coverage cases; the same ones each run.
_FUZZ = hypothesis.settings(max_examples=30, deadline=None, derandomize=True, database=None,
                            suppress_health_check=list(HealthCheck), print_blob=False)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, tiny_index: Path) -> Iterator[str]:
    with serve(tmp_path_factory.mktemp("fuzz"), tiny_index, ApiSettings()) as url:  # the default 64 KiB body limit
        yield url


def test_the_schema_fuzzed_is_the_one_served(service: str) -> None:
    assert httpx.get(f"{service}/openapi.json").json() == SCHEMA


@keyed.parametrize()
@_FUZZ
def test_with_a_key_no_request_gets_a_5xx_or_an_undocumented_response(case: Case, service: str) -> None:
    response = case.call(base_url=service, headers={"Authorization": f"Bearer {KEY}"})
    case.validate_response(response, headers={"Authorization": f"Bearer {KEY}"},
                           excluded_checks=_known_gaps(case, response))


@keyless.parametrize()
@_FUZZ
def test_without_a_key_every_protected_route_is_a_documented_401(case: Case, service: str) -> None:
    response = case.call(base_url=service)
    case.validate_response(response, excluded_checks=_known_gaps(case, response))
    if case.operation.definition.raw.get("security"):  # the key is checked before the body is read
        assert response.status_code in (401, 405, 413), response.text  # method and size are checked before the key


def _known_gaps(case: Case, response: Response) -> list[CheckFunction]:
    """Checks a case skips, each for a reason given on its line."""
    gaps: list[CheckFunction] = []
    if _refused_by_rule(case, response):
        gaps.append(positive_data_acceptance)
    return gaps


def _refused_by_rule(case: Case, response: Response) -> bool:
    """Whether a request valid by the schema was refused, rightly and saying why, by a rule the schema does not
    state: a runtime limit (RAG_RETRIEVAL__MAX_TOP_K, RAG_API__MAX_QUESTION_CHARS), a question of blanks only,
    or OpenAI's rules on messages (a last chat message that is the user's, with text) and n (only 1)."""
    if response.status_code not in (400, 422):
        return False
    error = response.json()["error"]
    if case.operation.path == "/v1/chat/completions":
        return error["param"] in ("messages", "n") or error["message"].startswith("top_k must be between 1 and")
    message = error["message"]
    return message.startswith(("top_k must be between 1 and", "the question is empty")) or "; the limit is " in message
