"""Claim splitting: sentences, then the joints where a sentence states a second fact."""

from __future__ import annotations

import pytest

from eval.claims import split_claims


@pytest.mark.parametrize("answer,claims", [
    ("You have 45 days to return an item [1], and the refund goes to the original card [2].",
     ["You have 45 days to return an item", "the refund goes to the original card."]),
    ("Returns are free; exchanges cost $5 [1]. Opened speakers carry a 15% fee [2].",
     ["Returns are free", "exchanges cost $5.", "Opened speakers carry a 15% fee."]),
    ("The lamp runs 8 hours on high, but only with the 2,600 mAh battery.",
     ["The lamp runs 8 hours on high", "but only with the 2,600 mAh battery."]),
    ("退货期限为45天[1]，但是开封的音响收取15%的手续费[2]。", ["退货期限为45天", "但是开封的音响收取15%的手续费。"]),
    ("Yes, and free.", ["Yes, free."]),  # too short to stand alone: stays one claim
    ("Andrew said so.", ["Andrew said so."]),  # "and" inside a word is not a joint
    ("", []),
    ("[1] [2]", []),
])
def test_answers_split_into_atomic_claims_without_markers(answer: str, claims: list[str]) -> None:
    assert split_claims(answer) == claims
