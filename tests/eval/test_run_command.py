"""`rag eval run` and `rag eval score` end to end on the tiny index: real HTTP servers for the answering
model and the judge (scripted), real FAISS and BM25, the real pipeline; resumable after failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from eval import answers_cli
from rag.testing import Fault, ScriptedOpenAIServer
from tests.eval.test_llm_judge import scripted_judge

CASES = [
    {"id": "returns", "question": "How many days do I have to return an item?", "expected_decision": "answer",
     "relevant_sources": ["policies/returns.md"], "answer_contains": ["45 days"], "tags": ["policy"]},
    {"id": "shipping", "question": "How long does standard shipping take?", "expected_decision": "answer",
     "relevant_sources": ["policies/shipping.txt"], "tags": ["policy"]},
    {"id": "pets", "question": "Can I bring my parrot to the store?", "expected_decision": "escalate",
     "relevant_sources": [], "tags": ["unanswerable"], "must_not_contain": ["parrot"]},
    {"id": "follow-up", "question": "And how long does it take to charge?", "expected_decision": "answer",
     "relevant_sources": ["docs/aurora.md"], "tags": ["follow-up"],
     "conversation": [{"question": "How bright is the Aurora X2 headlamp?", "answer": "650 lumens [1]."}]},
]


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedOpenAIServer, ScriptedOpenAIServer]]:
    with ScriptedOpenAIServer() as answering, ScriptedOpenAIServer(model="judge", responder=scripted_judge) as judge:
        yield answering, judge


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    app = typer.Typer()
    answers_cli.register(app)
    base = {"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64"}
    return CliRunner().invoke(app, list(args), env={**base, **(env or {})})


def run_suite(tmp_path: Path, tiny_index: Path, servers: tuple[ScriptedOpenAIServer, ScriptedOpenAIServer],
              *extra: str) -> tuple[Result, Path]:
    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join(json.dumps(case) + "\n" for case in CASES), encoding="utf-8")
    out = tmp_path / "run.json"
    answering, judge = servers
    result = invoke("run", str(suite), "--out", str(out), "--index", str(tiny_index), "--llm-url", answering.base_url,
                    "--model", "scripted", "--judge", "llm", "--judge-url", judge.base_url, "--judge-model", "judge",
                    "--judge-cache", "none", "--concurrency", "1", *extra)
    return result, out


def test_a_run_records_versions_answers_and_scores(tmp_path: Path, tiny_index: Path, servers: Any) -> None:
    result, out = run_suite(tmp_path, tiny_index, servers)
    assert result.exit_code == 0, result.output
    run = json.loads(out.read_text())
    assert run["format"] == "rag-eval-run/1" and run["judge"]["id"] == "llm:judge:judge@v1"
    assert run["versions"]["prompt"] == "answer@v2" and run["versions"]["model"] == "scripted"
    assert run["versions"]["index"] and run["suite"]["selected"] == 4
    items = {item["id"]: item for item in run["items"]}
    returns = items["returns"]
    assert returns["decision"] == "answer" and "45 days" in returns["answer"] and returns["citations"]
    assert returns["faithfulness"] == 1.0 and returns["verdict"] == "faithful" and returns["answer_match"] == 1.0
    assert returns["context_recall"] == 1.0 and returns["ndcg@10"] > 0 and returns["latency_ms"] > 0
    assert items["pets"]["decision"] == "escalate" and items["pets"]["decision_accuracy"] == 1.0
    assert items["pets"]["faithfulness"] is None and items["pets"]["safety"] == 1.0  # escalations are not judged
    assert items["follow-up"]["standalone_question"]  # the conversation reached the pipeline
    metrics = run["summary"]["metrics"]
    assert metrics["faithfulness"]["by"] == "llm:judge:judge@v1" and metrics["completed"]["value"] == 1.0
    assert metrics["ndcg@10"]["by"] == "retrieval (hybrid)" and metrics["latency_p95_ms"]["n"] == 4
    assert not (tmp_path / "run.json.partial").exists()
    assert "faithfulness" in result.output and "run written to" in result.output


def test_a_failed_case_fails_the_run_and_is_retried_on_resume(tmp_path: Path, tiny_index: Path,
                                                              servers: Any) -> None:
    answering, _ = servers
    answering.inject(Fault.status(500, message="model crashed"))
    failed, out = run_suite(tmp_path, tiny_index, servers)
    assert failed.exit_code == 1 and "1 case(s) failed" in failed.output and "model crashed" in failed.output
    partial = tmp_path / "run.json.partial"
    lines = partial.read_text().splitlines()
    assert len(lines) == 5 and sum('"error": null' not in line for line in lines[1:]) == 1
    asked = len(answering.requests)
    resumed, _ = run_suite(tmp_path, tiny_index, servers)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming: 3 of 4 cases already answered" in resumed.output
    assert len(answering.requests) == asked + 1  # only the failed case is asked again
    run = json.loads(out.read_text())
    assert run["summary"]["errors"] == 0 and [i["id"] for i in run["items"]] == [c["id"] for c in CASES]
    assert not partial.exists()


def test_a_checkpoint_of_other_versions_is_refused(tmp_path: Path, tiny_index: Path, servers: Any) -> None:
    servers[0].inject(Fault.status(500))
    assert run_suite(tmp_path, tiny_index, servers)[0].exit_code == 1
    other, _ = run_suite(tmp_path, tiny_index, servers, "--tag", "policy")
    assert other.exit_code == 0  # same suite and versions: a subset resumes fine
    servers[0].inject(Fault.status(500))
    assert run_suite(tmp_path, tiny_index, servers)[0].exit_code == 1
    changed = invoke("run", str(tmp_path / "suite.jsonl"), "--out", str(tmp_path / "run.json"), "--index",
                     str(tiny_index), "--llm-url", servers[0].base_url, "--model", "another-model")
    assert changed.exit_code == 2 and "another suite or configuration (model changed)" in changed.output
    assert "--restart" in changed.output


def test_unknown_tags_and_judges_are_clear_errors(tmp_path: Path, tiny_index: Path, servers: Any) -> None:
    result, _ = run_suite(tmp_path, tiny_index, servers, "--tag", "nope")
    assert result.exit_code == 2 and "no case has the tag(s) nope" in result.output
    scores_in = tmp_path / "answers.jsonl"
    scores_in.write_text(json.dumps({"id": "a", "question": "?", "contexts": ["x"], "answer": "y"}) + "\n")
    bad = invoke("score", str(scores_in), "--judge", "oracle", "--out", str(tmp_path / "s.json"))
    assert bad.exit_code == 2 and "no judge named 'oracle'" in bad.output


def test_score_judges_existing_answers_and_reports_agreement(tmp_path: Path, servers: Any) -> None:
    _, judge = servers
    lines = [{"id": "good", "question": "Return window?", "contexts": ["Returns within 45 days."],
              "answer": "You have 45 days [1].", "label": "faithful"},
             {"id": "bad", "question": "Return window?", "contexts": ["Returns within 45 days."],
              "answer": "You have 30 days [1].", "label": "unfaithful"}]
    source = tmp_path / "answers.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "scores.json"
    result = invoke("score", str(source), "--judge", "llm", "--judge-url", judge.base_url, "--judge-model", "judge",
                    "--judge-cache", "none", "--out", str(out))
    assert result.exit_code == 0, result.output
    scores = json.loads(out.read_text())
    assert scores["format"] == "rag-eval-scores/1" and scores["judge"]["id"] == "llm:judge:judge@v1"
    assert [(i["id"], i["faithfulness"], i["verdict"]) for i in scores["items"]] == [
        ("good", 1.0, "faithful"), ("bad", 0.0, "unfaithful")]
    assert scores["items"][1]["unsupported_claims"] == ["You have 30 days."]
    assert scores["summary"]["agreement"] == {"n": 2, "accuracy": 1.0, "auc": 1.0}
    source.write_text('{"id": "x", "question": "?", "answer": "y"}\n')
    missing = invoke("score", str(source), "--out", str(out))
    assert missing.exit_code == 2 and "answers.jsonl:1: 'contexts' must be a list of strings" in " ".join(
        missing.output.split())
