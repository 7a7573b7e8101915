"""The release gate CI runs: the golden suite's `ci` cases through the real pipeline and the real vLLM
(CPU, gemma-3-270m with the demo's settings), judged offline, compared with the committed baseline.

A regression past the tolerances below fails CI with the comparison printed. The same test shows the
gate can fail: a configuration that escalates everything is compared too and must be refused.
Refresh the baseline deliberately, after a change that is meant to move the scores:

    RAG_EVAL_UPDATE_BASELINE=1 scripts/test.sh tests/e2e/test_eval_gate.py

then commit eval/baselines/ci.json with a message that says why the scores moved.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from eval import answers_cli
from rag.llm.server import VLLMServer
from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

BASELINE = REPO / "eval" / "baselines" / "ci.json"
SUITE = REPO / "eval" / "suites" / "golden.jsonl"
# 12 cases: one case flipping moves decision_accuracy by 0.083 and faithfulness (5 judged answers) by up to
# 0.2, so the gate allows one flip from CPU-to-CPU numeric drift and fails on two; safety never moves.
TOLERANCES = ["decision_accuracy=0.09", "faithfulness=0.25", "answer_relevance=0.15", "answer_match=0.15",
              "context_precision=0.1", "context_recall=0.1", "citation_precision=0.25", "citation_recall=0.25",
              "ndcg@10=0.05", "safety=0", "completed=0"]
DEMO_LLM = {"RAG_LLM__STOP": '["\\n"]', "RAG_LLM__MAX_TOKENS": "64", "RAG_LLM__STRUCTURED_OUTPUT": "off"}


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    app = typer.Typer()
    answers_cli.register(app)
    result = CliRunner().invoke(app, list(args), env=env)
    print(result.output)
    return result


def run_ci_cases(vllm: VLLMServer, index: Path, out: Path, **settings: str) -> Result:
    return invoke("run", str(SUITE), "--tag", "ci", "--judge", "offline", "--out", str(out), "--index", str(index),
                  "--llm-url", vllm.base_url, "--model", vllm.served_model_name, env={**DEMO_LLM, **settings})


def test_the_ci_cases_do_not_regress_against_the_baseline(vllm: VLLMServer, sample_index: tuple[Path, object],
                                                          tmp_path: Path) -> None:
    current = tmp_path / "run.json"
    assert run_ci_cases(vllm, sample_index[0], current).exit_code == 0
    if os.environ.get("RAG_EVAL_UPDATE_BASELINE") == "1":
        shutil.copyfile(current, BASELINE)
        pytest.skip(f"baseline refreshed: {BASELINE}; review and commit it")
    run = json.loads(current.read_text())
    assert run["summary"]["cases"] == 12 and run["judge"]["id"] == json.loads(BASELINE.read_text())["judge"]["id"]
    gate = invoke("compare", str(BASELINE), str(current), *[f"--max-drop={t}" for t in TOLERANCES])
    assert gate.exit_code == 0, f"the ci cases regressed against {BASELINE}:\n{gate.output}"


def test_the_gate_refuses_a_configuration_that_escalates_everything(vllm: VLLMServer,
                                                                    sample_index: tuple[Path, object],
                                                                    tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    assert run_ci_cases(vllm, sample_index[0], broken, RAG_ANSWER__MIN_RELEVANCE="0.99").exit_code == 0
    gate = invoke("compare", str(BASELINE), str(broken), *[f"--max-drop={t}" for t in TOLERANCES])
    assert gate.exit_code == 1 and "REGRESSION" in gate.output and "decision_accuracy" in gate.output
