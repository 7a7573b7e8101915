"""The BM25 index that ingestion writes beside FAISS: its files and manifest, incremental tokenising,
tokenizer changes without re-embedding, older formats and missing files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from rag.embedders import HashEmbedder
from rag.errors import IndexCorruptError, IndexNotFoundError
from rag.index import IndexFiles, IndexFolder, LoadedIndex, open_index
from rag.index.folder import FORMAT_VERSION
from rag.retrieval import HybridRetriever
from rag.tokenizer import TextTokenizer
from tests.conftest import TINY_CORPUS, make_job, roots_of, write_corpus

AURORA = "docs/aurora.md"
CORPUS = {
    **TINY_CORPUS,
    AURORA + ".meta.yaml": "product: Aurora X2 headlamp\n",
    "docs/shipping-zh.md": "# 亚洲配送\n\n寄往香港的订单通常在三到五个工作日内送达。\n",
}


class CountingTokenizer(TextTokenizer):
    """The real tokenizer, remembering every text it was asked to tokenise."""

    def __init__(self, *, stem: bool = True, stopwords: bool = True) -> None:
        super().__init__(stem=stem, stopwords=stopwords)
        self.texts: list[str] = []

    def tokens(self, text: str) -> list[str]:
        self.texts.append(text)
        return super().tokens(text)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", CORPUS)


@contextmanager
def opened(index_dir: Path) -> Iterator[LoadedIndex]:
    index = open_index(index_dir, gpu="off")
    try:
        yield index
    finally:
        index.close()


def current_dir(index_dir: Path) -> Path:
    folder = IndexFolder(index_dir)
    version = folder.current()
    assert version is not None
    return folder.path_of(version)


def ids_of(index: LoadedIndex, source: str) -> list[int]:
    return [c.id for c in index.store.all() if c.source == source]


def found(index: LoadedIndex, word: str, tokenizer: TextTokenizer | None = None) -> list[int]:
    """Chunk ids BM25 finds for `word`, tokenised as the index's own tokenizer does unless one is given."""
    terms = (tokenizer or TextTokenizer.from_settings(index.tokenizer_settings)).tokens(word)
    return [chunk_id for chunk_id, _ in index.lexical.search(terms, 50)]


def test_a_version_holds_bm25_and_the_manifest_records_how_it_was_built(tmp_path: Path, corpus: Path) -> None:
    report = make_job(tmp_path / "index", bm25_k1=1.5, bm25_b=0.6).run(roots_of(corpus))
    files = IndexFiles(current_dir(tmp_path / "index"))
    assert (files.bm25 / "ids.npy").is_file() and (files.bm25 / "vocab.index.json").is_file()
    manifest = json.loads(files.manifest.read_text(encoding="utf-8"))
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["lexical"] == {"tokenizer": {"name": "text", "version": 1, "stem": True, "stopwords": True},
                                   "k1": 1.5, "b": 0.6}
    assert manifest["filter_values"] == {"product": ["Aurora X2 headlamp", "BrewPoint"], "language": ["en", "zh"]}
    with opened(tmp_path / "index") as index:
        assert len(index.lexical) == report.chunks == len(index.store)
        ids, terms = index.store.terms()
        assert ids == sorted(c.id for c in index.store.all()) and all(terms)  # every chunk's terms are stored
        assert found(index, "香港") == ids_of(index, "docs/shipping-zh.md")


def test_an_incremental_run_tokenises_only_the_new_chunks(tmp_path: Path, corpus: Path) -> None:
    first = CountingTokenizer()
    make_job(tmp_path / "index", tokenizer=first).run(roots_of(corpus))
    with opened(tmp_path / "index") as before:
        assert len(first.texts) == len(before.store)
        terms_before = dict(zip(*before.store.terms(), strict=True))
        assert found(before, "650") == ids_of(before, AURORA)
    (corpus / "docs" / "aurora.md").write_text("# Aurora X2 headlamp\n\nNow 700 lumens, rated IPX8.\n")
    second = CountingTokenizer()
    report = make_job(tmp_path / "index", tokenizer=second).run(roots_of(corpus))
    assert report.published
    with opened(tmp_path / "index") as after:
        new = {c.id: c.text for c in after.store.all() if c.id not in terms_before}
        assert new and sorted(second.texts) == sorted(new.values())  # nothing else was tokenised again
        assert {c.source for c in after.store.get_many(list(new)).values()} == {AURORA}
        terms_after = dict(zip(*after.store.terms(), strict=True))
        assert {i: terms_after[i] for i in terms_before if i in terms_after} == {
            i: t for i, t in terms_before.items() if i in terms_after}
        assert found(after, "700") == ids_of(after, AURORA) == sorted(new)
        assert found(after, "650") == []  # the old text is gone from BM25


def test_other_tokenizer_settings_publish_a_version_without_re_embedding(tmp_path: Path, corpus: Path) -> None:
    first = make_job(tmp_path / "index").run(roots_of(corpus))
    with opened(tmp_path / "index") as stemmed:
        assert found(stemmed, "lumens", TextTokenizer(stem=False)) == []  # stored as "lumen"
    unstemmed = CountingTokenizer(stem=False)
    report = make_job(tmp_path / "index", tokenizer=unstemmed).run(roots_of(corpus))
    assert report.published and report.version != first.version
    assert report.chunks_embedded == 0 and report.chunks == first.chunks
    assert len(unstemmed.texts) == report.chunks  # every chunk re-tokenised
    manifest = json.loads(IndexFiles(current_dir(tmp_path / "index")).manifest.read_text(encoding="utf-8"))
    assert manifest["lexical"]["tokenizer"]["stem"] is False and manifest["parent"] == first.version
    with opened(tmp_path / "index") as index:
        assert found(index, "lumens") == ids_of(index, AURORA)
        # questions are tokenised as the index was: a stemmed "lumen" would find nothing here
        hits = HybridRetriever.over(index, embedder=HashEmbedder(), mode="bm25").retrieve("lumens", top_k=3)
        assert [h.chunk.source for h in hits] == [AURORA]
    again = make_job(tmp_path / "index", tokenizer=TextTokenizer(stem=False)).run(roots_of(corpus))
    assert not again.published and again.version == report.version


def test_other_bm25_parameters_publish_a_version_without_re_embedding(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    report = make_job(tmp_path / "index", bm25_k1=2.0).run(roots_of(corpus))
    assert report.published and report.chunks_embedded == 0
    with opened(tmp_path / "index") as index:
        assert index.manifest["lexical"]["k1"] == 2.0


def test_an_index_of_format_2_is_rebuilt_whole_by_the_next_run(tmp_path: Path, corpus: Path) -> None:
    first = make_job(tmp_path / "index").run(roots_of(corpus))
    version = current_dir(tmp_path / "index")
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 2
    del manifest["lexical"], manifest["filter_values"]
    (version / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    shutil.rmtree(version / "bm25")  # format 2 had no BM25 index
    with pytest.raises(IndexCorruptError, match="rag ingest --full"):
        open_index(tmp_path / "index", gpu="off")
    report = make_job(tmp_path / "index").run(roots_of(corpus))
    assert report.published and {c.kind for c in report.plan} == {"added"}
    assert report.chunks_embedded == report.chunks == first.chunks
    with opened(tmp_path / "index") as index:
        assert index.manifest["format_version"] == FORMAT_VERSION and len(index.lexical) == report.chunks
        assert found(index, "lumens") == ids_of(index, AURORA)


def test_a_version_without_its_bm25_folder_says_how_to_fix_it(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    shutil.rmtree(current_dir(tmp_path / "index") / "bm25")
    with pytest.raises(IndexNotFoundError, match=r"BM25 index not found .*rag ingest"):
        open_index(tmp_path / "index", gpu="off")


def test_a_bm25_index_that_disagrees_with_the_manifest_is_corrupt(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    ids = current_dir(tmp_path / "index") / "bm25" / "ids.npy"
    np.save(ids, np.load(ids)[:-1])
    with pytest.raises(IndexCorruptError, match=r"inconsistent: .*BM25 .*rag ingest --full"):
        open_index(tmp_path / "index", gpu="off")


def test_rag_ingest_full_repairs_a_version_without_bm25(tmp_path: Path, corpus: Path) -> None:
    make_job(tmp_path / "index").run(roots_of(corpus))
    shutil.rmtree(current_dir(tmp_path / "index") / "bm25")
    report = make_job(tmp_path / "index").run(roots_of(corpus), full=True)
    assert report.published
    with opened(tmp_path / "index") as index:
        assert len(index.lexical) == report.chunks
