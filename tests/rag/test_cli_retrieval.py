"""`rag search` and `rag eval retrieval` on the tiny hash-embedded index, run in-process with typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from rag.cli import _register_plugins, app


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> CliRunner:
    if not any(group.name == "eval" for group in app.registered_groups):
        _register_plugins()  # `rag eval` comes from the eval package's entry point, as in `main()`
    config = tmp_path_factory.mktemp("cli") / "no-rag.toml"  # no rag.toml of the working directory leaks in
    return CliRunner(env={"RAG_EMBEDDING__BACKEND": "hash", "RAG_EMBEDDING__MODEL": "hash-64",
                          "RAG_INDEX__GPU": "off", "RAG_CONFIG": str(config), "COLUMNS": "200"})


def rag(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, list(args))


def test_search_json_has_relevance_and_signals(runner: CliRunner, tiny_index: Path) -> None:
    result = rag(runner, "search", "How many days do I have to return an item?", "--index", str(tiny_index), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["source"] == "policies/returns.md" and "45 days" in rows[0]["text"]
    assert len(rows) == 4  # the default top-k of 5, but the tiny index holds 4 chunks
    for row in rows:
        assert 0.0 <= row["score"] <= 1.0
        assert {"dense", "fused", "prior"} <= set(row["signals"])
    assert {"bm25", "coverage"} <= set(rows[0]["signals"])


def test_search_mode_and_filters_are_passed_on(runner: CliRunner, tiny_index: Path) -> None:
    index = ["--index", str(tiny_index), "--json"]
    rows = json.loads(rag(runner, "search", "return window", "--mode", "bm25", "--top-k", "2", *index).stdout)
    assert rows and len(rows) <= 2 and all("dense" not in row["signals"] for row in rows)
    tickets = json.loads(rag(runner, "search", "return window", "--doc-type", "ticket", *index).stdout)
    assert [row["source"] for row in tickets] == ["tickets/tickets.jsonl#T-1"]
    products = json.loads(rag(runner, "search", "heat", "--product", "brewpoint", *index).stdout)
    assert [row["source"] for row in products] == ["tickets/tickets.jsonl#T-1"]


def test_search_prints_a_table_by_default(runner: CliRunner, tiny_index: Path) -> None:
    result = rag(runner, "search", "standard shipping", "--index", str(tiny_index), "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert "relevance" in result.stdout and "policies/shipping.txt" in result.stdout and "fused=" in result.stdout
    empty = rag(runner, "search", "shipping", "--index", str(tiny_index), "--language", "fr")
    assert empty.exit_code == 0 and "no passage matches" in empty.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (("--mode", "sparse"), "--mode must be one of dense, bm25, hybrid"),
    (("--effective-on", "2024-13-01"), "effective_on must be a date"),
    (("--doc-type", "memo"), "doc_type 'memo'"),
])
def test_bad_search_options_exit_2_with_one_line(runner: CliRunner, tiny_index: Path, args: tuple[str, ...],
                                                 fragment: str) -> None:
    result = rag(runner, "search", "return window", "--index", str(tiny_index), *args)
    assert result.exit_code == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_search_without_an_index_says_how_to_make_one(runner: CliRunner, tmp_path: Path) -> None:
    result = rag(runner, "search", "return window", "--index", str(tmp_path / "none"))
    assert result.exit_code == 3 and "rag ingest" in result.stderr


SUITE = [
    {"id": "returns", "question": "How many days do I have to return an item?", "relevant_sources": ["policies/returns.md"]},
    {"id": "shipping", "question": "How long does standard shipping take?", "relevant_sources": ["policies/shipping.txt"],
     "tags": ["policy"]},
    {"id": "kettle", "question": "My kettle does not heat", "relevant_sources": ["tickets/tickets.jsonl#T-1"],
     "filters": {"doc_type": ["ticket"]}, "tags": ["ticket"]},
]


def test_eval_retrieval_compares_every_mode(runner: CliRunner, tiny_index: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join(json.dumps(case) + "\n" for case in SUITE), encoding="utf-8")
    out = tmp_path / "results" / "retrieval.json"
    result = rag(runner, "eval", "retrieval", str(suite), "--index", str(tiny_index), "--mode", "all", "--k", "3",
                 "--out", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert list(report["modes"]) == ["dense", "bm25", "hybrid"] and report["mode"] == "hybrid"
    assert report["metrics"]["questions"] == 3 and report["k"] == 3
    assert [item["id"] for item in report["items"]] == ["returns", "shipping", "kettle"]
    for mode in report["modes"].values():
        assert {"metrics", "by_tag", "items"} <= set(mode) and len(mode["items"]) == 3
        assert 0.0 <= mode["metrics"]["mrr"] <= 1.0
    kettle = report["modes"]["bm25"]["items"][2]
    assert kettle["first_relevant_rank"] == 1 and [d["source"] for d in kettle["retrieved"]] == [
        "tickets/tickets.jsonl#T-1"]  # the suite's filter was applied
    assert "Retrieval at k=3" in result.stdout and "mrr" in result.stdout
    assert all(mode in result.stdout for mode in ("dense", "bm25", "hybrid"))
    assert f"results written to {out}" in " ".join(result.stdout.split())


def test_eval_retrieval_refuses_an_unknown_mode(runner: CliRunner, tiny_index: Path, tmp_path: Path) -> None:
    suite = tmp_path / "suite.jsonl"
    suite.write_text(json.dumps(SUITE[0]) + "\n", encoding="utf-8")
    result = rag(runner, "eval", "retrieval", str(suite), "--index", str(tiny_index), "--mode", "sparse")
    assert result.exit_code == 2 and "'sparse' is not a mode" in result.stderr
