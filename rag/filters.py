"""Filters from plain data (a suite line, a CLI option, a JSON body), with errors that name the key.

The shape is the one `/ask` takes under "filters"; every key is optional:

    {"doc_type": ["policy"], "product": ["Aurora X2 headlamp"], "language": ["zh"],
     "source": ["policies/returns-policy-2025.md"], "effective_on": "2025-01-15"}

Here a single string is also accepted where a list is expected (the `/ask` schema wants lists).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, cast

from rag.errors import InputError
from rag.types import DOC_TYPES, DocType, Filters

__all__ = ["FILTER_KEYS", "parse_filters"]

FILTER_KEYS = ("doc_type", "language", "source", "product", "effective_on")


def parse_filters(data: Mapping[str, Any] | None) -> Filters | None:
    """`Filters` from a mapping; None for None or an empty mapping."""
    if not data:
        return None
    if not isinstance(data, Mapping):
        raise InputError(f"filters must be an object with keys {', '.join(FILTER_KEYS)}, got {data!r}")
    unknown = sorted(set(data) - set(FILTER_KEYS))
    if unknown:
        raise InputError(f"unknown filter {unknown[0]!r}: use {', '.join(FILTER_KEYS)}")
    doc_types = _strings(data, "doc_type")
    bad = [d for d in doc_types if d not in DOC_TYPES]
    if bad:
        raise InputError(f"filter doc_type {bad[0]!r} is not one of {', '.join(DOC_TYPES)}")
    return Filters(
        doc_types=cast(tuple[DocType, ...], doc_types), languages=_strings(data, "language"),
        sources=_strings(data, "source"), products=_strings(data, "product"),
        effective_on=parse_day(data.get("effective_on"), "effective_on"),
    )


def parse_day(value: Any, name: str) -> date | None:
    """An ISO date (YYYY-MM-DD) or None."""
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"filter {name} must be a date as YYYY-MM-DD, got {value!r}") from None


def _strings(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key) or ()
    values = (value,) if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) and v.strip() for v in values):
        raise InputError(f"filter {key} must be a string or a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in values)
