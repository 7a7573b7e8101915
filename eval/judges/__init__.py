"""Judges of answer faithfulness and relevance, pluggable by name.

`get_judge("offline")` needs no LLM and runs anywhere (CI included); `get_judge("llm", base_url=...,
model=...)` asks any OpenAI-compatible server (vLLM). Other packages add judges through the
`rag.judges` entry-point group: the entry point's name is the judge's name and it loads a factory
`(**options) -> Judge`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from eval.judges.base import ClaimVerdict, Judge, JudgeInput, Judgement, Progress
from rag.errors import InputError

__all__ = ["ClaimVerdict", "Judge", "JudgeInput", "Judgement", "Progress", "get_judge", "judge_names"]

_BUILT_IN = {"offline": "eval.judges.offline:build", "llm": "eval.judges.llm:build"}


def judge_names() -> list[str]:
    """Every judge that can be asked for by name: the built-in ones, then plugins."""
    plugins = [ep.name for ep in entry_points(group="rag.judges")]
    return list(dict.fromkeys([*_BUILT_IN, *plugins]))


def get_judge(name: str, **options: Any) -> Judge:
    """The judge registered as `name`, built with `options` (those it does not take are an error)."""
    factory = _factory(name)
    try:
        return factory(**options)
    except TypeError as exc:
        raise InputError(f"judge {name!r}: {exc}") from exc


def _factory(name: str) -> Callable[..., Judge]:
    if name in _BUILT_IN:
        module, attribute = _BUILT_IN[name].split(":")
        return getattr(import_module(module), attribute)  # type: ignore[no-any-return]
    for ep in entry_points(group="rag.judges"):
        if ep.name == name:
            return ep.load()  # type: ignore[no-any-return]
    raise InputError(f"no judge named {name!r}: choose one of {', '.join(judge_names())}")
