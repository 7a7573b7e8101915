"""The HTTP API's request and response bodies."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    JsonValue,
    Strict,
    StringConstraints,
    model_validator,
)
from pydantic_core import CoreSchema

from rag.conversations import ID_PATTERN
from rag.feedback import MAX_COMMENT_CHARS, MAX_CORRECTION_CHARS, Rating
from rag.pipeline import StreamUnit
from rag.types import Filters

__all__ = ["AskRequest", "AskResponse", "CitationOut", "Day", "ErrorBody", "ErrorOut", "FeedbackRequest",
           "FeedbackResponse", "FiltersIn", "HealthOut", "ReadyOut", "Text", "TopK", "Turn", "Whole", "iso_day",
           "plain_text", "whole_number"]

_MAX_FILTER_VALUES = 50
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def plain_text(value: str) -> str:
    """The text as given, unless it holds what no customer types and stores choke on: a lone UTF-16
    surrogate (not Unicode text; it cannot be encoded to UTF-8) or a NUL character."""
    for i, char in enumerate(value):
        if "\ud800" <= char <= "\udfff" or char == "\x00":
            raise ValueError(f"character {i} is U+{ord(char):04X}, which is not allowed in text "
                             "(a lone surrogate or NUL): send valid UTF-8 text")
    return value


class _PlainInSchema:
    """Says in the schema what `plain_text` checks: no NUL (a lone surrogate is no JSON Schema string anyway)."""

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {**handler(schema), "pattern": "^[^\\u0000]*$"}


Text = Annotated[str, AfterValidator(plain_text), _PlainInSchema]


def whole_number(value: object) -> object:
    """An integer as JSON Schema counts one (3, or 3.0), not true or "3", which pydantic alone would take."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a whole number: send one without quotes")
    return value


def iso_day(value: object) -> object:
    """A day only as the schema's `format: date` writes it, YYYY-MM-DD: pydantic alone would also read 0,
    "0" or true as 1970-01-01."""
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DAY.fullmatch(value)):
        return value
    raise ValueError(f"{value!r} is not a day: send it as a string YYYY-MM-DD")


# Request models are strict, as the schema is (no 0 for false, no "4" or true for 4), but on whole numbers and days:
Whole = Annotated[int, BeforeValidator(whole_number), Strict(False)]  # 4.0 is an integer in JSON Schema
# (Bounds go before the validator: given on the field of an optional one, the schema would show them as "ge"/"le".)
TopK = Annotated[int, Field(ge=1, le=100), BeforeValidator(whole_number), Strict(False)]
Turn = Annotated[int, Field(ge=1), BeforeValidator(whole_number), Strict(False)]
Day = Annotated[date, BeforeValidator(iso_day), Strict(False)]  # parsed from its string


# Text with length limits, checked before `plain_text`.
Question = Annotated[str, StringConstraints(min_length=1), AfterValidator(plain_text), _PlainInSchema]
Comment = Annotated[str, StringConstraints(max_length=MAX_COMMENT_CHARS), AfterValidator(plain_text), _PlainInSchema]
Correction = Annotated[str, StringConstraints(max_length=MAX_CORRECTION_CHARS), AfterValidator(plain_text),
                       _PlainInSchema]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(plain_text),
                 _PlainInSchema]


class FiltersIn(BaseModel):
    """Restrict retrieval by metadata; each list means 'any of these', and all given keys must hold."""

    model_config = ConfigDict(extra="forbid", strict=True)

    doc_type: list[Literal["doc", "policy", "ticket"]] = Field(default_factory=list, max_length=3)
    product: list[Name] = Field(default_factory=list, examples=[["Aurora X2 headlamp"]], max_length=_MAX_FILTER_VALUES,
                                description="Exact product names (case-insensitive); see `rag index show`.")
    language: list[Name] = Field(default_factory=list, examples=[["en"]], max_length=_MAX_FILTER_VALUES)
    source: list[Name] = Field(default_factory=list, max_length=_MAX_FILTER_VALUES,
                               description="Document ids, e.g. policies/returns-policy-2025.md.")
    effective_on: Day | None = Field(None, description="Only policies in effect on this day (YYYY-MM-DD); "
                                                        "other doc types are not affected.")

    def to_filters(self) -> Filters:
        return Filters(doc_types=tuple(self.doc_type), languages=tuple(self.language), sources=tuple(self.source),
                       products=tuple(self.product), effective_on=self.effective_on)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [{"question": "How long do I have to return a jacket?", "top_k": 4,
                      "filters": {"doc_type": ["policy"]}}]})

    question: Question = Field(description="The customer's question (at most RAG_API__MAX_QUESTION_CHARS "
                                                     "characters, 2000 by default).")
    top_k: TopK | None = Field(None, description="How many passages to give the model: at most "
                                                 "RAG_RETRIEVAL__MAX_TOP_K (20 by default).")
    filters: FiltersIn | None = None
    conversation_id: str | None = Field(
        None, pattern=f"^{ID_PATTERN}$", examples=["chat-7f3a"],
        description="Continue this conversation: the question is read as a follow-up of its earlier turns and "
                    "rewritten to stand alone. Your own chat id works; leave it out to start a new conversation "
                    "(the response gives its id). Forgotten an hour (RAG_CONVERSATIONS__TTL_S) after its last turn.")
    stream: bool = Field(False, description="Answer as server-sent events: citations, deltas, done.")
    stream_unit: StreamUnit = Field(
        "token", description="Streaming only. token: the model's text as it comes (`done` may remove sentences); "
                             "sentence: each sentence once it is complete and verified, for clients that cannot "
                             "take text back.")


class CitationOut(BaseModel):
    n: int = Field(description="The passage number; the answer refers to it as [n].")
    source: str
    title: str
    snippet: str
    score: float = Field(description="Relevance of the passage to the question, 0..1 (comparable across questions).")
    cited: bool = Field(description="Whether the answer cites this passage.")
    doc_type: str
    section: str = ""
    page: int | None = None
    text: str = Field("", description="The whole passage as the model saw it.")
    span: tuple[int, int] | None = Field(None, description="[start, end) in `text` of the sentence that supports the "
                                                            "answer, for highlighting (cited passages only).")


class AskResponse(BaseModel):
    answer: str = Field(description="The answer, or the hand-off message when `decision` is escalate.")
    decision: Literal["answer", "clarify", "escalate"] = Field(
        description="answer: ship it; clarify: the question fits several products, `answer` asks which one "
                    "(`options`); escalate: hand the customer to a person (see `reason`).")
    options: list[str] = Field(default_factory=list, description="With clarify: the products the customer can "
                                                                 "choose from (ask again naming one, same conversation).")
    reason: str = Field(description="Why, in words a support agent understands.")
    confidence: float = Field(description="Best passage relevance × share of the answer's sentences backed by a passage.")
    removed: list[str] = Field(default_factory=list, description="Sentences of the model's answer that no passage "
                                                                  "backs (removed, or listed under lenient strictness).")
    citations: list[CitationOut]
    model: str
    prompt: str = Field(description="The prompt template as name@version.")
    index_version: str
    timings_ms: dict[str, float]
    conversation_id: str = Field(description="Send it with the next question to ask a follow-up.")
    answer_id: str = Field(description="Send it to POST /feedback to rate this answer.")
    standalone_question: str = Field("", description="The follow-up rewritten to stand alone, as retrieval saw "
                                                     "it; empty for the first question of a conversation.")


# What FeedbackRequest._one_answer checks, in the schema too (for client generators and the fuzzer):
# answer_id (and no conversation_id or turn), or conversation_id (and no answer_id).
_ONE_ANSWER: list[JsonValue] = [
    {"required": ["answer_id"], "properties": {"answer_id": {"type": "string"}, "conversation_id": {"type": "null"},
                                               "turn": {"type": "null"}}},
    {"required": ["conversation_id"], "properties": {"conversation_id": {"type": "string"},
                                                     "answer_id": {"type": "null"}}},
]


class FeedbackRequest(BaseModel):
    """A thumbs up or down on one answer, with what was wrong and, best, the right answer.

    Name the answer by the `answer_id` /ask returned with it, or by its conversation (and turn)."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [
        {"answer_id": "3f9c2a7d41b04e6f9a1d2c3b4a5e6f70", "rating": "down",
         "comment": "Opened electronics carry a 15% fee, not 10%.",
         "correction": "You can return it within 45 days; opened electronics carry a 15% restocking fee."},
        {"conversation_id": "chat-7f3a", "turn": 1, "rating": "up"}], "oneOf": _ONE_ANSWER})

    answer_id: str | None = Field(None, pattern=r"^[0-9a-f]{32}$", description="The answer_id /ask returned.")
    conversation_id: str | None = Field(None, pattern=f"^{ID_PATTERN}$", examples=["chat-7f3a"],
                                        description="Instead of answer_id: the conversation_id /ask returned.")
    turn: Turn | None = Field(None, description="With conversation_id: which answer, 1 for its first; leave it "
                                                "out for the last one.")
    rating: Rating = Field(description="up: a good answer; down: a bad one (exported as a regression case).")
    comment: Comment = Field("", description="What was wrong, in the agent's words.")
    correction: Correction | None = Field(None,
                                    description="The right answer, as the agent would write it: the exported case's "
                                                "reference answer.")

    @model_validator(mode="after")
    def _one_answer(self) -> FeedbackRequest:
        if (self.answer_id is None) == (self.conversation_id is None):
            raise ValueError("name the answer rated by answer_id (from /ask), or by conversation_id (and turn), "
                             "not both and not neither")
        if self.turn is not None and self.conversation_id is None:
            raise ValueError("turn goes with conversation_id; with answer_id, leave it out")
        return self


class FeedbackResponse(BaseModel):
    id: int = Field(description="The feedback record's id; `rag eval from-feedback` exports it as case feedback-<id>.")
    answer_id: str = Field(description="The answer rated ('' for one stored before answer ids existed).")
    conversation_id: str
    turn: int = Field(description="The answer rated: 1 for the conversation's first.")
    rating: Rating
    question: str = Field(description="The question of the answer rated, to check it is the one meant.")


class ErrorBody(BaseModel):
    type: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class HealthOut(BaseModel):
    """Liveness: the process answers HTTP. Whether it can answer questions is /ready's business."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="The service's version.")
    uptime_s: float


class ReadyOut(BaseModel):
    """Readiness: the index is loaded and the LLM server answers (or answers are extractive meanwhile)."""

    status: Literal["ready", "not_ready"]
    reasons: list[str] = Field(default_factory=list, description="Why not ready (or degraded), in words")
    index_version: str | None = None
    chunks: int | None = None
    embedding_model: str | None = None
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_reachable: bool | None = Field(None, description="The LLM server listed its models (probed at most every "
                                                         "RAG_API__READY_CACHE_S seconds)")
    llm_circuit: Literal["closed", "open", "half_open"] | None = Field(
        None, description="open: LLM calls fail fast after repeated server faults, until a trial call succeeds")
    degraded: bool = Field(False, description="The LLM server is down and answers are extractive "
                                              "(RAG_ANSWER__ON_LLM_FAILURE=extractive)")
    in_flight: int = Field(0, description="Answers being worked on now")
    reload_error: str | None = Field(None, description="why the newest index version is not served (the previous one is)")
