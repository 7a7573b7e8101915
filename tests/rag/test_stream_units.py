"""Streaming by verified sentence: what a client that cannot take text back gets to see."""

from __future__ import annotations

import asyncio

import prompts
from rag.decisions import HANDOFF, AnswerPolicy
from rag.pipeline import RagPipeline, StreamEvent, StreamUnit
from tests.rag.test_decisions import CannedLLM, FixedRetriever, hits

GOOD_1 = "You can return most items within 45 days of delivery [1]."
GOOD_2 = "Standard shipping takes 3 to 5 business days [2]."
BAD = "Returns are free for everyone forever and ever [1]."


def stream(text: str, unit: StreamUnit = "sentence", **policy: object) -> list[StreamEvent]:
    pipeline = RagPipeline(retriever=FixedRetriever(hits()), llm=CannedLLM(text), prompt=prompts.load("answer"),
                           index_version="v1", policy=AnswerPolicy(**policy))  # type: ignore[arg-type]

    async def run() -> list[StreamEvent]:
        return [e async for e in pipeline.stream("How long do I have to return it?", unit=unit)]

    return asyncio.run(run())


def deltas(events: list[StreamEvent]) -> list[str]:
    return [e.data["text"] for e in events if e.type == "delta"]


def test_whole_verified_sentences_are_streamed_and_add_up_to_the_final_answer() -> None:
    events = stream(f"{GOOD_1} {GOOD_2}")
    assert deltas(events) == [GOOD_1, " " + GOOD_2]
    assert "".join(deltas(events)) == events[-1].data["answer"] and events[-1].data["decision"] == "answer"


def test_an_unsupported_sentence_never_reaches_the_client_and_later_good_ones_follow_at_the_end() -> None:
    events = stream(f"{GOOD_1} {BAD} {GOOD_2}")
    assert deltas(events) == [GOOD_1, " " + GOOD_2]  # the second only once the whole answer was reviewed
    assert not any("forever" in d for d in deltas(events))
    assert events[-1].data["removed"] == [BAD] and "".join(deltas(events)) == events[-1].data["answer"]


def test_a_refusal_streams_only_the_hand_off_message() -> None:
    events = stream(prompts.load("answer").refusal)
    assert deltas(events) == [HANDOFF] and events[-1].data["decision"] == "escalate"


def test_strict_streams_nothing_before_the_whole_answer_is_reviewed() -> None:
    events = stream(f"{GOOD_1} {BAD}", strictness="strict")
    assert deltas(events) == [HANDOFF] and events[-1].data["decision"] == "escalate"
    events = stream(f"{GOOD_1} {GOOD_2}", strictness="strict")
    assert deltas(events) == [f"{GOOD_1} {GOOD_2}"]


def test_a_marker_to_a_passage_never_given_is_dropped_from_the_streamed_sentence() -> None:
    events = stream(GOOD_1.replace("[1]", "[1][7]") + " " + GOOD_2)
    assert deltas(events)[0] == GOOD_1 and "[7]" not in "".join(deltas(events))


def test_token_streaming_relays_the_model_as_it_writes_and_done_has_the_final_word() -> None:
    events = stream(f"{GOOD_1} {BAD}", unit="token")
    assert "".join(deltas(events)).split() == f"{GOOD_1} {BAD}".split()  # as written, unsupported sentence included
    assert events[-1].data["answer"] == GOOD_1 and events[-1].data["removed"] == [BAD]
