"""`rag eval score`: judge answers that already exist (logged production answers), no pipeline run.

Input: JSONL, one {"id", "question", "contexts": [str, ...], "answer"} per line; other keys are kept
out of scoring. A line may carry a human `label` ("faithful" | "unfaithful"): the summary then says
how often the judge agrees with it (accuracy at the verdict threshold, and ROC AUC of faithfulness).
Output: {"format", "input", "judge", "summary", "items": [{"id", "faithfulness", "verdict",
"unsupported_claims", "claims", "answer_relevance", ...}]}.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.judges.base import Judge, JudgeInput, Progress
from eval.metrics import roc_auc
from eval.scoring import judge_scores, metric_mean
from eval.suite import read_jsonl
from rag.errors import InputError

__all__ = ["FORMAT", "load_answers", "score_answers"]

FORMAT = "rag-eval-scores/1"
_LABELS = ("faithful", "unfaithful")


def load_answers(path: Path) -> list[dict[str, Any]]:
    """The answers to score, each line checked, with its line number in every error."""
    items, seen = [], set()
    for where, data in read_jsonl(path, example='{"id": "a1", "question": "...", "contexts": ["..."], "answer": "..."}'):
        for key in ("id", "question", "answer"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise InputError(f"{where}: {key!r} must be a non-empty string")
        contexts = data.get("contexts")
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            raise InputError(f"{where}: 'contexts' must be a list of strings (the passages the answer was written "
                             "from; [] when there were none)")
        if data.get("label") is not None and data["label"] not in _LABELS:
            raise InputError(f"{where}: 'label' must be faithful or unfaithful, got {data['label']!r}")
        if data["id"] in seen:
            raise InputError(f"{where}: duplicate id {data['id']!r}: give every answer its own id")
        seen.add(data["id"])
        items.append(data)
    return items


def score_answers(answers: Sequence[Mapping[str, Any]], judge: Judge, *, source: str, faithful_at: float = 1.0,
                  progress: Progress | None = None) -> dict[str, Any]:
    """The judge's verdict on every answer, and a summary that states the judge."""
    inputs = [JudgeInput(a["id"], a["question"], tuple(a["contexts"]), a["answer"]) for a in answers]
    items = []
    for answer, judgement in zip(answers, judge.judge(inputs, progress), strict=True):
        kept = {key: answer[key] for key in ("id", "question", "contexts", "answer", "label", "kind") if key in answer}
        items.append({**kept, **judge_scores(judgement, faithful_at)})
    return {"format": FORMAT, "created": datetime.now(UTC).isoformat(timespec="seconds"), "input": source,
            "judge": {"id": judge.id, "faithful_at": faithful_at}, "summary": _summary(items, judge.id), "items": items}


def _summary(items: Sequence[Mapping[str, Any]], judge_id: str) -> dict[str, Any]:
    verdicts = {"faithful": 0, "unfaithful": 0, "no_claims": 0, "errors": 0}
    for item in items:
        verdicts["errors" if item.get("judge_error") else item["verdict"] or "no_claims"] += 1
    metrics = {name: metric_mean(items, name, judge_id) for name in ("faithfulness", "answer_relevance")}
    summary = {"items": len(items), "metrics": metrics, "verdicts": verdicts}
    labelled = [i for i in items if i.get("label") in _LABELS and i.get("faithfulness") is not None]
    if labelled:
        summary["agreement"] = _agreement(labelled)
    return summary


def _agreement(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How often the verdict matches the human label, and the ROC AUC of faithfulness as a faithful-detector."""
    right = sum(i["verdict"] == i["label"] for i in items)
    auc = roc_auc([i["faithfulness"] for i in items], [i["label"] == "faithful" for i in items])
    return {"n": len(items), "accuracy": round(right / len(items), 4), "auc": None if math.isnan(auc) else round(auc, 4)}
