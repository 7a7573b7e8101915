"""The pure ranking steps of hybrid retrieval on hand-made cases, with the arithmetic in the comments."""

from __future__ import annotations

from typing import Any

import pytest

from rag.ranking import (
    SourcePriors,
    collapse_duplicates,
    demote_superseded,
    diversify,
    fuse,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)
from rag.types import Chunk, DocType


def chunk(i: int, source: str = "", doc_type: DocType = "doc", **metadata: Any) -> Chunk:
    return Chunk(id=i, text=f"text {i}", source=source or f"docs/{i}.md", title="", doc_type=doc_type,
                 metadata=metadata)


def best_first(scores: dict[int, float]) -> list[int]:
    return sorted(scores, key=lambda i: scores[i], reverse=True)


# -- fusion ------------------------------------------------------------------------------------

DENSE = [(1, 0.9), (2, 0.5), (3, 0.1)]
BM25 = [(2, 8.0), (4, 2.0)]


def test_rrf_adds_one_over_k_plus_rank_for_each_list_a_chunk_is_in() -> None:
    fused = reciprocal_rank_fusion({"dense": DENSE, "bm25": BM25}, k=60)
    assert fused == pytest.approx({
        1: 1 / 61,           # dense rank 1 only
        2: 1 / 62 + 1 / 61,  # dense rank 2 + bm25 rank 1 = 0.032522: in both lists, so first
        3: 1 / 63,           # dense rank 3 only
        4: 1 / 62,           # bm25 rank 2 only
    })
    assert best_first(fused) == [2, 1, 4, 3]


def test_rrf_weights_multiply_each_list_and_k_flattens_the_ranks() -> None:
    fused = reciprocal_rank_fusion({"dense": DENSE, "bm25": BM25}, k=60, weights={"dense": 3.0})  # bm25: 1.0
    # 1: 3/61 = 0.04918;  2: 3/62 + 1/61 = 0.04839 + 0.01639 = 0.06478;  3: 3/63 = 0.04762;  4: 1/62 = 0.01613
    assert fused == pytest.approx({1: 3 / 61, 2: 3 / 62 + 1 / 61, 3: 3 / 63, 4: 1 / 62})
    assert best_first(fused) == [2, 1, 3, 4]  # weighted dense rank 3 (0.0476) now beats bm25 rank 2 (0.0161)
    small_k = reciprocal_rank_fusion({"dense": DENSE}, k=1)
    assert small_k == pytest.approx({1: 1 / 2, 2: 1 / 3, 3: 1 / 4})


def test_weighted_fusion_min_max_normalises_each_list_and_a_missing_chunk_scores_zero_there() -> None:
    fused = weighted_score_fusion({"dense": DENSE, "bm25": BM25})
    # dense: (s - 0.1) / 0.8 -> 1: 1.0, 2: 0.5, 3: 0.0;  bm25: (s - 2) / 6 -> 2: 1.0, 4: 0.0;  each list weighs 1/2
    assert fused == pytest.approx({1: 0.5 * 1.0, 2: 0.5 * 0.5 + 0.5 * 1.0, 3: 0.0, 4: 0.0})
    assert best_first(fused)[:2] == [2, 1]


def test_weighted_fusion_weights_are_shares_of_their_sum() -> None:
    fused = weighted_score_fusion({"dense": DENSE, "bm25": BM25}, weights={"dense": 3.0, "bm25": 1.0})
    # shares 3/4 and 1/4: 1: 0.75 * 1.0 = 0.75;  2: 0.75 * 0.5 + 0.25 * 1.0 = 0.625
    assert fused == pytest.approx({1: 0.75, 2: 0.625, 3: 0.0, 4: 0.0})
    assert best_first(fused)[0] == 1


def test_weighted_fusion_equal_scores_all_count_as_the_best_and_an_empty_list_still_takes_its_share() -> None:
    assert weighted_score_fusion({"bm25": [(5, 2.0), (6, 2.0)]}) == {5: 1.0, 6: 1.0}  # no spread: both 1.0
    # the empty bm25 list contributes nothing, but its weight still counts: 1: 1/2 * 1.0
    assert weighted_score_fusion({"dense": [(1, 0.3)], "bm25": []}) == {1: 0.5}


@pytest.mark.parametrize("method", ["rrf", "weighted"])
def test_fuse_with_one_list_keeps_its_order(method: str) -> None:
    hits = [(7, 3.0), (8, 2.5), (9, 0.4), (10, 0.1)]
    fused = fuse({"bm25": hits}, method=method)  # type: ignore[arg-type]
    assert best_first(fused) == [7, 8, 9, 10]
    assert len(set(fused.values())) == 4  # strictly decreasing, no ties to break


def test_fuse_picks_the_method() -> None:
    lists = {"dense": DENSE, "bm25": BM25}
    assert fuse(lists, method="rrf", rrf_k=10) == reciprocal_rank_fusion(lists, k=10)
    assert fuse(lists, method="weighted", weights={"bm25": 2.0}) == weighted_score_fusion(lists, weights={"bm25": 2.0})


# -- source priors -----------------------------------------------------------------------------

def ids(chunks: list[Chunk]) -> list[int]:
    return [c.id for c in chunks]


def test_prior_multipliers_by_doc_type_default_to_one() -> None:
    priors = SourcePriors(doc_type={"ticket": 0.5})
    assert priors.of(chunk(1, doc_type="ticket")) == 0.5
    assert priors.of(chunk(2, doc_type="policy")) == 1.0  # not listed
    assert {SourcePriors().of(chunk(3, doc_type=kind)) for kind in ("doc", "policy", "ticket")} == {1.0}


def test_a_ticket_goes_behind_a_policy_scoring_at_least_the_share() -> None:
    ticket, policy = chunk(1, doc_type="ticket"), chunk(2, doc_type="policy")
    assert ids(SourcePriors().order([(ticket, 1.0), (policy, 0.7)])) == [2, 1]   # 0.7 >= 0.7 * 1.0
    assert ids(SourcePriors().order([(ticket, 1.0), (policy, 0.69)])) == [1, 2]  # 0.69 < 0.7: the ticket keeps its place
    assert ids(SourcePriors(policy_over_ticket=0.5).order([(ticket, 1.0), (policy, 0.6)])) == [2, 1]


def test_a_ticket_goes_behind_every_rival_policy_but_not_behind_weaker_ones() -> None:
    ticket = chunk(1, doc_type="ticket")
    strong, rival, weak = chunk(2, doc_type="policy"), chunk(3, doc_type="policy"), chunk(4, doc_type="policy")
    order = SourcePriors().order([(weak, 0.5), (ticket, 1.0), (rival, 0.8), (strong, 0.9)])
    assert ids(order) == [2, 3, 1, 4]  # 0.9 and 0.8 are >= 0.7; 0.5 is not


def test_docs_are_not_moved_by_policies() -> None:
    doc, policy, ticket = chunk(1), chunk(2, doc_type="policy"), chunk(3, doc_type="ticket")
    assert ids(SourcePriors().order([(policy, 0.9), (doc, 1.0)])) == [1, 2]
    assert ids(SourcePriors().order([(doc, 0.8), (ticket, 1.0)])) == [3, 1]  # no policy: plain score order


def test_a_share_of_one_turns_the_rule_off() -> None:
    ticket, policy = chunk(1, doc_type="ticket"), chunk(2, doc_type="policy")
    assert ids(SourcePriors(policy_over_ticket=1.0).order([(ticket, 1.0), (policy, 0.99)])) == [1, 2]


def test_a_policy_scoring_the_same_as_a_ticket_ranks_first() -> None:
    ticket, policy = chunk(1, doc_type="ticket"), chunk(2, doc_type="policy")
    assert ids(SourcePriors().order([(ticket, 0.5), (policy, 0.5)])) == [2, 1]


# -- superseded policies -----------------------------------------------------------------------

NEW = "policies/returns-2025.md"


def old(i: int, successor: str = NEW, source: str = "policies/returns-2024.md") -> Chunk:
    return chunk(i, source, "policy", superseded=True, superseded_by=successor)


def test_a_superseded_chunk_moves_right_behind_the_first_chunk_of_its_successor() -> None:
    ranked = [old(1), chunk(2), chunk(3, NEW, "policy"), chunk(4), chunk(5, NEW, "policy")]
    assert ids(demote_superseded(ranked)) == [2, 3, 1, 4, 5]


def test_several_superseded_chunks_keep_their_order_behind_the_successor() -> None:
    ranked = [old(1), old(2), chunk(3, NEW, "policy"), chunk(4)]
    assert ids(demote_superseded(ranked)) == [3, 1, 2, 4]


def test_a_superseded_chunk_already_behind_its_successor_or_without_it_stays() -> None:
    assert ids(demote_superseded([chunk(3, NEW, "policy"), chunk(2), old(1)])) == [3, 2, 1]
    assert ids(demote_superseded([old(1), chunk(2)])) == [1, 2]  # successor absent (a date filter, say)
    # a successor named but not declared superseded: nothing moves
    current = chunk(1, "policies/returns-2024.md", "policy", superseded=False, superseded_by=NEW)
    assert ids(demote_superseded([current, chunk(3, NEW, "policy")])) == [1, 3]


def test_a_chain_of_three_versions_loses_no_chunk() -> None:
    v2023 = old(1, "policies/returns-2024.md", "policies/returns-2023.md")
    v2024 = old(2, NEW)
    ranked = demote_superseded([v2023, v2024, chunk(3, NEW, "policy")])
    assert sorted(ids(ranked)) == [1, 2, 3]
    assert ids(ranked)[0] == 3  # the current version first, its predecessors behind it


# -- near-duplicates and diversity -------------------------------------------------------------

def ticket(i: int, group: str, duplicates: int) -> Chunk:
    return chunk(i, f"tickets/t.jsonl#T-{i}", "ticket", duplicate_group=group, duplicates=duplicates)


def test_collapse_keeps_the_first_chunk_of_each_duplicate_group() -> None:
    ranked = [ticket(1, "g", 3), chunk(2), ticket(3, "g", 3), ticket(4, "h", 2), ticket(5, "g", 3), ticket(6, "h", 2)]
    assert ids(collapse_duplicates(ranked)) == [1, 2, 4]


def test_collapse_leaves_singletons_and_chunks_without_a_group() -> None:
    # a group of one (duplicates 1) is not a duplicate group, even if two chunks name it
    ranked = [ticket(1, "solo", 1), ticket(2, "solo", 1), chunk(3), chunk(4, doc_type="policy")]
    assert ids(collapse_duplicates(ranked)) == [1, 2, 3, 4]


def test_diversify_caps_each_document_and_moves_the_overflow_to_the_end_in_order() -> None:
    a, b, c = "docs/a.md", "docs/b.md", "docs/c.md"
    ranked = [chunk(1, a), chunk(2, a), chunk(3, a), chunk(4, b), chunk(5, a), chunk(6, c), chunk(7, b)]
    assert ids(diversify(ranked, max_per_document=2)) == [1, 2, 4, 6, 7, 3, 5]
    assert ids(diversify(ranked, max_per_document=1)) == [1, 4, 6, 2, 3, 5, 7]


@pytest.mark.parametrize("cap", [0, -1])
def test_diversify_with_cap_zero_is_off(cap: int) -> None:
    ranked = [chunk(1, "docs/a.md"), chunk(2, "docs/a.md"), chunk(3, "docs/a.md")]
    assert ids(diversify(ranked, max_per_document=cap)) == [1, 2, 3]
