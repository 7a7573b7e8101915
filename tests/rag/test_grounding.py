"""Sentence-level verification and support spans, on hand-made passages."""

from __future__ import annotations

from rag.grounding import best_span, split_sentences, verify
from rag.tokenizer import TextTokenizer

TOKENS = TextTokenizer()
RETURNS = ("Returns policy 2025. You can return most items within 45 days of delivery. "
           "Opened electronics carry a 15% restocking fee.")
SHIPPING = "Standard shipping takes 3 to 5 business days. Orders over $75 ship free."


def test_sentences_keep_their_markers_in_english_and_chinese() -> None:
    assert split_sentences("You have 45 days [1]. It is free [2][3]. Done") == [
        "You have 45 days [1].", "It is free [2][3].", "Done"]
    assert split_sentences("退货期限是45天。[1] 运费39美元。") == ["退货期限是45天。[1]", "运费39美元。"]


def test_each_sentence_is_checked_against_the_passages_it_cites() -> None:
    answer = ("You have 45 days to return it [1]. Shipping is free over $75 [2]. "
              "Shipping is free over $75 [1]. You also get a free gift [2].")
    checks = verify(answer, [RETURNS, SHIPPING], TOKENS).sentences
    assert [c.supported for c in checks] == [True, True, False, False]  # the 3rd cites the wrong passage
    assert checks[0].cites == (1,) and checks[3].support < 0.5


def test_a_wrong_number_fails_however_many_words_match() -> None:
    check = verify("You can return most items within 30 days of delivery [1].", [RETURNS], TOKENS).sentences[0]
    assert check.support > 0.8 and not check.numbers_found and not check.supported  # only "30" is missing


def test_uncited_sentences_are_checked_against_all_passages_and_bad_markers_are_reported() -> None:
    result = verify("Standard shipping takes 3 to 5 business days. Gift wrap is free [7].", [RETURNS, SHIPPING], TOKENS)
    assert [c.supported for c in result.sentences] == [True, False]
    assert result.invalid_citations == (7,) and result.supported_share == 0.5


def test_span_points_at_the_supporting_sentence() -> None:
    start, end = best_span("a 15% fee for opened electronics [1]", RETURNS, TOKENS) or (0, 0)
    assert RETURNS[start:end] == "Opened electronics carry a 15% restocking fee."
    assert best_span("kayak tyre pressure", RETURNS, TOKENS) is None


def test_words_scattered_over_a_passage_do_not_support_a_claim() -> None:
    passage = ("Our return window is 45 days from delivery. Restocking fees apply to opened electronics. "
               "Exchanges are free. Gift cards never expire. Refunds take 10 business days.")
    scattered = verify("Gift cards are free to return within 45 days.", [passage], TOKENS, threshold=0.6).sentences[0]
    local = verify("Gift cards never expire.", [passage], TOKENS, threshold=0.6).sentences[0]
    assert not scattered.supported and local.supported
    # Every word of the scattered claim is in the passage: only the one-place rule rejects it.
    assert verify("Gift cards are free to return within 45 days.", [passage.replace(". ", "; ")], TOKENS,
                  threshold=0.6).sentences[0].supported


def test_a_sentence_with_no_content_word_is_not_supported_even_when_its_number_is_in_the_passage() -> None:
    check = verify("1 [1]. 45 [1]", ["You can return most items within 45 days of delivery, 1 per order."],
                   TextTokenizer())
    assert [s.supported for s in check.sentences] == [False, False]
