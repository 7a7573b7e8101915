"""The answer contract: escalate on low relevance, on the model's refusal, and by strictness on verification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

import prompts
from rag.decisions import HANDOFF, AnswerPolicy
from rag.pipeline import RagPipeline
from rag.tokenizer import TextTokenizer
from rag.types import Chunk, Filters, Message, ScoredChunk

RETURNS = "You can return most items within 45 days of delivery. Opened electronics carry a 15% restocking fee."
SHIPPING = "Standard shipping takes 3 to 5 business days. Orders over $75 ship free."
REFUSAL = prompts.load("answer").refusal


def hits(score: float = 0.8) -> list[ScoredChunk]:
    return [ScoredChunk(Chunk(id=1, text=RETURNS, source="policies/returns.md", title="Returns", doc_type="policy"), score),
            ScoredChunk(Chunk(id=2, text=SHIPPING, source="policies/shipping.md", title="Shipping", doc_type="policy"),
                        score - 0.2)]


class FixedRetriever:
    def __init__(self, found: list[ScoredChunk]) -> None:
        self.found = found

    def retrieve(self, question: str, *, top_k: int, filters: Filters | None = None) -> list[ScoredChunk]:
        return self.found[:top_k]


class CannedLLM:
    model = "canned"

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    async def complete(self, messages: Sequence[Message], **_: object) -> str:
        self.calls += 1
        return self.text

    async def stream(self, messages: Sequence[Message], **_: object) -> AsyncIterator[str]:
        self.calls += 1
        for word in self.text.split(" "):
            yield word + " "

    async def aclose(self) -> None:
        return None


def ask(text: str, *, found: list[ScoredChunk] | None = None, **policy: object) -> tuple[object, CannedLLM]:
    llm = CannedLLM(text)
    pipeline = RagPipeline(retriever=FixedRetriever(hits() if found is None else found), llm=llm,
                           prompt=prompts.load("answer"), index_version="v1", policy=AnswerPolicy(**policy))  # type: ignore[arg-type]
    return asyncio.run(pipeline.ask("How long do I have to return it?")), llm


def test_a_verified_answer_ships_with_confidence_spans_and_the_prompt_id() -> None:
    answer, _ = ask("You can return items within 45 days of delivery [1]. Orders over $75 ship free [2].")
    assert answer.decision == "answer" and answer.removed == () and answer.prompt == "answer@v2"  # type: ignore[attr-defined]
    assert answer.confidence == pytest.approx(0.8)  # type: ignore[attr-defined]
    first = answer.citations[0]  # type: ignore[attr-defined]
    assert first.cited and first.span is not None and first.text[slice(*first.span)].startswith("You can return")


def test_low_relevance_escalates_without_calling_the_model() -> None:
    answer, llm = ask("anything [1].", found=hits(score=0.3))
    assert answer.decision == "escalate" and answer.answer == HANDOFF and llm.calls == 0  # type: ignore[attr-defined]
    assert "0.30" in answer.reason and "0.40" in answer.reason  # type: ignore[attr-defined]
    nothing, llm = ask("anything", found=[])
    assert nothing.decision == "escalate" and "nothing matched" in nothing.reason and llm.calls == 0  # type: ignore[attr-defined]


def test_the_models_refusal_escalates() -> None:
    answer, llm = ask(REFUSAL)
    assert llm.calls == 1 and answer.decision == "escalate" and "do not answer" in answer.reason  # type: ignore[attr-defined]
    assert not any(c.cited for c in answer.citations)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("strictness", "decision", "kept"), [
    ("balanced", "answer", "You can return items within 45 days of delivery [1]."),
    ("strict", "escalate", HANDOFF),
    ("lenient", "answer", "You can return items within 45 days of delivery [1]. We also refund shipping both ways [2]."),
])
def test_unsupported_sentences_by_strictness(strictness: str, decision: str, kept: str) -> None:
    answer, _ = ask("You can return items within 45 days of delivery [1]. We also refund shipping both ways [2].",
                    strictness=strictness)
    assert answer.decision == decision and answer.answer == kept  # type: ignore[attr-defined]
    assert answer.removed == ("We also refund shipping both ways [2].",)  # type: ignore[attr-defined]
    assert answer.confidence == pytest.approx(0.4)  # type: ignore[attr-defined]


def test_nothing_supported_escalates_and_markers_to_missing_passages_are_dropped() -> None:
    wrong, _ = ask("Returns are accepted for 30 days [1].")
    assert wrong.decision == "escalate" and "not backed" in wrong.reason  # type: ignore[attr-defined]
    answer, _ = ask("You can return items within 45 days of delivery [1][9].")
    assert answer.decision == "answer" and answer.answer == "You can return items within 45 days of delivery [1]."  # type: ignore[attr-defined]
    assert "[9]" in answer.reason  # type: ignore[attr-defined]


def test_empty_output_escalates() -> None:
    answer, _ = ask("   ")
    assert answer.decision == "escalate" and "empty" in answer.reason  # type: ignore[attr-defined]


def test_the_stream_ends_with_the_verified_answer_and_the_decision() -> None:
    llm = CannedLLM("You can return items within 45 days of delivery [1]. We also refund shipping both ways [2].")
    pipeline = RagPipeline(retriever=FixedRetriever(hits()), llm=llm, prompt=prompts.load("answer"), index_version="v1")

    async def collect() -> list[tuple[str, dict[str, object]]]:
        return [(e.type, e.data) async for e in pipeline.stream("How long?")]

    events = asyncio.run(collect())
    done = events[-1][1]
    assert events[0][0] == "citations" and events[-1][0] == "done"
    assert done["decision"] == "answer" and done["answer"] == "You can return items within 45 days of delivery [1]."
    assert done["removed"] == ["We also refund shipping both ways [2]."] and done["cited"] == [1]


def test_policy_uses_the_tokenizer_for_chinese() -> None:
    zh = [ScoredChunk(Chunk(id=1, text="收到商品后45天内可以退货。", source="zh.md", title="退货", doc_type="policy"), 0.9)]
    outcome = AnswerPolicy().review("45天内可以退货。[1]", zh, TextTokenizer(), refusal=REFUSAL)
    assert outcome.decision == "answer" and outcome.confidence == pytest.approx(0.9)


def test_an_empty_reply_from_the_server_escalates_instead_of_failing(llm_server: object) -> None:
    from rag.llm import OpenAICompatibleLLM
    from rag.testing import Fault

    server = llm_server
    server.inject(Fault.empty(""), Fault.empty(""))  # type: ignore[attr-defined]
    llm = OpenAICompatibleLLM(base_url=server.base_url, model="scripted", retry_backoff_s=0.0)  # type: ignore[attr-defined]
    pipeline = RagPipeline(retriever=FixedRetriever(hits()), llm=llm, prompt=prompts.load("answer"), index_version="v1")

    async def run() -> tuple[object, list[tuple[str, dict[str, object]]]]:
        answer = await pipeline.ask("How long?")
        events = [(e.type, e.data) async for e in pipeline.stream("How long?")]
        await llm.aclose()
        return answer, events

    answer, events = asyncio.run(run())
    assert answer.decision == "escalate" and "empty" in answer.reason  # type: ignore[attr-defined]
    assert events[-1][1]["decision"] == "escalate" and events[-1][1]["answer"] == HANDOFF


def product_hit(n: int, product: str, score: float, doc_type: str = "doc") -> ScoredChunk:
    text = f"The {product} battery lasts 12 hours on a full charge."
    chunk = Chunk(id=n, text=text, source=f"docs/{n}.md", title=product, doc_type=doc_type,  # type: ignore[arg-type]
                  metadata={"product": product} if product else {})
    return ScoredChunk(chunk, score)


AMBIGUOUS = [product_hit(1, "Aurora X2 headlamp", 0.62), product_hit(2, "Tidal BT5 speaker", 0.58),
             product_hit(3, "Volt 300 power station", 0.45)]


def clarify(question: str, found: list[ScoredChunk], **policy: object) -> object:
    return AnswerPolicy(**policy).before_generation(question, found, TextTokenizer())  # type: ignore[arg-type]


def test_a_question_that_fits_several_products_and_names_none_asks_which_one() -> None:
    outcome = clarify("How long does the battery last?", AMBIGUOUS)
    assert outcome.decision == "clarify"  # type: ignore[attr-defined]
    assert outcome.options == ("Aurora X2 headlamp", "Tidal BT5 speaker")  # type: ignore[attr-defined]
    assert outcome.text == "Which product do you mean: Aurora X2 headlamp or Tidal BT5 speaker?"  # type: ignore[attr-defined]
    assert "fits 2 products" in outcome.reason  # type: ignore[attr-defined]
    wider = clarify("How long does the battery last?", AMBIGUOUS, clarify_margin=0.2,
                    clarify_message="Pick one: {options}")
    assert wider.text == "Pick one: Aurora X2 headlamp, Tidal BT5 speaker or Volt 300 power station"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("question", "found"), [
    ("How long does the speaker battery last?", AMBIGUOUS),  # names one ("speaker")
    ("How long does the Aurora battery last?", AMBIGUOUS),
    ("How long does the battery last?", [*AMBIGUOUS[:1], product_hit(2, "Tidal BT5 speaker", 0.45)]),  # one is clearly ahead
    ("How long does the battery last?", [product_hit(9, "", 0.7, "policy"), *AMBIGUOUS]),  # a policy on top
    ("How long does the battery last?", [product_hit(1, "Aurora X2 headlamp", 0.62),
                                         product_hit(2, "Aurora X2 headlamp", 0.61)]),  # one product, two passages
])
def test_no_clarification_when_the_question_names_a_product_or_one_source_stands_out(
    question: str, found: list[ScoredChunk],
) -> None:
    assert clarify(question, found) is None


def test_clarification_can_be_turned_off_and_never_calls_the_model() -> None:
    assert clarify("How long does the battery last?", AMBIGUOUS, clarify_margin=0) is None
    answer, llm = ask("unused", found=AMBIGUOUS)
    assert answer.decision == "clarify" and llm.calls == 0  # type: ignore[attr-defined]
    assert answer.options == ("Aurora X2 headlamp", "Tidal BT5 speaker")  # type: ignore[attr-defined]
