"""/ask filters over a real uvicorn: product, doc type and a date pick the passages; bad filters are 422s."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.api import create_app
from rag.api.keys import KeyRing
from rag.factory import build_runtime
from rag.settings import Settings
from rag.testing import ScriptedOpenAIServer
from tests.conftest import make_job, roots_of, running, write_corpus

AURORA, KETTLE = "Aurora X2 headlamp", "BrewPoint kettle"
OLD, NEW, KETTLE_POLICY = "policies/warranty-2024.md", "policies/warranty-2025.md", "policies/kettle-warranty.md"
CORPUS = {
    "policies/_meta.yaml": f'files:\n  "warranty-*": {{product: "{AURORA}"}}\n  "kettle-*": {{product: "{KETTLE}"}}\n',
    OLD: "# Aurora X2 warranty\n\nEffective date: 2024-01-01.\n\nThe Aurora X2 headlamp has a one-year warranty "
    "against defects in materials and workmanship.\n",
    NEW: "# Aurora X2 warranty\n\nEffective date: 2025-01-01.\n\nThe Aurora X2 headlamp has a two-year warranty "
    "against defects in materials and workmanship.\n",
    KETTLE_POLICY: "# BrewPoint warranty\n\nEffective date: 2023-01-01.\n\nThe BrewPoint kettle has a warranty of "
    "90 days against defects.\n",
    "docs/aurora.md": "# Aurora X2 headlamp\n\nThe Aurora X2 gives 650 lumens. Its warranty card is in the box.\n",
    "docs/aurora.md.meta.yaml": f"product: {AURORA}\n",
    "docs/shipping-zh.md": "# 亚洲配送\n\n寄往香港的订单通常在三到五个工作日内送达，运费六十港元。\n",
    "tickets/tickets.jsonl": json.dumps({
        "ticket_id": "T-1", "status": "resolved", "subject": "Warranty claim for a headlamp",
        "customer_message": "My Aurora X2 stopped working, is it under warranty?",
        "agent_resolution": "Yes, the warranty covers it; we sent a replacement.", "product": AURORA}) + "\n",
}
WARRANTY = "How long is the warranty?"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("filters-api")
    report = make_job(root / "index").run(roots_of(write_corpus(root / "corpus", CORPUS)))
    assert report.superseded == [OLD] and not report.failed
    return root / "index"


@pytest.fixture(scope="module")
def api(index: Path) -> Iterator[str]:
    """One scripted LLM and one API server for the module: these tests only read."""
    with ScriptedOpenAIServer() as llm_server:
        settings = Settings(index={"dir": index, "gpu": "off"}, embedding={"backend": "hash", "model": "hash-64"},
                            llm={"base_url": llm_server.base_url, "model": "scripted", "timeout_s": 5.0})
        with running(create_app(lambda: build_runtime(settings), keys=KeyRing.off())) as url:
            yield url


def ask(api: str, question: str, **body: Any) -> dict[str, Any]:
    reply = httpx.post(f"{api}/ask", json={"question": question, **body}, timeout=30)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def cited_sources(body: dict[str, Any]) -> set[str]:
    return {c["source"] for c in body["citations"]}


def test_product_date_and_doc_type_leave_only_the_policy_then_in_effect(api: str) -> None:
    unfiltered = cited_sources(ask(api, WARRANTY, top_k=8))
    assert {OLD, NEW, KETTLE_POLICY, "docs/aurora.md"} <= unfiltered  # the filter below has something to remove
    filters = {"product": ["aurora x2 HEADLAMP"], "effective_on": "2024-06-01", "doc_type": ["policy"]}
    body = ask(api, WARRANTY, top_k=8, filters=filters)
    assert cited_sources(body) == {OLD}
    assert "one-year" in body["answer"]


def test_a_date_leaves_other_doc_types_alone(api: str) -> None:
    body = ask(api, WARRANTY, top_k=8, filters={"product": [AURORA], "effective_on": "2024-06-01"})
    assert cited_sources(body) == {OLD, "docs/aurora.md", "tickets/tickets.jsonl#T-1"}
    later = ask(api, WARRANTY, top_k=8, filters={"product": [AURORA], "effective_on": "2025-06-01", "doc_type": ["policy"]})
    assert cited_sources(later) == {NEW}


def test_a_filter_matching_nothing_gives_no_citations(api: str) -> None:
    body = ask(api, WARRANTY, filters={"product": ["Nonexistent lamp"]})
    assert body["citations"] == []


@pytest.mark.parametrize(("filters", "fragment"), [
    ({"effective_on": "2024-13-01"}, "filters.effective_on"),
    ({"effective_on": "next tuesday"}, "filters.effective_on"),
    ({"colour": ["red"]}, "filters.colour"),
    ({"product": [7]}, "filters.product"),
])
def test_a_bad_filter_is_a_422_naming_it(api: str, filters: dict[str, Any], fragment: str) -> None:
    reply = httpx.post(f"{api}/ask", json={"question": WARRANTY, "filters": filters}, timeout=30)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["type"] == "invalid_request" and fragment in error["message"]


@pytest.mark.parametrize("question", [WARRANTY, "寄到香港的运费是多少？", "lumens", "zzz qqq"])
def test_citation_scores_are_relevances_within_zero_and_one(api: str, question: str) -> None:
    citations = ask(api, question, top_k=8)["citations"]
    assert citations and all(0.0 <= c["score"] <= 1.0 for c in citations)
    with httpx.stream("POST", f"{api}/ask", json={"question": question, "top_k": 8, "stream": True}, timeout=30) as r:
        first = r.read().decode().split("\n\n")[0]
    streamed = json.loads(first.split("\ndata: ")[1])["citations"]
    assert [c["score"] for c in streamed] == [c["score"] for c in citations]
