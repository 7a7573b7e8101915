"""`rag eval run`: the pipeline over a suite, with bounded concurrency, resumable, then scored.

Each finished case is appended at once to a checkpoint beside the output (`run.json.partial`, one
JSON line per case after a header with the suite's hash and the versions answered with). A run that
is stopped (Ctrl-C, a crash, a dead LLM server) continues where it stopped when started again with
the same suite and versions; with other versions it refuses, so no run mixes two configurations.
The checkpoint is removed once `run.json` is written.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from eval.judges.base import Judge, JudgeInput, Judgement, Progress
from eval.retrieval import SourceMatcher, evaluate
from eval.scoring import answer_scores, judge_scores, summarize
from eval.suite import SuiteCase
from rag.errors import InputError, RagError
from rag.factory import Runtime
from rag.settings import Settings

__all__ = ["FORMAT", "Checkpoint", "answer_cases", "finish_run", "runtime_versions", "suite_info"]

FORMAT = "rag-eval-run/1"
_MATCHED_VERSIONS = ("index", "prompt", "condense_prompt", "model", "embedding_model", "retrieval_mode", "top_k",
                     "structured_output", "strictness")


def suite_info(path: Path, cases: Sequence[SuiteCase], selected: int) -> dict[str, Any]:
    return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "cases": len(cases),
            "selected": selected}


def runtime_versions(runtime: Runtime, settings: Settings) -> dict[str, Any]:
    """Everything an answer depends on, recorded with the run and checked on resume."""
    pipeline = runtime.pipeline
    try:
        package = version("support-rag")
    except PackageNotFoundError:
        package = "unknown"
    return {"index": runtime.index.version, "prompt": pipeline.prompt.id, "condense_prompt": pipeline.condense_prompt.id,
            "model": runtime.llm.model, "llm_base_url": runtime.llm.base_url,
            "embedding_model": runtime.index.embedding_model, "retrieval_mode": settings.retrieval.mode,
            "top_k": settings.retrieval.top_k, "structured_output": settings.llm.structured_output,
            "strictness": settings.answer.strictness, "rag": package}


class Checkpoint:
    """The cases finished so far, as JSON lines after a header naming the suite and versions."""

    def __init__(self, out: Path, suite_sha256: str, versions: Mapping[str, Any], *, restart: bool = False) -> None:
        self.path = out.with_name(out.name + ".partial")
        self.header: dict[str, Any] = {"checkpoint": FORMAT, "suite_sha256": suite_sha256, "versions": dict(versions)}
        self.done: dict[str, dict[str, Any]] = {} if restart else self._load()
        if restart or not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.header, ensure_ascii=False) + "\n", encoding="utf-8")

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        changed = ["suite"] if header.get("suite_sha256") != self.header["suite_sha256"] else []
        changed += [key for key in _MATCHED_VERSIONS
                    if header.get("versions", {}).get(key) != self.header["versions"].get(key)]
        if changed:
            raise InputError(f"{self.path} holds a run of another suite or configuration ({', '.join(changed)} "
                             "changed): pass --restart to start over, or restore the settings to resume it")
        items = {}
        for line in lines[1:]:
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: that case is answered again
            items[item["id"]] = item
        return items

    def add(self, item: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(item, ensure_ascii=False) + "\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


async def answer_cases(runtime: Runtime, cases: Sequence[SuiteCase], *, concurrency: int,
                       on_done: Callable[[dict[str, Any]], None]) -> None:
    """Ask every case, at most `concurrency` at a time; each item goes to `on_done` as it finishes."""
    if concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {concurrency}")
    gate = asyncio.Semaphore(concurrency)

    async def one(case: SuiteCase) -> None:
        async with gate:
            on_done(await answer_case(runtime, case))

    await asyncio.gather(*(one(case) for case in cases))


async def answer_case(runtime: Runtime, case: SuiteCase) -> dict[str, Any]:
    """The case and what the pipeline made of it; a failure is recorded as the case's error, not raised."""
    item = case_fields(case)
    start = time.perf_counter()
    try:
        answer = await runtime.pipeline.ask(case.question, filters=case.filters, history=case.conversation)
    except RagError as exc:
        return {**item, "latency_ms": _ms_since(start), "error": f"{type(exc).__name__}: {exc}"}
    citations = [{"n": c.n, "source": c.source, "title": c.title, "score": c.score, "cited": c.cited,
                  "doc_type": c.doc_type, "text": c.text} for c in answer.citations]
    return {**item, "standalone_question": answer.standalone_question, "answer": answer.answer,
            "decision": answer.decision, "reason": answer.reason, "confidence": answer.confidence,
            "removed": list(answer.removed), "citations": citations, "model": answer.model,
            "timings_ms": answer.timings_ms, "latency_ms": _ms_since(start), "error": None}


def case_fields(case: SuiteCase) -> dict[str, Any]:
    """What the suite says about a case, as the run item's first fields."""
    return {"id": case.id, "question": case.question, "tags": list(case.tags),
            "conversation": [asdict(turn) for turn in case.conversation], "expected_decision": case.expected_decision,
            "reference_answer": case.reference_answer,
            "relevant_sources": None if case.relevant_sources is None else list(case.relevant_sources),
            "answer_contains": list(case.answer_contains), "must_not_contain": list(case.must_not_contain)}


def retrieval_scores(runtime: Runtime, cases: Sequence[SuiteCase], items: Mapping[str, Mapping[str, Any]],
                     k: int) -> dict[str, dict[str, float]]:
    """nDCG@k, recall@k and MRR@k of each case with sources, for the question retrieval saw (standalone)."""
    asked = [replace(case, question=items[case.id].get("standalone_question") or case.question)
             for case in cases if case.answerable]
    if not asked:
        return {}
    results = evaluate({"run": runtime.pipeline.retriever}, asked, k=k, aliases=runtime.index.store.duplicate_groups())
    names = {f"ndcg@{min(k, 10)}": f"ndcg@{min(k, 10)}", f"recall@{k}": f"recall@{k}", "mrr": f"mrr@{k}"}
    return {r.case.id: {out: round(r.scores[name], 4) for name, out in names.items()} for r in results.modes["run"].cases}


def finish_run(header: Mapping[str, Any], cases: Sequence[SuiteCase], items: Mapping[str, dict[str, Any]],
               retrieval: Mapping[str, Mapping[str, float]], judge: Judge, *, faithful_at: float = 1.0,
               aliases: Mapping[str, str] | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """The run document: every item scored by the suite, the judge and retrieval, then the summary."""
    ordered = [dict(items[case.id]) for case in cases]
    judged = [item for item in ordered if item.get("error") is None and item.get("decision") == "answer"]
    for item in ordered:
        item.update(judge_scores(Judgement(())))  # not judged (escalated, clarified, failed): every field None
    inputs = [JudgeInput(i["id"], i.get("standalone_question") or i["question"],
                         tuple(c["text"] for c in i["citations"]), i["answer"]) for i in judged]
    for item, judgement in zip(judged, judge.judge(inputs, progress), strict=True):
        item.update(judge_scores(judgement, faithful_at))
    matcher = SourceMatcher(aliases)
    for item in ordered:
        item.update(answer_scores(item, matcher))
        item.update(retrieval.get(item["id"], {}))
    extra = dict.fromkeys(next(iter(retrieval.values()), {}), f"retrieval ({header['versions']['retrieval_mode']})")
    return {"format": FORMAT, "created": datetime.now(UTC).isoformat(timespec="seconds"), **header,
            "judge": {"id": judge.id, "faithful_at": faithful_at},
            "summary": summarize(ordered, judge.id, extra), "items": ordered}


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
