"""How well the offline judge separates faithful from unfaithful answers, against the pipeline's own lexical check.

    python -m bench.judge [--seed 0] [--json FILE]

Data: `eval.faithfulness_set.labelled_set(seed)`: the hand-written items of eval/suites/faithfulness.jsonl
plus corruptions generated from their faithful answers (number, entity, negation, added-claim). Only ids
of the HELD-OUT split are scored (`split_of`: a hash of the item's group; the judge's weights and
threshold were fitted on the other half). Read the hand-written rows first: the generated corruptions
come from the same generator the judge was trained on, so their figures flatter it. The last section,
the train split's hand-written items, is in-sample: the gap between it and the first shows the overfitting.

Systems, answer-level (an answer is flagged unfaithful when any claim / sentence is unsupported):
  offline   eval.judges.offline at its trained threshold, with the real all-MiniLM-L6-v2; ranking score for
            the ROC AUC = the weakest claim's P(supported)
  baseline  rag.grounding.verify at its default threshold 0.6: faithful iff every sentence is supported;
            ranking score = the weakest sentence's term share (0 when a number is missing or it says nothing)

Rows: ROC AUC of the score against the label (1 = perfect, 0.5 = chance); accuracy and F1 with unfaithful
as the positive class; per unfaithful kind the share flagged; false alarms on faithful and paraphrased
answers; for the offline judge the share of flagged unfaithful answers whose flagged claims include an
annotated unsupported one ("located"); ms per item after the model is loaded (embedding included, a fresh
judge per section so no embedding is reused across sections). Ratio = offline / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from eval.faithfulness_set import SUITE, labelled_set, split_of
from eval.judges.base import JudgeInput
from eval.judges.offline import OfflineJudge
from eval.metrics import roc_auc
from rag.embedders import SentenceTransformerEmbedder
from rag.grounding import verify
from rag.tokenizer import TextTokenizer

UNFAITHFUL_KINDS = ("number", "entity", "negation", "added-claim", "subtle")
Item = dict[str, Any]


@dataclass
class Scored:
    """One system's verdicts on a section: per item the flag, the ranking score and what it flagged."""

    flagged: list[bool] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    located: list[bool] = field(default_factory=list)
    seconds: float = 0.0


def run_offline(judge: OfflineJudge, items: Sequence[Item]) -> Scored:
    inputs = [JudgeInput(i["id"], i["question"], tuple(i["contexts"]), i["answer"]) for i in items]
    start = time.perf_counter()
    judgements = judge.judge(inputs)
    out = Scored(seconds=time.perf_counter() - start)
    for item, judgement in zip(items, judgements, strict=True):
        out.flagged.append(bool(judgement.unsupported_claims))
        out.score.append(judgement.details.get("min_claim_score", 1.0))
        wrong = {unicodedata.normalize("NFKC", c) for c in item.get("unsupported_claims", [])}  # as the judge reads it
        out.located.append(bool(wrong & set(judgement.unsupported_claims)))
    return out


def run_baseline(tokenizer: TextTokenizer, items: Sequence[Item]) -> Scored:
    out = Scored()
    start = time.perf_counter()
    for item in items:
        result = verify(item["answer"], item["contexts"], tokenizer)
        sentences = result.sentences
        out.flagged.append(not sentences or not all(s.supported for s in sentences))
        scores = [s.support if s.numbers_found and (s.supported or s.support < 0.6) else 0.0 for s in sentences]
        out.score.append(min(scores, default=0.0))
    out.seconds = time.perf_counter() - start
    return out


def metrics(items: Sequence[Item], scored: Scored) -> dict[str, Any]:
    truth = [i["label"] == "unfaithful" for i in items]
    tp = sum(f and t for f, t in zip(scored.flagged, truth, strict=True))
    fp = sum(f and not t for f, t in zip(scored.flagged, truth, strict=True))
    fn = sum(t and not f for f, t in zip(scored.flagged, truth, strict=True))
    out: dict[str, Any] = {
        "auc": roc_auc(scored.score, [not t for t in truth]),
        "accuracy": sum(f == t for f, t in zip(scored.flagged, truth, strict=True)) / len(items),
        "f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        "ms_per_item": 1000 * scored.seconds / len(items),
    }
    for kind in (*UNFAITHFUL_KINDS, "faithful", "paraphrase"):
        flags = [f for f, i in zip(scored.flagged, items, strict=True) if i["kind"] == kind]
        out[kind] = (sum(flags), len(flags))
    if scored.located:
        hits = [loc for loc, f, t in zip(scored.located, scored.flagged, truth, strict=True) if f and t]
        out["located"] = (sum(hits), len(hits))
    return out


def table(title: str, items: Sequence[Item], ours: dict[str, Any], base: dict[str, Any]) -> str:
    faithful = sum(i["label"] == "faithful" for i in items)
    lines = [f"{title}  (n={len(items)}: {faithful} faithful, {len(items) - faithful} unfaithful)",
             f"  {'':28}{'offline':>16}{'baseline':>16}{'ratio':>9}"]
    for key, label in (("auc", "ROC AUC"), ("accuracy", "accuracy"), ("f1", "F1 (unfaithful = positive)")):
        lines.append(f"  {label:28}{ours[key]:>16.3f}{base[key]:>16.3f}{_ratio(ours[key], base[key]):>9}")
    for kind in UNFAITHFUL_KINDS:
        if ours[kind][1]:
            lines.append(f"  {'detected: ' + kind:28}{_share(ours[kind]):>16}{_share(base[kind]):>16}"
                         f"{_ratio(_rate(ours[kind]), _rate(base[kind])):>9}")
    for kind in ("faithful", "paraphrase"):
        if ours[kind][1]:
            lines.append(f"  {'false alarms: ' + kind:28}{_share(ours[kind]):>16}{_share(base[kind]):>16}"
                         f"{_ratio(_rate(ours[kind]), _rate(base[kind])):>9}")
    if "located" in ours:
        lines.append(f"  {'located (flagged claim right)':28}{_share(ours['located']):>16}{'-':>16}{'':>9}")
    lines.append(f"  {'ms / item':28}{ours['ms_per_item']:>16.1f}{base['ms_per_item']:>16.2f}"
                 f"{_ratio(ours['ms_per_item'], base['ms_per_item']):>9}")
    return "\n".join(lines)


def _rate(pair: tuple[int, int]) -> float:
    return pair[0] / pair[1] if pair[1] else float("nan")


def _share(pair: tuple[int, int]) -> str:
    return f"{pair[0]}/{pair[1]} {_rate(pair):.0%}" if pair[1] else "-"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.judge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corruptions (default 0, as trained)")
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    everything = labelled_set(SUITE, options.seed)
    held_out = [i for i in everything if split_of(i["id"]) == "held-out"]
    sections = {
        "HELD-OUT, hand-written": [i for i in held_out if i["origin"] == "hand"],
        "held-out, generated corruptions + their sources": [
            i for i in held_out if i["origin"] == "generated" or (i["origin"] == "hand" and i["label"] == "faithful")],
        "held-out, all": held_out,
        "train split, hand-written (IN-SAMPLE: weights and threshold were fitted on these)": [
            i for i in everything if i["origin"] == "hand" and split_of(i["id"]) == "train"],
    }
    embedder = SentenceTransformerEmbedder()
    tokenizer = TextTokenizer()
    warm = OfflineJudge(embedder=embedder, tokenizer=tokenizer)
    warm.judge([JudgeInput("warm", "How long?", ("Return items within 45 days.", "退货期 45 天。"), "45 days. 45 天。")])
    print(f"judge {warm.id} at threshold {warm.threshold} | baseline rag.grounding.verify threshold 0.6 | "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}\n")
    report: dict[str, Any] = {"judge": warm.id, "threshold": warm.threshold, "seed": options.seed, "sections": {}}
    for title, items in sections.items():
        ours = metrics(items, run_offline(OfflineJudge(embedder=embedder, tokenizer=tokenizer), items))
        base = metrics(items, run_baseline(tokenizer, items))
        print(table(title, items, ours, base) + "\n")
        report["sections"][title] = {"offline": ours, "baseline": base}
    if options.json:
        with open(options.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
