"""The regression gate: paired deltas with bootstrap intervals, flips, tolerances, and loud failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from eval import answers_cli
from eval.compare import compare, load_scored, parse_max_drop
from rag.errors import InputError


def run_of(faithfulness: list[float], decisions: list[int], *, judge: str = "offline@1",
           latency: float = 100.0) -> dict[str, Any]:
    items = [{"id": f"q{n}", "faithfulness": f, "verdict": "faithful" if f == 1 else "unfaithful",
              "decision_accuracy": d, "decision": "answer" if d else "escalate", "completed": 1.0, "latency_ms": latency}
             for n, (f, d) in enumerate(zip(faithfulness, decisions, strict=True))]
    names = ["faithfulness", "decision_accuracy", "completed", "latency_p95_ms"]
    return {"format": "rag-eval-run/1", "judge": {"id": judge},
            "summary": {"metrics": {name: {"value": 0, "n": len(items), "by": ""} for name in names}}, "items": items}


BASE = run_of([1.0] * 20, [1] * 20)


def test_an_unchanged_run_passes_with_a_zero_interval() -> None:
    result = compare(BASE, BASE)
    assert result.regressions == [] and result.flips == ()
    faithfulness = next(m for m in result.metrics if m.name == "faithfulness")
    assert (faithfulness.delta, faithfulness.low, faithfulness.high, faithfulness.cases) == (0.0, 0.0, 0.0, 20)


def test_a_drop_past_the_tolerance_regresses_and_lists_the_flips() -> None:
    current = run_of([1.0] * 17 + [0.5] * 3, [1] * 19 + [0])
    result = compare(BASE, current)
    regressed = {m.name: m for m in result.regressions}
    assert set(regressed) == {"faithfulness"}  # -0.075 against 0.05; decisions -0.05 is within it
    assert regressed["faithfulness"].delta == pytest.approx(-0.075)
    assert regressed["faithfulness"].low < -0.075 < regressed["faithfulness"].high <= 0
    worse = [flip for flip in result.flips if flip[2] == "worse"]
    assert len(worse) == 4 and ("q19", "decision_accuracy: answer (right) -> escalate (wrong)", "worse") in worse
    assert compare(BASE, current, max_drop=parse_max_drop(["faithfulness=0.1"])).regressions == []


def test_latency_regresses_upwards_and_only_when_gated() -> None:
    slow = run_of([1.0] * 20, [1] * 20, latency=900.0)
    assert compare(BASE, slow).regressions == []
    (latency,) = compare(BASE, slow, max_drop=parse_max_drop(["latency_p95_ms=500"])).regressions
    assert latency.name == "latency_p95_ms" and latency.delta == 800.0


def test_different_judges_are_refused_unless_allowed() -> None:
    other = run_of([1.0] * 20, [1] * 20, judge="llm:qwen:judge@v1")
    with pytest.raises(InputError, match="different judges"):
        compare(BASE, other)
    assert compare(BASE, other, allow_judge_change=True).notes == ("judges differ: offline@1 vs llm:qwen:judge@v1",)


@pytest.mark.parametrize("value,message", [("faithfulness", "write METRIC=VALUE"), ("speed=1", "must be one of"),
                                           ("safety=-1", "0 or more")])
def test_bad_tolerances_say_how_to_write_them(value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_max_drop([value])


def test_files_that_are_not_runs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"items": []}')
    with pytest.raises(InputError, match="not an eval run or score file"):
        load_scored(tmp_path / "x.json")
    with pytest.raises(InputError, match="not found"):
        load_scored(tmp_path / "missing.json")


def test_the_command_exits_1_on_a_regression_and_0_otherwise(tmp_path: Path) -> None:
    app = typer.Typer()
    answers_cli.register(app)
    base, bad = tmp_path / "base.json", tmp_path / "bad.json"
    base.write_text(json.dumps(BASE))
    bad.write_text(json.dumps(run_of([1.0] * 20, [1] * 18 + [0, 0])))
    failed = CliRunner().invoke(app, ["compare", str(base), str(bad)])
    assert failed.exit_code == 1 and "REGRESSION" in failed.output and "decision_accuracy -0.100" in failed.output
    passed = CliRunner().invoke(app, ["compare", str(base), str(bad), "--max-drop", "decision_accuracy=0.1"])
    assert passed.exit_code == 0 and "no regression" in passed.output
    wrong = CliRunner().invoke(app, ["compare", str(base), str(tmp_path / "nope.json")])
    assert wrong.exit_code == 2
