"""Feedback records (`rag.feedback`) as eval suite cases: every answer rated down becomes a regression case.

A case asks the customer's question again, after the same earlier turns; the agent's correction, when
given, is its reference answer. Its `notes` keep the comment and what the service answered (decision,
cited sources, index version), so that whoever completes the case (relevant_sources,
expected_decision) sees what went wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from rag.errors import InputError
from rag.feedback import Feedback

__all__ = ["RATING_CHOICES", "RatingChoice", "feedback_cases"]

RatingChoice = Literal["down", "up", "all"]
RATING_CHOICES: tuple[RatingChoice, ...] = ("down", "up", "all")


def feedback_cases(records: Iterable[Feedback], *, rating: RatingChoice = "down") -> list[dict[str, Any]]:
    """One suite case per record with this rating (all: every record), in the records' order."""
    if rating not in RATING_CHOICES:
        raise InputError(f"rating {rating!r} is not one of {', '.join(RATING_CHOICES)}: pick one of them")
    return [_case(record) for record in records if rating == "all" or record.rating == rating]


def _case(record: Feedback) -> dict[str, Any]:
    """The golden suite's keys; `conversation` and `reference_answer` only when the record has them."""
    case: dict[str, Any] = {"id": f"feedback-{record.id}", "question": record.question}
    if record.earlier:
        case["conversation"] = [{"question": t.question, "answer": t.answer} for t in record.earlier]
    if record.correction:
        case["reference_answer"] = record.correction
    case["tags"] = ["feedback", f"rating-{record.rating}"]
    case["notes"] = _notes(record)
    return case


def _notes(record: Feedback) -> str:
    """What the reviewer needs to complete the case: the comment, and what the service did."""
    answer_id = f" (answer_id {record.answer_id})" if record.answer_id else ""  # as the client knew the answer
    lines = [f"feedback {record.id}: rated {record.rating} on {record.created}, answer {record.turn} of "
             f"conversation {record.conversation_id}{answer_id}"]
    if record.comment:
        lines.append(f"comment: {record.comment}")
    if record.standalone:
        lines.append(f"rewritten as: {record.standalone}")
    lines.append(f"answered ({record.decision or 'unknown decision'}, index {record.index_version or 'unknown'}): "
                 f"{record.answer}")
    lines.append(f"cited: {', '.join(record.sources) or 'nothing'}")
    return "\n".join(lines)
