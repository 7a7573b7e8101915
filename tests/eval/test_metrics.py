"""Ranking metrics on hand-computed cases; the arithmetic is in the comments."""

from __future__ import annotations

import math

import pytest

from eval.metrics import hit_at, ndcg_at, percentile, recall_at, reciprocal_rank

LOG2_3 = math.log2(3)  # discount of rank 2: log2(2+1) ≈ 1.5850


def test_recall_counts_the_relevant_documents_in_the_top_k() -> None:
    ranked = ["a", "b", "c", "d"]
    # relevant {b, d}: top 1 = {a} -> 0/2; top 2 = {a, b} -> 1/2; top 4 -> 2/2
    assert recall_at(ranked, {"b", "d"}, 1) == 0.0
    assert recall_at(ranked, {"b", "d"}, 2) == 0.5
    assert recall_at(ranked, {"b", "d"}, 4) == 1.0
    # relevant {b, x}: x is never retrieved -> at most 1/2
    assert recall_at(ranked, {"b", "x"}, 10) == 0.5


def test_reciprocal_rank_is_one_over_the_first_relevant_rank_within_k() -> None:
    ranked = ["a", "b", "c", "d"]
    assert reciprocal_rank(ranked, {"c", "d"}, 4) == pytest.approx(1 / 3)  # first relevant at rank 3
    assert reciprocal_rank(ranked, {"a"}, 4) == 1.0
    assert reciprocal_rank(ranked, {"c"}, 2) == 0.0  # rank 3 is past the cut


def test_ndcg_of_two_relevant_at_ranks_two_and_three() -> None:
    # DCG = 1/log2(3) + 1/log2(4) = 0.6309 + 0.5 = 1.1309; IDCG (2 relevant) = 1 + 1/log2(3) = 1.6309
    # nDCG@3 = 1.1309 / 1.6309 ≈ 0.6934
    expected = (1 / LOG2_3 + 1 / 2) / (1 + 1 / LOG2_3)
    assert ndcg_at(["a", "b", "c"], {"b", "c"}, 3) == pytest.approx(expected)
    assert expected == pytest.approx(0.6934, abs=1e-4)


def test_ndcg_ideal_is_cut_at_k() -> None:
    # 3 relevant but k = 2: IDCG = 1 + 1/log2(3) over min(3, 2) = 2 ranks; DCG of [x, y] (y at rank 1, x at 2)
    # is the same, so a perfect top 2 scores 1 even though z is missing.
    assert ndcg_at(["y", "x", "a"], {"x", "y", "z"}, 2) == pytest.approx(1.0)
    # only rank 2 relevant: DCG = 1/log2(3) = 0.6309; IDCG (1 relevant) = 1 -> 0.6309
    assert ndcg_at(["a", "x"], {"x"}, 2) == pytest.approx(1 / LOG2_3)


def test_hit_at() -> None:
    assert hit_at(["a", "b", "c"], {"c"}, 3) == 1.0
    assert hit_at(["a", "b", "c"], {"c"}, 2) == 0.0


def test_no_relevant_document_in_the_top_k_scores_zero() -> None:
    ranked = ["a", "b", "c"]
    for metric in (recall_at, reciprocal_rank, ndcg_at, hit_at):
        assert metric(ranked, {"z"}, 3) == 0.0
        assert metric([], {"z"}, 3) == 0.0


def test_an_empty_relevant_set_scores_zero() -> None:
    for metric in (recall_at, reciprocal_rank, ndcg_at, hit_at):
        assert metric(["a"], set(), 5) == 0.0


def test_k_larger_than_the_list() -> None:
    # only 2 documents came back, k = 10: b at rank 2; IDCG over min(2 relevant, 10) = 2 ranks
    ranked, relevant = ["a", "b"], {"b", "z"}
    assert recall_at(ranked, relevant, 10) == 0.5
    assert reciprocal_rank(ranked, relevant, 10) == 0.5
    assert ndcg_at(ranked, relevant, 10) == pytest.approx((1 / LOG2_3) / (1 + 1 / LOG2_3))  # 0.6309/1.6309 ≈ 0.3869
    assert hit_at(ranked, relevant, 10) == 1.0


def test_a_repeated_document_counts_once_at_its_first_rank() -> None:
    # [b, b, c], relevant {b, c}: b gains at rank 1 only, its repeat keeps rank 2 and gains nothing, c at rank 3
    ranked, relevant = ["b", "b", "c"], {"b", "c"}
    assert recall_at(ranked, relevant, 2) == 0.5  # not 2/2
    # DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) = 1.6309 -> 0.9197
    assert ndcg_at(ranked, relevant, 3) == pytest.approx(1.5 / (1 + 1 / LOG2_3))
    # a repeated relevant document never lifts nDCG above 1
    assert ndcg_at(["b", "b", "b"], {"b"}, 3) == 1.0


def test_repeats_in_the_relevant_set_count_once() -> None:
    assert recall_at(["a"], ["a", "a"], 1) == 1.0
    assert ndcg_at(["a"], ["a", "a"], 1) == 1.0


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        recall_at(["a"], {"a"}, 0)


def test_percentile_interpolates_between_ranks() -> None:
    values = [40.0, 10.0, 30.0, 20.0]  # sorted: 10, 20, 30, 40
    assert percentile(values, 50) == 25.0  # position 3·0.5 = 1.5 -> 20 + 0.5·(30-20)
    assert percentile(values, 95) == pytest.approx(38.5)  # position 3·0.95 = 2.85 -> 30 + 0.85·10
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile([7.0], 95) == 7.0


def test_percentile_refuses_no_values_and_bad_q() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)
