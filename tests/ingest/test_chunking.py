from __future__ import annotations

import pytest

from ingest.chunking import StructureAwareChunker
from ingest.documents import Element, SourceDocument
from rag.embedders import HashEmbedder

COUNT = HashEmbedder().count_tokens


def doc(*elements: Element, title: str = "Guide") -> SourceDocument:
    return SourceDocument("docs/guide.md", title, "doc", "en", elements)


def test_sections_keep_their_heading_path_and_the_document_title() -> None:
    chunker = StructureAwareChunker(count_tokens=COUNT, chunk_tokens=40, overlap_tokens=0)
    pieces = chunker.split(doc(
        Element("Guide", "title", 0), Element("Intro text about the guide."),
        Element("Charging", "title", 1), Element("Charge over USB-C for 4 hours before first use. " * 3),
        Element("Battery", "title", 2), Element("The 18650 cell lasts 300 cycles."),
    ))
    assert all(p.text.startswith("Guide\n") for p in pieces)
    battery = next(p for p in pieces if "18650" in p.text)
    assert "Charging > Battery" in battery.text
    assert {p.section for p in pieces} <= {"", "Charging", "Charging > Battery"}
    assert pieces[0].section == ""


def test_every_chunk_fits_the_token_budget() -> None:
    chunker = StructureAwareChunker(count_tokens=COUNT, chunk_tokens=50, overlap_tokens=10)
    long = " ".join(f"Sentence number {i} explains a detail." for i in range(200))
    pieces = chunker.split(doc(Element("Specs", "title", 1), Element(long)))
    assert len(pieces) > 5
    assert max(COUNT(p.text) for p in pieces) <= 50
    assert "Sentence number 199" in pieces[-1].text


def test_small_sections_are_packed_together() -> None:
    chunker = StructureAwareChunker(count_tokens=COUNT, chunk_tokens=200, overlap_tokens=0)
    pieces = chunker.split(doc(*[e for i in range(4) for e in (Element(f"Part {i}", "title", 1), Element(f"Fact {i}."))]))
    assert len(pieces) == 1
    assert all(f"Part {i}\nFact {i}." in pieces[0].text for i in range(4))


def test_chinese_text_is_split_on_sentence_marks() -> None:
    chunker = StructureAwareChunker(count_tokens=len, chunk_tokens=60, overlap_tokens=0)
    text = "我们在五个工作日内发货。" * 20
    pieces = chunker.split(doc(Element(text), title="配送"))
    assert len(pieces) > 1 and all(len(p.text) <= 60 for p in pieces)
    assert all(p.text.endswith("发货。") for p in pieces)  # whole sentences, never cut mid-way


def test_overlap_must_be_below_size() -> None:
    with pytest.raises(ValueError, match="overlap_tokens"):
        StructureAwareChunker(count_tokens=COUNT, chunk_tokens=32, overlap_tokens=32)
