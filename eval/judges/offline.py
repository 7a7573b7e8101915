"""The offline judge: claim-level faithfulness from lexical, numeric, name, polarity and MiniLM evidence.

No LLM and no NLI model (none ships offline). Each claim of the answer (`eval.claims.split_claims`)
is located in the passages and checked (`_offline_features`); a logistic regression over that
evidence (`_offline_model`, weights in `offline_weights.json`) gives P(supported), multiplied by VETO
when a hard check contradicts the claim: a quantity not stated near its evidence, a name that
conflicts with it, or a flipped negation. A claim is supported when the result is at least the
threshold chosen on the training split (balanced accuracy of "some claim below it" per answer).
A claim with no content word ("Yes.") is counted as supported: there is nothing to look up.

Relevance is the MiniLM cosine of the question with the answer (markers removed), mapped linearly
from [RELEVANCE_FLOOR, RELEVANCE_CEILING] onto [0, 1] and clipped. On the faithfulness set the floor,
0.15, is about the 75th percentile of a question's cosine with an answer to another question, and the
ceiling, 0.65, about the 70th percentile of direct answers (median 0.55). For Chinese, which MiniLM
does not read, it is the share of the question's terms (jieba words and character bigrams) the answer
repeats. `details` carries the mean of each feature over the answer's claims and `min_claim_score`,
the weakest claim's score: the answer-level score to rank by.

    python -m eval.judges.offline --train      # regenerate offline_weights.json (deterministic, ~1 min)

The weights are fitted on `eval.faithfulness_set.labelled_set(seed=0)`, ids of the "train" split only;
`python -m bench.judge` reports the held-out split.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from eval.claims import split_claims
from eval.judges._offline_features import FEATURES, ClaimEvidence, PassageSet, TermCache, claim_evidence
from eval.judges._offline_model import WEIGHTS_PATH, LogisticModel, fit_logistic
from eval.judges._offline_text import has_cjk, mentions, normalise
from eval.judges.base import ClaimVerdict, JudgeInput, Judgement, Progress
from eval.metrics import roc_auc
from rag.grounding import MARKER
from rag.tokenizer import TextTokenizer

__all__ = ["RELEVANCE_CEILING", "RELEVANCE_FLOOR", "VERSION", "OfflineJudge", "build", "train"]

VERSION = 1  # bump with any change of features or weights: reports refuse to compare different versions
VETO = 0.2  # factor on P(supported) of a claim a hard check contradicts: it always ends below the threshold
RELEVANCE_FLOOR, RELEVANCE_CEILING = 0.15, 0.65
BATCH_ITEMS = 64  # items whose claims, evidence, questions and answers are embedded in one call
L2 = 1.0
Vectors = dict[str, npt.NDArray[np.float32]]


class TextEmbedder(Protocol):
    """All the judge needs of an embedder: L2-normalised rows, one per text."""

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


class OfflineJudge:
    """Judges faithfulness claim by claim without an LLM; deterministic for the same embedder and weights."""

    def __init__(self, *, embedder: TextEmbedder | None = None, model: LogisticModel | None = None,
                 threshold: float | None = None, tokenizer: TextTokenizer | None = None) -> None:
        self._embedder = embedder
        self._model = model or LogisticModel.load()
        self.threshold = self._model.threshold if threshold is None else threshold
        self._terms = TermCache(tokenizer or TextTokenizer())

    @property
    def id(self) -> str:
        return f"offline@{self._model.version}"

    def judge(self, items: Sequence[JudgeInput], progress: Progress | None = None) -> list[Judgement]:
        out: list[Judgement] = []
        for start in range(0, len(items), BATCH_ITEMS):
            batch = items[start : start + BATCH_ITEMS]
            evidence, vectors = self._evidence(batch)
            out += [self._judgement(item, claims, vectors) for item, claims in zip(batch, evidence, strict=True)]
            if progress is not None:
                progress(len(out), len(items))
        return out

    def evidence(self, items: Sequence[JudgeInput]) -> list[list[ClaimEvidence]]:
        """Every claim's evidence, embedding similarity included: what the model reads (and is trained on)."""
        out: list[list[ClaimEvidence]] = []
        for start in range(0, len(items), BATCH_ITEMS):
            out += self._evidence(items[start : start + BATCH_ITEMS])[0]
        return out

    def _evidence(self, items: Sequence[JudgeInput]) -> tuple[list[list[ClaimEvidence]], Vectors]:
        passages: dict[tuple[str, ...], PassageSet] = {}
        evidence = []
        for item in items:
            if item.contexts not in passages:
                passages[item.contexts] = PassageSet.of(item.contexts, self._terms)
            evidence.append(self._claims(item, passages[item.contexts]))
        wanted = [text for claims in evidence for c in claims if c.checkable and not c.values["cjk"]
                  for text in (c.read, *c.candidates)]
        wanted += [t for i in items if not has_cjk(i.question + i.answer) for t in (i.question, _plain(i.answer))]
        vectors = self._embed(wanted)
        return [[_with_similarity(c, vectors) for c in claims] for claims in evidence], vectors

    def _claims(self, item: JudgeInput, passages: PassageSet) -> list[ClaimEvidence]:
        claims, given = [normalise(c) for c in split_claims(item.answer)], mentions(item.question)
        return [claim_evidence(c, passages, self._terms, before=claims[i - 1] if i and _continues(c) else "",
                               given=given) for i, c in enumerate(claims)]

    def _embed(self, texts: Sequence[str]) -> Vectors:
        unique = list(dict.fromkeys(t for t in texts if t.strip()))
        if not unique:
            return {}
        if self._embedder is None:
            from rag.factory import build_embedder  # the packaged MiniLM, loaded on first use
            from rag.settings import Settings

            self._embedder = build_embedder(Settings())
        return dict(zip(unique, self._embedder.embed_documents(unique), strict=True))

    def _judgement(self, item: JudgeInput, claims: list[ClaimEvidence], vectors: Vectors) -> Judgement:
        checked = [c for c in claims if c.checkable]
        scores = iter(_scores(self._model, checked).tolist())
        verdicts = []
        for claim in claims:
            score = next(scores) if claim.checkable else 1.0
            verdicts.append(ClaimVerdict(claim.claim, score >= self.threshold, round(score, 4), _reason(claim, score)))
        return Judgement(tuple(verdicts), self._relevance(item, vectors), _details(checked, verdicts))

    def _relevance(self, item: JudgeInput, vectors: Vectors) -> float | None:
        answer = _plain(item.answer)
        if not answer:
            return None
        if has_cjk(item.question + item.answer):
            asked = self._terms(item.question)
            return round(len(asked & self._terms(answer)) / len(asked), 4) if asked else None
        cosine = float(vectors[item.question] @ vectors[answer])
        return round(min(1.0, max(0.0, (cosine - RELEVANCE_FLOOR) / (RELEVANCE_CEILING - RELEVANCE_FLOOR))), 4)


def _scores(model: LogisticModel, claims: Sequence[ClaimEvidence]) -> npt.NDArray[np.float64]:
    """P(supported) of each claim, times VETO when a hard check contradicts it."""
    rows = np.array([[c.values[f] for f in model.features] for c in claims], dtype=np.float64)
    rows = rows.reshape(-1, len(model.features))
    vetoed = np.array([_vetoed(c.values) for c in claims], dtype=bool)
    out: npt.NDArray[np.float64] = model.probabilities(rows) * np.where(vetoed, VETO, 1.0)
    return out


def _vetoed(values: dict[str, float]) -> bool:
    """A quantity missing near the evidence, a name in conflict with it, or a flipped polarity."""
    flipped = values["negation_added"] or values["negation_dropped"]
    return values["numbers"] < 1 or values["entities"] < 1 or bool(flipped)


def _plain(answer: str) -> str:
    """The answer without its citation markers, as the reader sees the words."""
    return re.sub(r"\s+([.,!?;:])", r"\1", " ".join(MARKER.sub("", answer).split()))


def _continues(claim: str) -> bool:
    """A claim split off after ", which" / ", and" / ";" starts in lower case and leans on the claim before it."""
    return claim[:1].islower()


def _with_similarity(claim: ClaimEvidence, vectors: Vectors) -> ClaimEvidence:
    if claim.values["cjk"] or claim.read not in vectors:
        return claim
    mine = vectors[claim.read]
    best = max((float(mine @ vectors[t]) for t in claim.candidates if t in vectors), default=0.0)
    return replace(claim, values={**claim.values, "embedding": round(max(0.0, best), 6)})


def _reason(claim: ClaimEvidence, score: float) -> str:
    """The strongest piece of evidence against the claim, or what supports it."""
    values = claim.values
    if not claim.checkable:
        return "no content word to check (a bare yes/no): counted as supported"
    if claim.missing_numbers:
        value, unit = claim.missing_numbers[0]
        where = "near its best match" if values["numbers_any"] == 1.0 else "in any passage"
        return f"p={score:.2f}: {f'{value:g} {unit}'.strip()} is not stated {where}"
    if claim.missing_entities:
        return f"p={score:.2f}: '{claim.missing_entities[0]}' conflicts with the names near its best match"
    if values["negation_added"] or values["negation_dropped"]:
        side = "the claim negates what the passage states" if values["negation_added"] else "the passage negates it"
        return f"p={score:.2f}: polarity differs ({side}): «{claim.evidence[:100]}»"
    share = values["lexical_zh"] if values["cjk"] else values["lexical"]
    similarity = f", similarity {values['embedding']:.2f}" if not values["cjk"] else ""
    return f"p={score:.2f}: {share:.0%} of its terms in one place{similarity}: «{claim.evidence[:100]}»"


def _details(checked: list[ClaimEvidence], verdicts: list[ClaimVerdict]) -> dict[str, float]:
    """Mean feature values over the checkable claims, and the weakest claim's score (the ranking score)."""
    details = {f"mean_{f}": round(float(np.mean([c.values[f] for c in checked])), 4) for f in FEATURES if checked}
    if verdicts:
        details["min_claim_score"] = min(v.score for v in verdicts)
    return details


def build(*, embedder: TextEmbedder | None = None, threshold: float | None = None) -> OfflineJudge:
    """The registry's factory, `get_judge("offline", threshold=0.5)`; the embedder defaults to the packaged MiniLM."""
    return OfflineJudge(embedder=embedder, threshold=threshold)


def train(*, seed: int = 0, embedder: TextEmbedder | None = None) -> LogisticModel:
    """Fit the weights and choose the threshold on the train split of the labelled set (deterministic)."""
    from eval.faithfulness_set import SUITE, labelled_set, split_of

    items = [i for i in labelled_set(SUITE, seed) if split_of(i["id"]) == "train"]
    blank = LogisticModel(VERSION, FEATURES, (0.0,) * len(FEATURES), 0.0, 0.5)
    inputs = [JudgeInput(i["id"], i["question"], tuple(i["contexts"]), i["answer"]) for i in items]
    evidence = OfflineJudge(embedder=embedder, model=blank).evidence(inputs)
    claims, labels, owner = _claim_labels(items, evidence)
    weights, bias = fit_logistic(np.array([[c.values[f] for f in FEATURES] for c in claims]), labels, l2=L2)
    model = LogisticModel(VERSION, FEATURES, tuple(float(w) for w in weights), bias, 0.5)
    scores = _scores(model, claims)
    threshold, balanced = _best_threshold(scores, owner, [i["label"] == "unfaithful" for i in items])
    training = {"suite": "eval/suites/faithfulness.jsonl", "seed": seed, "split": "train", "answers": len(items),
                "claims": len(claims), "l2": L2, "veto": VETO, "balanced_accuracy": round(balanced, 4),
                "claim_auc": round(roc_auc(scores.tolist(), [bool(v) for v in labels]), 4)}
    return replace(model, threshold=threshold, training=training)


def _claim_labels(items: list[dict[str, Any]], evidence: list[list[ClaimEvidence]]
                  ) -> tuple[list[ClaimEvidence], list[int], list[int]]:
    """The checkable claims, 1 when supported (not among the item's unsupported_claims), and their item's index."""
    claims, labels, owner = [], [], []
    for number, (item, found) in enumerate(zip(items, evidence, strict=True)):
        wrong = {normalise(c) for c in item.get("unsupported_claims", [])}
        for claim in (c for c in found if c.checkable):
            claims.append(claim)
            labels.append(int(claim.claim not in wrong))
            owner.append(number)
    return claims, labels, owner


def _best_threshold(scores: npt.NDArray[np.float64], owner: list[int], unfaithful: list[bool]) -> tuple[float, float]:
    """The threshold with the best balanced accuracy of "some claim below it" against the answer labels."""
    weakest = np.ones(len(unfaithful))
    for score, number in zip(scores, owner, strict=True):
        weakest[number] = min(weakest[number], score)
    truth = np.asarray(unfaithful)
    best, best_value = 0.5, -1.0
    for candidate in np.unique(np.round(weakest, 3)):
        flagged = weakest < candidate + 0.0005
        value = float((flagged[truth].mean() + (~flagged[~truth]).mean()) / 2)
        if value > best_value + 1e-12:
            best, best_value = float(candidate) + 0.0005, value
    return round(best, 4), best_value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.judges.offline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="fit the weights on the train split and write them")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated corruptions (default 0)")
    options = parser.parse_args(argv)
    if not options.train:
        parser.print_help()
        return 2
    model = train(seed=options.seed)
    model.save(WEIGHTS_PATH)
    print(f"wrote {WEIGHTS_PATH}: threshold {model.threshold}, {model.training}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
