from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.tickets import TicketLoader, looks_like_tickets
from rag.errors import DocumentParseError

TICKETS = [
    {"ticket_id": "T-1", "status": "resolved", "subject": "Broken zipper", "customer_name": "Ann Example",
     "customer_email": "ann@example.com", "customer_message": "The zipper broke.", "agent_resolution": "Sent a new one.",
     "product": "Cascade 2P", "created_at": "2025-05-01"},
    {"ticket_id": "T-2", "status": "open", "subject": "Late", "customer_message": "Where is it?", "agent_resolution": ""},
]


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_resolved_tickets_become_question_plus_resolution(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", TICKETS)
    assert looks_like_tickets(path)
    [ticket] = TicketLoader().load(path, source="tickets/t.jsonl", doc_type="ticket").documents
    assert ticket.source == "tickets/t.jsonl#T-1" and ticket.title == "Broken zipper"
    assert "Customer: The zipper broke." in ticket.text and "Resolution: Sent a new one." in ticket.text
    assert ticket.metadata == {"ticket_id": "T-1", "status": "resolved", "product": "Cascade 2P", "created_at": "2025-05-01"}
    assert "Ann Example" not in ticket.text and "ann@example.com" not in ticket.text


def test_unresolved_on_request_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,status,subject,customer_message,agent_resolution\n"
                    "C-1,pending,Refund?,When is my refund?,\nC-2,resolved,Size,Which size?,Take M.\n", encoding="utf-8")
    assert [d.source for d in TicketLoader().load(path, source="t.csv", doc_type="ticket").documents] == ["t.csv#C-2"]
    assert len(TicketLoader(include_unresolved=True).load(path, source="t.csv", doc_type="ticket").documents) == 2


def test_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(json.dumps(TICKETS[0]) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(DocumentParseError, match=r"bad.jsonl:2: not valid JSON"):
        TicketLoader().load(bad_json, source="bad.jsonl", doc_type="ticket")
    missing = write_jsonl(tmp_path / "missing.jsonl", [{"ticket_id": "X", "status": "resolved", "subject": "s",
                                                        "customer_message": ""}])
    with pytest.raises(DocumentParseError, match=r"missing\.jsonl:1: ticket lacks customer_message"):
        TicketLoader().load(missing, source="m.jsonl", doc_type="ticket")


def test_other_jsonl_is_not_tickets(tmp_path: Path) -> None:
    assert not looks_like_tickets(write_jsonl(tmp_path / "x.jsonl", [{"a": "b"}]))
    (tmp_path / "garbage.jsonl").write_text("not json\n")
    assert not looks_like_tickets(tmp_path / "garbage.jsonl")
