"""BM25 terms in several scripts, and the BM25 index over chunk ids: search, restriction, idf, saving."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index import Bm25Index
from rag.tokenizer import TextTokenizer


@pytest.fixture(scope="module")
def tok() -> TextTokenizer:
    return TextTokenizer()


# -- the tokenizer -----------------------------------------------------------------------------

def test_english_stop_words_are_dropped_and_words_stemmed(tok: TextTokenizer) -> None:
    assert tok.tokens("returns") == tok.tokens("returning") == tok.tokens("Returned") == ["return"]
    assert tok.tokens("What is the return window for an item?") == ["return", "window", "item"]
    assert tok.tokens("the and of") == []


def test_repeats_are_kept_for_term_frequency(tok: TextTokenizer) -> None:
    assert tok.tokens("refund, refunds, REFUNDED") == ["refund", "refund", "refund"]


def test_without_stemming_or_stop_words_words_stay_as_written() -> None:
    assert TextTokenizer(stem=False).tokens("The returns are returning") == ["returns", "returning"]
    assert TextTokenizer(stem=False, stopwords=False).tokens("The returns") == ["the", "returns"]


def test_chinese_is_segmented_by_jieba_and_digits_split_from_han(tok: TextTokenizer) -> None:
    assert "退货" in tok.tokens("退货政策")  # the shorter word inside the longer one matches a question about 退货
    terms = tok.tokens("退货30天")
    assert "退货" in terms and "30" in terms
    assert not any(any(ch.isdigit() for ch in t) and any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in terms)


def test_chinese_stop_words_are_dropped(tok: TextTokenizer) -> None:
    terms = tok.tokens("请问香港的运费是多少")
    assert "香港" in terms and "运费" in terms
    assert not {"请问", "的", "是", "多少"} & set(terms)
    assert "的" in TextTokenizer(stopwords=False).tokens("香港的运费")


def test_kana_and_hangul_become_overlapping_bigrams(tok: TextTokenizer) -> None:
    assert tok.tokens("したい") == ["した", "たい"]
    assert tok.tokens("환불정책") == ["환불", "불정", "정책"]
    assert tok.tokens("ね") == ["ね"]  # a single character stays whole


def test_text_is_nfkc_normalised_and_case_folded(tok: TextTokenizer) -> None:
    assert tok.tokens("ＵＳＢ") == ["usb"]  # full-width letters
    assert tok.tokens("ＵＳＢ－Ｃ port") == tok.tokens("usb-c PORT") == ["usb", "c", "port"]


def test_settings_round_trip() -> None:
    for original in (TextTokenizer(), TextTokenizer(stem=False, stopwords=False)):
        again = TextTokenizer.from_settings(original.settings)
        assert again.settings == original.settings
        assert again.tokens("The Returns 的 退货") == original.tokens("The Returns 的 退货")
    assert TextTokenizer().settings == {"name": "text", "version": 1, "stem": True, "stopwords": True}


@pytest.mark.parametrize("settings", [{}, {"name": "whitespace", "version": 1}, {"name": "text", "version": 2}])
def test_unknown_settings_are_a_corrupt_index_with_the_fix(settings: dict[str, object]) -> None:
    with pytest.raises(IndexCorruptError, match="rag ingest --full"):
        TextTokenizer.from_settings(settings)


# -- the BM25 index ----------------------------------------------------------------------------

# 10: common x   11: rare x   12: common y   (all of length 2, so only the idf differs)
IDS = [10, 11, 12]
TERMS = [["common", "x"], ["rare", "x"], ["common", "y"]]


@pytest.fixture(scope="module")
def bm25() -> Bm25Index:
    return Bm25Index.build(IDS, TERMS)


def test_the_chunk_with_the_rarer_matching_term_ranks_first(bm25: Bm25Index) -> None:
    hits = bm25.search(["common", "rare"], 10)
    assert hits[0][0] == 11
    assert sorted(chunk_id for chunk_id, _ in hits) == [10, 11, 12]
    assert hits[0][1] > hits[1][1] > 0
    assert [i for i, _ in bm25.search(["y"], 10)] == [12]  # only chunks sharing a term come back


def test_allowed_ids_restrict_the_search(bm25: Bm25Index) -> None:
    assert sorted(i for i, _ in bm25.search(["common", "rare"], 10, allowed_ids=[10, 12])) == [10, 12]
    assert [i for i, _ in bm25.search(["rare"], 10, allowed_ids=[10, 12, 99])] == []  # 99 is not in the index
    assert bm25.search(["common"], 10, allowed_ids=[]) == []


def test_unknown_terms_and_k_zero_find_nothing_and_k_limits(bm25: Bm25Index) -> None:
    assert bm25.search(["nowhere"], 10) == []
    assert bm25.search([], 10) == []
    assert bm25.search(["common"], 0) == []
    top = bm25.search(["common", "rare"], 1)
    assert len(top) == 1 and top[0][0] == 11


def test_idf_is_the_lucene_formula_and_zero_for_a_missing_term(bm25: Bm25Index) -> None:
    # N = 3;  idf = ln(1 + (N - df + 0.5) / (df + 0.5)):  common df 2 -> ln(1.6);  rare df 1 -> ln(1 + 2.5 / 1.5)
    assert bm25.idf(["common", "rare", "absent"]) == pytest.approx(
        {"common": math.log(1.6), "rare": math.log(1 + 2.5 / 1.5), "absent": 0.0})


def test_save_and_load_give_the_same_results(bm25: Bm25Index, tmp_path: Path) -> None:
    bm25.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25")
    assert len(loaded) == 3
    for terms in (["common", "rare"], ["x"], ["y", "rare"]):
        assert loaded.search(terms, 10) == bm25.search(terms, 10)
        assert loaded.search(terms, 10, allowed_ids=[11, 12]) == bm25.search(terms, 10, allowed_ids=[11, 12])
    assert loaded.idf(["common", "rare"]) == bm25.idf(["common", "rare"])


@pytest.mark.parametrize(("ids", "terms"), [([], []), ([4, 5], [[], []])])
def test_an_index_without_terms_saves_loads_and_finds_nothing(ids: list[int], terms: list[list[str]],
                                                              tmp_path: Path) -> None:
    empty = Bm25Index.build(ids, terms)
    empty.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25")
    assert len(loaded) == len(ids)
    assert loaded.search(["anything"], 5) == [] and loaded.idf(["anything"]) == {"anything": 0.0}


def test_chunks_without_terms_count_but_are_never_found(tmp_path: Path) -> None:
    index = Bm25Index.build([1, 2], [["x"], []])
    assert len(index) == 2 and [i for i, _ in index.search(["x"], 5)] == [1]
    assert index.idf(["x"])["x"] == pytest.approx(math.log(1 + 1.5 / 1.5))  # N 2, df 1


def test_a_missing_folder_says_how_to_rebuild(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="rag ingest"):
        Bm25Index.load(tmp_path / "nowhere")


def test_a_corrupt_vocabulary_is_a_corrupt_index(bm25: Bm25Index, tmp_path: Path) -> None:
    bm25.save(tmp_path / "bm25")
    (tmp_path / "bm25" / "vocab.index.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="rag ingest --full"):
        Bm25Index.load(tmp_path / "bm25")


def test_ids_and_terms_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 ids for 1 term lists"):
        Bm25Index.build([1, 2], [["x"]])


def test_the_saved_index_is_the_same_bytes_under_any_hash_seed(tmp_path: Path) -> None:
    """A Ray worker or a rerun builds the same files: the vocabulary is ours and sorted, not a set's order."""
    script = ("import sys; from pathlib import Path; from rag.index import Bm25Index\n"
              "terms = [['return', 'window', 'days'], ['aurora', 'charge', 'usb', 'days'], [], ['kettle', 'reset']]\n"
              "Bm25Index.build([10, 11, 12, 13], terms).save(Path(sys.argv[1]))\n")
    saved = []
    for seed in ("1", "2", "3"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / seed)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}, cwd=Path(__file__).parents[2])
        saved.append({f.name: f.read_bytes() for f in sorted((tmp_path / seed).iterdir())})
    assert saved[0] == saved[1] == saved[2] and "vocab.index.json" in saved[0]
    assert [i for i, _ in Bm25Index.load(tmp_path / "1").search(["days"], 5)] == [10, 11]
