"""The LLM judge over a real OpenAI-compatible HTTP server on localhost (a scripted judge model).

The scripted model calls a claim supported when every number in it occurs in the passages: enough
to see verdicts travel both ways, the schema and the deterministic settings go out, the cache make
re-runs free, and a broken reply become an error instead of a score.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eval.judges import JudgeInput, get_judge
from eval.judges.cache import VerdictCache
from eval.judges.llm import judge_schema
from rag.testing import Fault, ScriptedOpenAIServer

PASSAGES = ("You can return most items within 45 days of delivery. Opened electronics carry a 15% restocking fee.",)
FAITHFUL = JudgeInput("a", "How long to return?", PASSAGES, "You have 45 days to return an item [1].")
WRONG = JudgeInput("b", "Is there a fee?", PASSAGES, "Returns take 45 days [1], and opened electronics cost 20% [1].")


def scripted_judge(body: dict[str, Any]) -> str:
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    claims = re.findall(r"^\d+\. (.*)$", user.split("Claims:\n", 1)[1], flags=re.MULTILINE)
    verdicts = [{"claim": n, "reason": "numbers checked", "supported": all(x in system for x in re.findall(r"\d+", c))}
                for n, c in enumerate(claims, start=1)]
    return json.dumps({"verdicts": verdicts, "relevance": 3})


@pytest.fixture
def judge_server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(model="judge-model", responder=scripted_judge) as server:
        yield server


def test_verdicts_per_claim_with_schema_and_deterministic_settings(judge_server: ScriptedOpenAIServer) -> None:
    judge = get_judge("llm", base_url=judge_server.base_url, model="judge-model")
    good, bad = judge.judge([FAITHFUL, WRONG])
    assert judge.id == "llm:judge-model:judge@v1"
    assert good.faithfulness == 1.0 and good.relevance == 1.0 and good.error is None
    assert bad.faithfulness == 0.5 and bad.unsupported_claims == ["opened electronics cost 20%."]
    schemas = sorted((r["response_format"]["json_schema"]["schema"] for r in judge_server.requests),
                     key=lambda schema: schema["properties"]["verdicts"]["maxItems"])
    assert schemas == [judge_schema(1), judge_schema(2)]  # one verdict per claim, no more, no fewer
    for request in judge_server.requests:
        assert request["temperature"] == 0.0 and request["seed"] == 0
        assert "[1] You can return most items" in request["messages"][0]["content"]


def test_the_cache_answers_a_rerun_without_the_server(judge_server: ScriptedOpenAIServer, tmp_path: Path) -> None:
    first = get_judge("llm", base_url=judge_server.base_url, model="judge-model", cache=tmp_path / "v.sqlite3")
    before = first.judge([FAITHFUL, WRONG])
    asked = len(judge_server.requests)
    again = get_judge("llm", base_url=judge_server.base_url, model="judge-model", cache=tmp_path / "v.sqlite3")
    assert again.judge([FAITHFUL, WRONG]) == before
    assert len(judge_server.requests) == asked == 2
    elsewhere = get_judge("llm", base_url="http://127.0.0.1:9/v1", model="judge-model", cache=tmp_path / "v.sqlite3")
    assert elsewhere.judge([FAITHFUL]) == before[:1]  # the same model at another address: same verdicts, no request
    other_model = get_judge("llm", base_url=judge_server.base_url, model="other", cache=tmp_path / "v.sqlite3")
    other_model.judge([FAITHFUL])
    assert len(judge_server.requests) == 3  # another model is another judge: never served from the cache


def test_a_reply_that_breaks_the_schema_is_an_error_not_a_score(judge_server: ScriptedOpenAIServer,
                                                                 tmp_path: Path) -> None:
    judge = get_judge("llm", base_url=judge_server.base_url, model="judge-model", cache=tmp_path / "v.sqlite3")
    judge_server.inject(Fault.reply('{"verdicts": [{"claim": 1, "supported": "maybe"}], "relevance": 9}'))
    (broken,) = judge.judge([FAITHFUL])
    assert broken.faithfulness is None and broken.claims == ()
    assert broken.error is not None and "not the verdict JSON" in broken.error
    (fixed,) = judge.judge([FAITHFUL])  # the bad reply was not cached: asked again
    assert fixed.faithfulness == 1.0 and len(judge_server.requests) == 2


def test_a_dead_server_gives_errors_for_every_item() -> None:
    judge = get_judge("llm", base_url="http://127.0.0.1:9/v1", model="judge-model")
    results = judge.judge([FAITHFUL, WRONG])
    assert all(r.error and "LLMUnavailableError" in r.error and r.faithfulness is None for r in results)


def test_an_answer_without_claims_is_not_sent(judge_server: ScriptedOpenAIServer) -> None:
    judge = get_judge("llm", base_url=judge_server.base_url, model="judge-model")
    (empty,) = judge.judge([JudgeInput("c", "?", PASSAGES, "[1]")])
    assert empty.claims == () and empty.faithfulness is None and judge_server.requests == []


def test_the_cache_survives_concurrent_writers(tmp_path: Path) -> None:
    one, two = VerdictCache(tmp_path / "c.sqlite3"), VerdictCache(tmp_path / "c.sqlite3")
    one.put("k", {"x": 1})
    assert two.get("k") == {"x": 1} and two.get("missing") is None and (two.hits, two.misses) == (1, 1)
