"""POST /feedback: a thumbs up or down on an answer, stored until exported (`rag eval from-feedback`,
GET /admin/feedback)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.params import Depends

from rag import metrics
from rag.api.schemas import ErrorOut, FeedbackRequest, FeedbackResponse
from rag.api.state import current_runtime
from rag.feedback import rate_answer, rate_turn

__all__ = ["install_feedback_routes"]

_EXPIRED = ("answer '3f9c2a7d41b04e6f9a1d2c3b4a5e6f70' is unknown or has expired: rate an answer within 1 hour of "
            "its conversation's last answer (RAG_CONVERSATIONS__TTL_S), with the answer_id that /ask returned")
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "Unknown or expired answer or conversation, or no such turn in it",
          "content": {"application/json": {"example": {"error": {"type": "not_found", "message": _EXPIRED}}}}},
    422: {"model": ErrorOut, "description": "Invalid answer_id, conversation_id, turn, rating, or a comment or "
                                            "correction over its length limit"},
    503: {"model": ErrorOut, "description": "The service is still starting"},
    507: {"model": ErrorOut, "description": "The feedback store cannot be written (disk full, database down); "
                                            "nothing stored before is lost"},
}


def install_feedback_routes(app: FastAPI, *, dependencies: Sequence[Depends] = ()) -> None:
    @app.post("/feedback", status_code=201, response_model=FeedbackResponse, responses=_ERRORS,
              dependencies=list(dependencies),
              summary="Rate an answer: thumbs up or down, with a comment and the right answer")
    async def feedback(body: FeedbackRequest, request: Request) -> FeedbackResponse:
        """Rate one answer, named by its `answer_id` (or its conversation and turn), within the conversation's
        lifetime.

        The record copies the question, the answer, its decision and cited sources and the earlier
        turns, so it outlives the conversation; `rag eval from-feedback` turns the thumbs-down ones into
        regression cases (the correction becomes the reference answer).
        """
        runtime = current_runtime(request)
        rating, comment, correction = body.rating, body.comment, body.correction
        if body.answer_id is not None:
            answer_id = body.answer_id
            record, conversation, turn = await anyio.to_thread.run_sync(lambda: rate_answer(
                runtime.conversations, runtime.feedback, answer_id, rating=rating, comment=comment,
                correction=correction))
        else:
            conversation = body.conversation_id or ""
            record, turn = await anyio.to_thread.run_sync(lambda: rate_turn(
                runtime.conversations, runtime.feedback, conversation, turn=body.turn, rating=rating, comment=comment,
                correction=correction))
        metrics.FEEDBACK.labels(body.rating).inc()
        return FeedbackResponse(id=record, answer_id=turn.answer_id, conversation_id=conversation, turn=turn.n,
                                rating=body.rating, question=turn.question)
