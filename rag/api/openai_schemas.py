"""Request and response bodies of the OpenAI-compatible routes (/v1/chat/completions, /v1/models)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from rag.api.schemas import CitationOut, FiltersIn, Text, TopK, Whole

__all__ = [
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "ChatMessageOut",
    "ContentPart",
    "ModelCard",
    "ModelList",
    "OpenAIErrorBody",
    "OpenAIErrorOut",
    "RagExtra",
    "StreamOptions",
    "Usage",
]

_IGNORED = "Accepted for compatibility and ignored: the service's own settings apply."


class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts carry the question."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str = Field(examples=["text"])
    text: Text | None = None


def _content_kind(content: Any) -> str:
    return "parts" if isinstance(content, list) else "text"


# Told apart by type, so that a bad message names one problem ("content.text: ...") rather than one per kind.
Content = Annotated[Annotated[Text, Tag("text")] | Annotated[list[ContentPart], Tag("parts")], Discriminator(_content_kind)]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Content | None = Field(
        None, description="A string or a list of `{\"type\": \"text\", \"text\": ...}` parts.")
    name: str | None = None

    def text(self) -> str:
        """The message's text: the string, or its text parts joined (other parts left out)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content or () if part.type == "text" and part.text)

    def other_parts(self) -> list[str]:
        """The types of the parts that are not text (images, audio, files)."""
        parts = [] if isinstance(self.content, str) else self.content or []
        return [part.type for part in parts if part.type != "text"]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    include_usage: bool = Field(False, description="Send a last chunk with `usage` (and empty `choices`).")


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completions body, plus the optional RAG fields `filters` and `top_k`."""

    model_config = ConfigDict(extra="allow", strict=True, json_schema_extra={"examples": [{
        "model": "rag", "messages": [{"role": "user", "content": "How long do I have to return a jacket?"}],
        "filters": {"doc_type": ["policy"]}}]})

    model: str = Field(description="The name GET /v1/models lists (default `rag`).")
    messages: list[ChatMessageIn] = Field(min_length=1, description=(
        "The last message must be the user's question; earlier user/assistant pairs are the conversation. "
        "System and developer messages are ignored."))
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Whole = Field(1, description="Must be 1: one answer per request.")
    temperature: float | None = Field(None, description=_IGNORED)
    top_p: float | None = Field(None, description=_IGNORED)
    max_tokens: Whole | None = Field(None, description=_IGNORED + " (RAG_LLM__MAX_TOKENS)")
    max_completion_tokens: Whole | None = Field(None, description=_IGNORED + " (RAG_LLM__MAX_TOKENS)")
    stop: str | list[str] | None = Field(None, description=_IGNORED)
    seed: Whole | None = Field(None, description=_IGNORED)
    user: str | None = Field(None, description=_IGNORED)
    presence_penalty: float | None = Field(None, description=_IGNORED)
    frequency_penalty: float | None = Field(None, description=_IGNORED)
    top_k: TopK | None = Field(None, description="RAG: how many passages to give the model (at most "
                                                 "RAG_RETRIEVAL__MAX_TOP_K, 20 by default).")
    filters: FiltersIn | None = Field(None, description="RAG: restrict retrieval by metadata, as in POST /ask.")

    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class RagExtra(BaseModel):
    """The retrieval side of the answer, as POST /ask gives it."""

    model_config = ConfigDict(extra="ignore")

    citations: list[CitationOut] = Field(description="The passages shown to the model; `cited` flags those the "
                                                     "answer refers to as [n].")
    decision: Literal["answer", "clarify", "escalate"]
    reason: str
    confidence: float
    removed: list[str] = Field(default_factory=list)
    options: list[str] = Field(default_factory=list)
    standalone_question: str = Field("", description="The last user message rewritten to stand alone, as "
                                                     "retrieval saw it; empty for a first question.")
    prompt: str
    index_version: str
    timings_ms: dict[str, float]


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    """Token counts estimated with `rag.prompting.estimate_tokens`, not the LLM server's own count."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                   total_tokens=prompt_tokens + completion_tokens)


class ChatCompletion(BaseModel):
    id: str = Field(examples=["chatcmpl-3f2a..."])
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    rag: RagExtra = Field(description="Extra field: citations and the decision (openai SDK: "
                                      "`completion.model_extra['rag']`).")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "rag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int | str | None = None


class OpenAIErrorOut(BaseModel):
    error: OpenAIErrorBody

    @classmethod
    def of(cls, status: int, kind: str, message: str, param: str | None = None) -> dict[str, Any]:
        return cls(error=OpenAIErrorBody(message=message, type=kind, param=param, code=status)).model_dump()
