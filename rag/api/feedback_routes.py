"""POST /feedback: a thumbs up or down on an answer, stored until `rag eval from-feedback` exports it."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request

from rag.api.schemas import ErrorOut, FeedbackRequest, FeedbackResponse
from rag.api.state import current_runtime
from rag.feedback import rate_turn

__all__ = ["install_feedback_routes"]

_EXPIRED = ("conversation 'chat-7f3a' is unknown or has expired: send feedback within 1 hour of the conversation's "
            "last answer (RAG_CONVERSATIONS__TTL_S), with the conversation_id that /ask returned")
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Unknown or expired conversation, or no such turn in it",
          "content": {"application/json": {"example": {"error": {"type": "not_found", "message": _EXPIRED}}}}},
    422: {"model": ErrorOut, "description": "Invalid conversation_id, turn, rating, or a comment or correction "
                                            "over its length limit"},
    503: {"model": ErrorOut, "description": "The service is still starting"},
}


def install_feedback_routes(app: FastAPI) -> None:
    @app.post("/feedback", status_code=201, response_model=FeedbackResponse, responses=_ERRORS,
              summary="Rate an answer: thumbs up or down, with a comment and the right answer")
    async def feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
        """Rate one answer of a conversation (the last by default) within the conversation's lifetime.

        The record copies the question, the answer, its decision and cited sources and the earlier
        turns, so it outlives the conversation; `rag eval from-feedback` turns the thumbs-down ones into
        regression cases (the correction becomes the reference answer).
        """
        runtime = current_runtime(request)
        record, turn = await anyio.to_thread.run_sync(lambda: rate_turn(
            runtime.conversations, runtime.feedback, body.conversation_id, turn=body.turn, rating=body.rating,
            comment=body.comment, correction=body.correction))
        return FeedbackResponse(id=record, conversation_id=body.conversation_id, turn=turn.n, rating=body.rating,
                                question=turn.question)
