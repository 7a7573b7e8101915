"""The `eval` package's public API: `__all__` is sorted, resolves, and covers the modules' own."""

from __future__ import annotations

import importlib

import eval as package


def test_all_is_sorted_and_resolves() -> None:
    assert package.__all__ == sorted(package.__all__)
    assert [name for name in package.__all__ if not hasattr(package, name)] == []


def test_all_exports_every_public_name_of_the_library_modules() -> None:
    for name in ("eval.metrics", "eval.suite", "eval.retrieval"):
        module = importlib.import_module(name)
        missing = set(module.__all__) - set(package.__all__)
        assert missing == set(), f"{name} exports {sorted(missing)} that eval.__all__ lacks"
