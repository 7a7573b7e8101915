"""The offline judge: its text reading, its model, its plumbing (hash embedder, fast) and its verdicts (real MiniLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eval.claims import split_claims
from eval.faithfulness_set import labelled_set, split_of
from eval.judges import JudgeInput, get_judge
from eval.judges._offline_model import LogisticModel, fit_logistic
from eval.judges._offline_text import entities, mentions, negation_scopes, segments
from eval.judges.offline import OfflineJudge, build
from eval.metrics import roc_auc
from rag.embedders import HashEmbedder
from rag.errors import ConfigError, InputError

RETURNS = ("Return window\n\nYou can return most items within 45 days of the delivery date. Opened electronics such as "
           "the Aurora X2 headlamp carry a 15% restocking fee.",)
BATTERY = ("What battery does it use?\n\nOne removable 18650 lithium-ion cell, 3500 mAh, included. The Aurora X2 "
           "does not accept AA or AAA batteries.",)
ZH_RETURNS = ("亚洲试点订单同样适用 45 天退货期（自签收日起算）。但退货运费由顾客承担，商品有质量问题时除外。",)
# Answer-level ROC AUC of the weakest claim's score on the held-out hand-written items, measured 0.767
# (offline@1, threshold 0.4115; rag.grounding.verify's own ranking: 0.745). The floor leaves room for noise.
HELD_OUT_AUC_FLOOR = 0.72


def item(answer: str, contexts: tuple[str, ...] = RETURNS, question: str = "How long can I return things?") -> JudgeInput:
    return JudgeInput("t", question, contexts, answer)


# --- reading text ---------------------------------------------------------------------------------

def test_quantities_keep_their_units() -> None:
    assert mentions("within 45 days, a 45% fee") == [(45.0, "day"), (45.0, "%")]
    assert mentions("Standard 5–10 business days, free from CA$150") == [(5.0, "day"), (10.0, "day"), (150.0, "$")]
    assert mentions("two and a half hours, or half an hour") == [(2.5, "hour"), (30.0, "minute")]
    assert mentions("退货期 45 天，运费 39 美元") == [(45.0, "day"), (39.0, "$")]
    assert mentions("the Volt 300 shows E05; call 1-800-555-0142 [1]") == []  # names, codes, phones, markers


def test_names_are_found_with_their_sort() -> None:
    found = entities("Spare cells are sold as the NH-YPAR; Ridge members in Canada email warranty@nordhaven.example.")
    assert found == {"nh-ypar": "code", "ridge": "tier", "canada": "place", "warranty@nordhaven.example": "email"}
    assert entities("我们试点配送到香港和日本") == {"香港": "zh-place", "日本": "zh-place"}


def test_negation_scopes_skip_a_reply_and_words_that_only_look_negative() -> None:
    assert negation_scopes("No, the Aurora X2 does not accept AA batteries.") == ["accept AA batteries"]
    assert negation_scopes("Yes, you can.") == []
    assert negation_scopes("进口关税不需要收件人支付") == ["需要收件"]
    assert negation_scopes("不过寄回的运费要您自己承担") == []


def test_list_items_keep_the_lead_in_that_negates_them() -> None:
    units = segments("Nordy cannot:\n  - approve refunds;\n  - waive fees.\nFor those, ask an agent.")
    assert [(u.text, u.lead) for u in units] == [("Nordy cannot:", ""), ("approve refunds;", "Nordy cannot:"),
                                               ("waive fees.", "Nordy cannot:"), ("For those, ask an agent.", "")]


# --- the model ------------------------------------------------------------------------------------

def test_logistic_fit_separates_and_auc_counts_ties_half() -> None:
    rows = np.array([[0.0], [0.2], [0.8], [1.0]])
    weights, bias = fit_logistic(rows, [0, 0, 1, 1], l2=0.01)
    assert weights[0] > 0 and bias < 0
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0
    assert roc_auc([0.9, 0.1], [False, True]) == 0.0
    assert roc_auc([0.5, 0.5], [False, True]) == 0.5


def test_weights_round_trip_and_a_missing_file_says_how_to_fix_it(tmp_path: Path) -> None:
    model = LogisticModel(7, ("a", "b"), (1.5, -2.0), 0.25, 0.4, {"seed": 0})
    model.save(tmp_path / "w.json")
    assert LogisticModel.load(tmp_path / "w.json") == model
    with pytest.raises(ConfigError, match=r"python -m eval.judges.offline --train"):
        LogisticModel.load(tmp_path / "missing.json")


# --- plumbing, with the hash embedder -------------------------------------------------------------

def test_one_judgement_per_item_with_the_answer_claims() -> None:
    judge = build(embedder=HashEmbedder())
    answers = ["You can return most items within 45 days of the delivery date [1]. Opened electronics carry a 15% fee [1].",
               "Returns take 45 days."]
    calls: list[tuple[int, int]] = []
    judgements = judge.judge([item(a) for a in answers], progress=lambda done, total: calls.append((done, total)))
    assert judge.id == "offline@1" and calls[-1] == (2, 2)
    for answer, judgement in zip(answers, judgements, strict=True):
        assert [c.claim for c in judgement.claims] == split_claims(answer)
        assert judgement.relevance is not None and 0.0 <= judgement.relevance <= 1.0
        assert all(0.0 <= c.score <= 1.0 and c.reason for c in judgement.claims)
        assert {"min_claim_score", "mean_lexical", "mean_numbers"} <= set(judgement.details)


def test_an_empty_answer_makes_no_claim() -> None:
    judgement = build(embedder=HashEmbedder()).judge([item("")])[0]
    assert judgement.claims == () and judgement.faithfulness is None and judgement.relevance is None


def test_hard_checks_do_not_need_the_embedder() -> None:
    judge = build(embedder=HashEmbedder())
    wrong = judge.judge([item("You can return most items within 30 days of the delivery date [1]."),
                         item("可以，亚洲试点订单适用 60 天退货期 [1]。", ZH_RETURNS, "亚洲订单可以退货吗？")])
    assert [j.faithfulness for j in wrong] == [0.0, 0.0]
    assert "30 day is not stated in any passage" in wrong[0].claims[0].reason


def test_the_threshold_decides_and_the_registry_builds_it() -> None:
    answer = [item("You can return most items within 45 days of the delivery date [1].")]
    assert build(embedder=HashEmbedder(), threshold=0.0).judge(answer)[0].faithfulness == 1.0
    assert build(embedder=HashEmbedder(), threshold=1.01).judge(answer)[0].faithfulness == 0.0
    assert isinstance(get_judge("offline", embedder=HashEmbedder(), threshold=0.5), OfflineJudge)
    with pytest.raises(InputError, match="judge 'offline'"):
        get_judge("offline", temperature=0.2)


# --- verdicts, with the real MiniLM ---------------------------------------------------------------

@pytest.fixture(scope="module")
def judge(minilm: object) -> OfflineJudge:
    return build(embedder=minilm)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_supported_claim_passes(judge: OfflineJudge) -> None:
    judgement = judge.judge([item("You can return most items within 45 days of the delivery date [1].")])[0]
    assert judgement.faithfulness == 1.0 and judgement.relevance is not None and judgement.relevance > 0.5


@pytest.mark.slow
@pytest.mark.parametrize(("answer", "contexts", "wrong"), [
    ("You can return most items within 30 days of the delivery date [1].", RETURNS,
     "You can return most items within 30 days of the delivery date."),
    ("Yes, an opened Tidal BT5 speaker carries a 15% restocking fee [1].", RETURNS,
     "Yes, an opened Tidal BT5 speaker carries a 15% restocking fee."),
    ("Yes, the Aurora X2 accepts AAA batteries as well as its 18650 cell [1].", BATTERY,
     "Yes, the Aurora X2 accepts AAA batteries as well as its 18650 cell."),
    ("You can return most items within 45 days of the delivery date [1]. Refunds are paid out in cash at our "
     "Portland store.", RETURNS, "Refunds are paid out in cash at our Portland store."),
], ids=["number", "product", "negation", "added-claim"])
def test_an_unfaithful_claim_is_listed(judge: OfflineJudge, answer: str, contexts: tuple[str, ...], wrong: str) -> None:
    judgement = judge.judge([item(answer, contexts)])[0]
    assert judgement.unsupported_claims == [wrong]


@pytest.mark.slow
def test_chinese_answers_are_judged(judge: OfflineJudge) -> None:
    right, wrong, flipped = judge.judge([
        item("可以，亚洲试点订单同样适用 45 天退货期，自签收日起算 [1]。", ZH_RETURNS, "亚洲订单可以退货吗？"),
        item("可以，亚洲试点订单同样适用 60 天退货期，自签收日起算 [1]。", ZH_RETURNS, "亚洲订单可以退货吗？"),
        item("退货运费不由顾客承担 [1]。", ZH_RETURNS, "退货运费谁付？"),
    ])
    assert right.faithfulness == 1.0 and wrong.faithfulness == 0.0 and flipped.faithfulness == 0.0
    assert right.relevance is not None and right.relevance > 0


@pytest.mark.slow
def test_judgements_are_deterministic(minilm: object) -> None:
    items = [item("You can return most items within 45 days of the delivery date [1]. Refunds are paid in cash."),
             item("退货运费不由顾客承担 [1]。", ZH_RETURNS, "退货运费谁付？")]
    first = build(embedder=minilm).judge(items)  # type: ignore[arg-type]
    assert build(embedder=minilm).judge(items) == first  # type: ignore[arg-type]


@pytest.mark.slow
def test_held_out_hand_written_items_are_ranked_above_the_floor(judge: OfflineJudge) -> None:
    items = [i for i in labelled_set() if i["origin"] == "hand" and split_of(i["id"]) == "held-out"]
    judgements = judge.judge([JudgeInput(i["id"], i["question"], tuple(i["contexts"]), i["answer"]) for i in items])
    scores = [j.details.get("min_claim_score", 1.0) for j in judgements]
    assert roc_auc(scores, [i["label"] == "faithful" for i in items]) >= HELD_OUT_AUC_FLOOR
