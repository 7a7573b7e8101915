"""Filters from plain data, and the two places that apply them (Python and SQL) agreeing chunk by chunk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rag.errors import InputError
from rag.filters import parse_filters
from rag.index import ChunkStore
from rag.types import Chunk, DocType, Filters

# -- parse_filters -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {}])
def test_nothing_given_is_no_filter(data: dict[str, Any] | None) -> None:
    assert parse_filters(data) is None


def test_strings_or_lists_trimmed_and_a_date() -> None:
    parsed = parse_filters({"doc_type": "policy", "product": [" Aurora X2 headlamp ", "BrewPoint"], "language": ["zh"],
                            "source": "policies/returns.md", "effective_on": "2024-06-01"})
    assert parsed == Filters(doc_types=("policy",), languages=("zh",), sources=("policies/returns.md",),
                             products=("Aurora X2 headlamp", "BrewPoint"), effective_on=date(2024, 6, 1))
    assert parse_filters({"effective_on": date(2025, 1, 15)}) == Filters(effective_on=date(2025, 1, 15))


@pytest.mark.parametrize(("data", "key"), [
    ({"colour": ["red"]}, "colour"),
    ({"doc_type": ["memo"]}, "doc_type"),
    ({"doc_type": ["policy", "Policy"]}, "doc_type"),
    ({"effective_on": "2024-13-01"}, "effective_on"),
    ({"effective_on": "June 1st"}, "effective_on"),
    ({"product": [1]}, "product"),
    ({"product": ["Aurora", None]}, "product"),
    ({"language": [""]}, "language"),
    ({"source": ["  "]}, "source"),
    ({"product": {"name": "Aurora"}}, "product"),
    ({"language": 7}, "language"),
])
def test_bad_values_are_input_errors_naming_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(InputError, match=key):
        parse_filters(data)


def test_a_non_mapping_is_an_input_error_listing_the_keys() -> None:
    with pytest.raises(InputError, match="doc_type, language, source, product, effective_on"):
        parse_filters(["policy"])  # type: ignore[arg-type]


# -- Filters.accepts and ChunkStore.ids_matching agree ------------------------------------------

def chunk(i: int, doc_type: DocType = "doc", language: str = "en", source: str = "", **metadata: Any) -> Chunk:
    return Chunk(id=i, text=f"text {i}", source=source or f"{doc_type}s/{i}.md", title="", doc_type=doc_type,
                 language=language, metadata=metadata)


AURORA = "Aurora X2 headlamp"
CHUNKS = [
    chunk(1, source="docs/aurora.md", product=AURORA),
    chunk(2, language="zh", source="docs/aurora-zh.md", product=AURORA),
    chunk(3, "ticket", source="tickets/t.jsonl#T-3", product="brewpoint kettle"),
    chunk(4, "ticket", product=None),
    chunk(5, "policy", effective_from="2024-01-01", effective_to="2025-04-01"),
    chunk(6, "policy", effective_from="2025-04-01", effective_to=None),
    chunk(7, "policy"),                                                  # no bounds at all
    chunk(8, "policy", "zh", effective_from="", effective_to="2024-06-01"),  # unknown start, ends on the day
    chunk(9, "policy", effective_from="2024-06-01"),                     # starts on the day
    chunk(10, effective_from="2010-01-01", effective_to="2020-01-01"),   # not a policy: dates ignored
    chunk(11, "policy", product=AURORA, effective_from="2023-01-01", effective_to="2024-06-01"),
    chunk(12, "ticket", effective_to="2000-01-01"),
]

FILTERS = [
    Filters(),
    Filters(products=("AURORA x2 HEADLAMP",)),
    Filters(products=("BrewPoint Kettle", "no such product")),
    Filters(languages=("zh",)),
    Filters(languages=("zh", "en"), doc_types=("ticket",)),
    Filters(doc_types=("policy",)),
    Filters(sources=("docs/aurora.md", "tickets/t.jsonl#T-3")),
    Filters(effective_on=date(2024, 6, 1)),
    Filters(effective_on=date(2025, 4, 1)),
    Filters(effective_on=date(2019, 1, 1)),
    Filters(doc_types=("policy",), products=(AURORA,), effective_on=date(2024, 1, 1)),
    Filters(languages=("fr",)),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChunkStore]:
    opened = ChunkStore(tmp_path_factory.mktemp("filters") / "chunks.sqlite3", create=True)
    opened.add(CHUNKS)
    yield opened
    opened.close()


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_python_and_sql_agree_on_every_chunk(store: ChunkStore, filters: Filters) -> None:
    assert sorted(store.ids_matching(filters)) == [c.id for c in CHUNKS if filters.accepts(c)]


@pytest.mark.parametrize(("filters", "expected"), [
    (Filters(products=("AURORA x2 HEADLAMP",)), {1, 2, 11}),
    (Filters(effective_on=date(2024, 6, 1)), {1, 2, 3, 4, 5, 7, 9, 10, 12}),  # 6 starts later; 8 and 11 end that day
    (Filters(effective_on=date(2025, 4, 1)), {1, 2, 3, 4, 6, 7, 9, 10, 12}),  # 5 ended, 6 began
    (Filters(effective_on=date(2019, 1, 1)), {1, 2, 3, 4, 7, 8, 10, 12}),     # before every known start
    (Filters(doc_types=("policy",), products=(AURORA,), effective_on=date(2024, 1, 1)), {11}),
    (Filters(languages=("fr",)), set()),
])
def test_what_they_agree_on_is_right(store: ChunkStore, filters: Filters, expected: set[int]) -> None:
    assert {c.id for c in CHUNKS if filters.accepts(c)} == expected
    assert set(store.ids_matching(filters)) == expected


def test_is_empty_only_without_restrictions() -> None:
    assert Filters().is_empty()
    assert not Filters(effective_on=date(2024, 1, 1)).is_empty()
    assert not Filters(products=("x",)).is_empty()


def test_a_product_with_a_non_ascii_capital_matches_in_sql_too(tmp_path: Path) -> None:
    store = ChunkStore(tmp_path / "chunks.sqlite3", create=True)
    screen = chunk(1, product="Écran Pro monitor")
    store.add([screen, chunk(2, product="Aurora")])
    exact = Filters(products=("Écran Pro monitor",))
    assert exact.accepts(screen)
    assert store.ids_matching(exact) == [1]
