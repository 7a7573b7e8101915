"""Structure-aware chunking: sections keep their headings, sizes are counted in model tokens.

A document becomes sections (text under a heading path). Long sections are split with
LangChain's recursive splitter measured by the embedding model's tokenizer; short neighbours
are packed together so no chunk is a lonely heading. Every chunk starts with the document
title so it embeds with its context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.documents import SourceDocument

__all__ = ["ChunkPiece", "StructureAwareChunker"]


# Paragraphs, lines, then sentence and clause ends (Chinese marks included), then words.
_SEPARATORS = ["\n\n", "\n", "。", "！", "？", ". ", "；", "，", ", ", " ", ""]


@dataclass(frozen=True, slots=True)
class ChunkPiece:
    """Chunk text with the section it starts in and its page."""

    text: str
    section: str
    page: int | None


@dataclass(frozen=True, slots=True)
class _Unit:
    heading: str
    body: str
    page: int | None


class StructureAwareChunker:
    """Splits documents into chunks of at most `chunk_tokens` tokens of the embedding model."""

    def __init__(
        self, *, count_tokens: Callable[[str], int], chunk_tokens: int = 160, overlap_tokens: int = 24
    ) -> None:
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ValueError(f"overlap_tokens ({overlap_tokens}) must be below chunk_tokens ({chunk_tokens})")
        self._count = count_tokens
        self._chunk_tokens = chunk_tokens
        self._overlap_tokens = overlap_tokens

    @property
    def settings(self) -> dict[str, int | str]:
        """What the manifest records, so a change of settings is visible."""
        return {"name": "structure-aware", "version": 2, "chunk_tokens": self._chunk_tokens,
                "overlap_tokens": self._overlap_tokens}

    def split(self, document: SourceDocument) -> list[ChunkPiece]:
        budget = max(16, self._chunk_tokens - self._count(document.title) - 4)
        units = [u for unit in _sections(document) for u in self._fit(unit, budget)]
        return [ChunkPiece(_render(document.title, group), group[0].heading, group[0].page)
                for group in self._pack(units, budget)]

    def _fit(self, unit: _Unit, budget: int) -> list[_Unit]:
        if self._count(_unit_text(unit)) <= budget:
            return [unit]
        room = max(16, budget - self._count(unit.heading) - 1)
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=room, chunk_overlap=min(self._overlap_tokens, room // 4), length_function=self._count,
            separators=_SEPARATORS, keep_separator="end",
        )
        return [_Unit(unit.heading, piece, unit.page) for piece in splitter.split_text(unit.body)]

    def _pack(self, units: list[_Unit], budget: int) -> list[list[_Unit]]:
        groups: list[list[_Unit]] = []
        used = 0
        for unit in units:
            cost = self._count(_unit_text(unit)) + 1
            if groups and used + cost <= budget:
                groups[-1].append(unit)
                used += cost
            else:
                groups.append([unit])
                used = cost
        return groups


def _sections(document: SourceDocument) -> list[_Unit]:
    """Text grouped under its heading path ('Returns > Refunds')."""
    units: list[_Unit] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    page: int | None = None

    def flush() -> None:
        if body:
            heading = " > ".join(text for _, text in path if text != document.title)
            units.append(_Unit(heading, "\n".join(body), page))
            body.clear()

    after_title = False
    for element in document.elements:
        if element.kind == "title":
            if after_title and path and path[-1][0] >= element.depth:
                # The previous "title" had no text of its own before a sibling: a table cell or label
                # that the parser took for a heading (common in PDFs). Keep it as text, not as a heading.
                body.append(path.pop()[1])
            flush()
            path[:] = [(d, t) for d, t in path if d < element.depth] + [(element.depth, element.text)]
            page = element.page
        else:
            page = page if body else element.page
            body.append(element.text)
        after_title = element.kind == "title"
    flush()
    return units


def _unit_text(unit: _Unit) -> str:
    return f"{unit.heading}\n{unit.body}" if unit.heading else unit.body


def _render(title: str, group: list[_Unit]) -> str:
    parts = [title]
    previous = title
    for unit in group:
        if unit.heading and unit.heading != previous:
            parts.append(unit.heading)
            previous = unit.heading
        parts.append(unit.body)
    return "\n".join(parts)
