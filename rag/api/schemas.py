"""The HTTP API's request and response bodies."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rag.conversations import ID_PATTERN
from rag.feedback import MAX_COMMENT_CHARS, MAX_CORRECTION_CHARS, Rating
from rag.pipeline import StreamUnit
from rag.types import Filters

__all__ = ["AskRequest", "AskResponse", "CitationOut", "ErrorBody", "ErrorOut", "FeedbackRequest", "FeedbackResponse",
           "FiltersIn", "HealthOut"]


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class FiltersIn(BaseModel):
    """Restrict retrieval by metadata; each list means 'any of these', and all given keys must hold."""

    model_config = ConfigDict(extra="forbid")

    doc_type: list[Literal["doc", "policy", "ticket"]] = Field(default_factory=list)
    product: list[Name] = Field(default_factory=list, examples=[["Aurora X2 headlamp"]],
                                description="Exact product names (case-insensitive); see `rag index show`.")
    language: list[Name] = Field(default_factory=list, examples=[["en"]])
    source: list[Name] = Field(default_factory=list, description="Document ids, e.g. policies/returns-policy-2025.md.")
    effective_on: date | None = Field(None, description="Only policies in effect on this day (YYYY-MM-DD); "
                                                        "other doc types are not affected.")

    def to_filters(self) -> Filters:
        return Filters(doc_types=tuple(self.doc_type), languages=tuple(self.language), sources=tuple(self.source),
                       products=tuple(self.product), effective_on=self.effective_on)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"question": "How long do I have to return a jacket?", "top_k": 4,
                      "filters": {"doc_type": ["policy"]}}]})

    question: str = Field(min_length=1, description="The customer's question.")
    top_k: int | None = Field(None, ge=1, le=100, description="How many passages to give the model.")
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
    standalone_question: str = Field("", description="The follow-up rewritten to stand alone, as retrieval saw "
                                                     "it; empty for the first question of a conversation.")


class FeedbackRequest(BaseModel):
    """A thumbs up or down on one answer of a conversation, with what was wrong and, best, the right answer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"conversation_id": "chat-7f3a", "rating": "down", "comment": "Opened electronics carry a 15% fee, not 10%.",
         "correction": "You can return it within 45 days; opened electronics carry a 15% restocking fee."},
        {"conversation_id": "chat-7f3a", "turn": 1, "rating": "up"}]})

    conversation_id: str = Field(pattern=f"^{ID_PATTERN}$", examples=["chat-7f3a"],
                                 description="The conversation_id /ask returned with the answer.")
    turn: int | None = Field(None, ge=1, description="Which answer of the conversation: 1 for its first; leave it out "
                                                     "for the last one.")
    rating: Rating = Field(description="up: a good answer; down: a bad one (exported as a regression case).")
    comment: str = Field("", max_length=MAX_COMMENT_CHARS, description="What was wrong, in the agent's words.")
    correction: str | None = Field(None, max_length=MAX_CORRECTION_CHARS,
                                   description="The right answer, as the agent would write it: the exported case's "
                                               "reference answer.")


class FeedbackResponse(BaseModel):
    id: int = Field(description="The feedback record's id; `rag eval from-feedback` exports it as case feedback-<id>.")
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
    status: Literal["ok", "unavailable"]
    index_version: str | None = None
    chunks: int | None = None
    embedding_model: str | None = None
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_reachable: bool | None = None
    reason: str | None = None
    reload_error: str | None = Field(None, description="why the newest index version is not served (the previous one is)")
