"""Structured output on the real vLLM (CPU): the answer schema's citation enum holds under guided decoding.

The model is a tiny base model (gemma-3-270m): these tests check the format, not the answer.
Starts the server as `rag llm serve` does (its environment under RAG_TEST_VLLM_HOME or ~/.cache/rag/vllm).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from rag.answer_format import StructuredStream, answer_schema, parse_answer
from rag.llm import OpenAICompatibleLLM
from rag.llm.server import VLLMServer
from rag.types import Message

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

PASSAGES = 3
MESSAGES = [
    Message("system", "You are the support assistant of an online store. Answer in JSON from the numbered passages, "
            "citing them by number.\n\nPassages:\n"
            "[1] (Returns policy — policies/returns.md)\nYou can return most items within 45 days of delivery.\n\n"
            "[2] (Shipping policy — policies/shipping.txt)\nStandard shipping takes 3 to 5 business days.\n\n"
            "[3] (Aurora X2 — docs/aurora.md)\nThe Aurora X2 charges over USB-C in about 4 hours."),
    # one worked example: the base model copies its shape (the grammar enforces the format either way)
    Message("user", "How long does standard shipping take?"),
    Message("assistant", '{"answerable": true, "sentences": [{"text": "Standard shipping takes 3 to 5 business days.", '
            '"citations": [2]}]}'),
    Message("user", "How many days do I have to return an item?"),
]


def _client(vllm: VLLMServer) -> OpenAICompatibleLLM:
    """The answer prompt's stop sequences given too: with a schema they must not be sent, or "\n[" could cut the JSON."""
    return OpenAICompatibleLLM(base_url=vllm.base_url, model=vllm.served_model_name, structured_output="on",
                               timeout_s=300, max_tokens=200, stop=["\nQuestion:", "\n["])


def _check(raw: str) -> None:
    """The reply is JSON following the schema, and every citation is a passage that was given."""
    data = json.loads(raw)
    cites = [n for sentence in data["sentences"] for n in sentence["citations"]]
    assert all(type(n) is int and 1 <= n <= PASSAGES for n in cites), cites
    parsed = parse_answer(raw, PASSAGES)
    assert parsed.structured and parsed.invalid_citations == ()
    assert parsed.answerable is data["answerable"]


def test_complete_follows_the_answer_schema(vllm: VLLMServer) -> None:
    async def main() -> str:
        llm = _client(vllm)
        try:
            return await llm.complete(MESSAGES, schema=answer_schema(PASSAGES))
        finally:
            await llm.aclose()

    tick = time.perf_counter()
    raw = asyncio.run(main())
    print(f"\ncomplete in {time.perf_counter() - tick:.2f} s:\n{raw}\nrendered: {parse_answer(raw, PASSAGES)}")
    _check(raw)


def test_stream_renders_through_structured_stream(vllm: VLLMServer) -> None:
    async def main() -> tuple[list[str], str, float]:
        llm, renderer, pieces, shown = _client(vllm), StructuredStream(PASSAGES), [], []
        tick, first = time.perf_counter(), 0.0
        try:
            async for piece in llm.stream(MESSAGES, schema=answer_schema(PASSAGES)):
                first = first or time.perf_counter() - tick
                pieces.append(piece)
                shown.append(renderer.feed(piece))
        finally:
            await llm.aclose()
        shown.append(renderer.finish())
        return pieces, "".join(shown), first

    tick = time.perf_counter()
    pieces, shown, first = asyncio.run(main())
    raw = "".join(pieces)
    print(f"\nstream: {len(pieces)} pieces, first after {first:.2f} s, all in {time.perf_counter() - tick:.2f} s:\n"
          f"{raw}\nshown live: {shown!r}")
    _check(raw)
    assert shown == parse_answer(raw, PASSAGES).text
