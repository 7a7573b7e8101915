"""Tickets from JSONL, CSV and e-mail: fields, resolved-only, malformed records left out with reasons."""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from ingest.email_tickets import EmailTicketLoader, looks_like_ticket_email
from ingest.tickets import TicketLoader, looks_like_tickets
from rag.errors import DocumentParseError

SAMPLE_TICKETS = Path(__file__).resolve().parents[2] / "samples" / "corpus" / "tickets"
STORE = "support@nordhaven.example"

TICKETS = [
    {"ticket_id": "T-1", "status": "resolved", "subject": "Broken zipper", "customer_name": "Ann Example",
     "customer_email": "ann@example.com", "customer_message": "The zipper broke.", "agent_resolution": "Sent a new one.",
     "product": "Cascade 2P", "created_at": "2025-05-01"},
    {"ticket_id": "T-2", "status": "open", "subject": "Late", "customer_message": "Where is it?", "agent_resolution": ""},
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def ticket(ticket_id: str, status: str = "resolved") -> str:
    return json.dumps({"ticket_id": ticket_id, "status": status, "subject": f"Question {ticket_id}",
                       "customer_message": "Does it fit?", "agent_resolution": "Yes."})


def test_resolved_tickets_become_question_plus_resolution(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", TICKETS)
    assert looks_like_tickets(path)
    loaded = TicketLoader().load(path, source="tickets/t.jsonl", doc_type="ticket")
    [doc] = loaded.documents
    assert doc.source == "tickets/t.jsonl#T-1" and doc.title == "Broken zipper"
    assert "Customer: The zipper broke." in doc.text and "Resolution: Sent a new one." in doc.text
    assert doc.metadata == {"ticket_id": "T-1", "status": "resolved", "product": "Cascade 2P", "created_at": "2025-05-01"}
    assert "Ann Example" not in doc.text and "ann@example.com" not in doc.text
    assert loaded.skipped == []  # the open ticket is left out by design, not skipped


def test_unresolved_on_request_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,status,subject,customer_message,agent_resolution\n"
                    "C-1,pending,Refund?,When is my refund?,\nC-2,resolved,Size,Which size?,Take M.\n", encoding="utf-8")
    assert looks_like_tickets(path)
    assert [d.source for d in TicketLoader().load(path, source="t.csv", doc_type="ticket").documents] == ["t.csv#C-2"]
    assert len(TicketLoader(include_unresolved=True).load(path, source="t.csv", doc_type="ticket").documents) == 2


def test_malformed_jsonl_lines_are_left_out_with_line_and_reason(tmp_path: Path) -> None:
    missing = json.dumps({"ticket_id": "T-4", "status": "resolved", "subject": "s", "customer_message": " "})
    lines = [ticket("T-1"), "{oops", "[1, 2]", "", missing, ticket("T-1"), ticket("T-5")]
    path = tmp_path / "t.jsonl"
    path.write_bytes("\n".join(lines).encode() + b'\n{"ticket_id": "caf\xe9"}\n')
    loaded = TicketLoader().load(path, source="tickets/t.jsonl", doc_type="ticket")
    assert [d.source for d in loaded.documents] == ["tickets/t.jsonl#T-1", "tickets/t.jsonl#T-5"]
    assert [where for where, _ in loaded.skipped] == [f"tickets/t.jsonl:{n}" for n in (2, 3, 5, 6, 8)]
    reasons = [reason for _, reason in loaded.skipped]
    assert reasons[0] == "not valid JSON (Expecting property name enclosed in double quotes at column 2)"
    assert reasons[1] == "expected a JSON object, found an array"
    assert reasons[2] == "missing customer_message (every ticket needs ticket_id, status, subject, customer_message)"
    assert reasons[3] == "duplicate ticket_id T-1 (first on line 1); kept the first"
    assert reasons[4] == "not valid UTF-8 (byte 0xe9 at column 19); re-export as UTF-8"


def test_malformed_csv_rows_are_left_out_and_line_numbers_count_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ticket_id,status,subject,customer_message,agent_resolution\n"
                    'C-1,resolved,Size,"Which size\nfor 190 cm?",Take the Long.\n'
                    "C-2,resolved,Colour,Red or blue?,Blue,extra\n"
                    "C-1,resolved,Size again,Which size?,M\n"
                    "C-3,resolved,,No subject here,Fine\n"
                    "C-4,resolved,Kettle,Descale how?,Use citric acid.\n", encoding="utf-8")
    loaded = TicketLoader().load(path, source="t.csv", doc_type="ticket")
    assert [d.source for d in loaded.documents] == ["t.csv#C-1", "t.csv#C-4"]
    assert "Which size\nfor 190 cm?" in loaded.documents[0].text
    assert loaded.skipped == [
        ("t.csv:4", "has 6 fields but the header has 5; check the quoting of this row"),
        ("t.csv:5", "duplicate ticket_id C-1 (first on line 2); kept the first"),
        ("t.csv:6", "missing subject (every ticket needs ticket_id, status, subject, customer_message)"),
    ]


def test_excel_csv_in_windows_1252_or_with_a_bom_loads(tmp_path: Path) -> None:
    text = "ticket_id,status,subject,customer_message,agent_resolution\nC-1,resolved,Café,Où est ma commande ?,Livrée.\n"
    for name, data in (("cp.csv", text.encode("cp1252")), ("bom.csv", text.encode("utf-8-sig"))):
        (tmp_path / name).write_bytes(data)
        assert looks_like_tickets(tmp_path / name)
        [doc] = TicketLoader().load(tmp_path / name, source=name, doc_type="ticket").documents
        assert doc.title == "Café" and "Où est ma commande ?" in doc.text


def test_a_file_without_one_valid_ticket_is_not_a_ticket_export(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{oops\n[1]\n", encoding="utf-8")
    with pytest.raises(DocumentParseError, match=r"bad\.jsonl is not a ticket export: none of its 2 records .*"
                                                 r"\(bad\.jsonl:1: not valid JSON"):
        TicketLoader().load(path, source="bad.jsonl", doc_type="ticket")
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text("order,total\n1,20\n", encoding="utf-8")
    assert not looks_like_tickets(csv_path)
    with pytest.raises(DocumentParseError, match=r"orders\.csv is not a ticket export: its CSV header lacks ticket_id"):
        TicketLoader().load(csv_path, source="orders.csv", doc_type="ticket")


def test_other_jsonl_is_not_tickets(tmp_path: Path) -> None:
    assert not looks_like_tickets(write_jsonl(tmp_path / "x.jsonl", [{"a": "b"}]))
    (tmp_path / "garbage.jsonl").write_text("not json\n")
    assert not looks_like_tickets(tmp_path / "garbage.jsonl")
    (tmp_path / "first-bad.jsonl").write_text("{oops\n" + ticket("T-1") + "\n")
    assert looks_like_tickets(tmp_path / "first-bad.jsonl")


# --- e-mail ---------------------------------------------------------------------------------------


def customer_addresses(path: Path) -> list[str]:
    """The From and To addresses of a sample e-mail that are not the store's."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    found = [a.addr_spec for name in ("From", "To") for a in message[name].addresses]
    return [a for a in found if a != STORE]


@pytest.mark.parametrize(("name", "ticket_id", "title", "asked", "answered"), [
    ("email-hearth-t4-no-c-wire.eml", "T-3001", "Will the Hearth T4 work without a C wire?",
     "I don't think there\nis a C wire", "You can use it as your C-wire"),
    ("email-driftwood-exchange.eml", "T-3002", "Exchange Driftwood 20 Regular for Long",
     "at 193 cm I am too tall", "Your return authorization number is RMA-2025-02214"),
    ("email-volt300-damaged-delivery.eml", "T-3003", "Volt 300 arrived with a cracked case",
     "the plastic case is cracked", "A new Volt 300 ships today by ground"),
])
def test_sample_support_threads(name: str, ticket_id: str, title: str, asked: str, answered: str) -> None:
    path = SAMPLE_TICKETS / name
    assert looks_like_ticket_email(path)
    [doc] = EmailTicketLoader().load(path, source=f"tickets/{name}", doc_type="ticket").documents
    assert doc.source == f"tickets/{name}" and doc.title == title and doc.doc_type == "ticket"
    assert [e.kind for e in doc.elements] == ["title", "text", "text"]
    customer, resolution = doc.elements[1].text, doc.elements[2].text
    assert customer.startswith("Customer: ") and asked in customer and answered not in customer
    assert resolution.startswith("Resolution: ") and answered in resolution and asked not in resolution
    assert set(doc.metadata) == {"ticket_id", "status", "created_at", "updated_at", "channel"}
    assert doc.metadata["ticket_id"] == ticket_id and doc.metadata["status"] == "resolved"
    assert doc.metadata["channel"] == "email" and doc.metadata["created_at"] < doc.metadata["updated_at"]
    for address in customer_addresses(path):
        assert address not in doc.text and address not in json.dumps(doc.metadata)
    assert "wrote:" not in doc.text and "> " not in doc.text and "[Ticket" not in doc.text


def test_thread_parts_land_where_they_belong() -> None:
    docs = {p.name: EmailTicketLoader().load(p, source=p.name, doc_type="ticket").documents[0]
            for p in SAMPLE_TICKETS.glob("*.eml")}
    hearth = docs["email-hearth-t4-no-c-wire.eml"]
    assert hearth.metadata["created_at"] == "2025-03-09T19:48:00"  # the customer's first message
    assert hearth.metadata["updated_at"] == "2025-03-11T10:42:00-07:00"  # the Date header
    assert "here is the photo" in hearth.elements[1].text  # the customer's follow-up is part of the question
    assert "send a photo" not in hearth.text  # the store's earlier, superseded reply is not
    driftwood = docs["email-driftwood-exchange.eml"]
    assert "Trailhead points" not in driftwood.text  # the customer's unanswered follow-up is no part of it


def write_email(path: Path, *, sender: str, subject: str, body: str, html: str = "", **headers: str) -> Path:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "Help <help@shop.example>", subject
    message["Date"] = "Mon, 02 Jun 2025 09:30:00 +0200"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    path.write_bytes(message.as_bytes())
    return path


def test_a_customer_email_without_reply_is_open(tmp_path: Path) -> None:
    path = write_email(tmp_path / "new.eml", sender="Ann Example <ann@example.com>", subject="Kettle leaks",
                       body="Hello,\nmy kettle leaks at the base. What can I do?\nAnn\n",
                       Message_ID="<ann-0602@example.com>")
    assert EmailTicketLoader().load(path, source="new.eml", doc_type="ticket").documents == []
    [doc] = EmailTicketLoader(include_unresolved=True).load(path, source="new.eml", doc_type="ticket").documents
    assert doc.metadata["status"] == "open" and doc.title == "Kettle leaks"
    assert doc.metadata["created_at"] == doc.metadata["updated_at"] == "2025-06-02T09:30:00+02:00"
    assert doc.metadata["ticket_id"].startswith("email-") and "ann" not in doc.metadata["ticket_id"]
    assert [e.text for e in doc.elements[1:]] == ["Customer: Hello,\nmy kettle leaks at the base. What can I do?\nAnn"]
    assert not looks_like_ticket_email(path)


def test_html_only_reply_reads_blockquotes_as_quotes(tmp_path: Path) -> None:
    html = ("<html><body><p>Hi Ann,</p><p>Descale it with citric acid.</p><ul><li>Fill</li><li>Boil</li></ul>"
            "<blockquote><p>On Sun, 1 Jun 2025 at 08:00, Ann Example &lt;ann@example.com&gt; wrote:</p>"
            "<p>My kettle is <b>slow</b>.</p></blockquote></body></html>")
    message = EmailMessage()
    message["From"], message["Subject"] = "Shop Care <help@shop.example>", "RE: Fwd: [Ticket #K-7] Slow kettle"
    message.set_content(html, subtype="html")
    (tmp_path / "k.eml").write_bytes(message.as_bytes())
    [doc] = EmailTicketLoader().load(tmp_path / "k.eml", source="k.eml", doc_type="ticket").documents
    assert doc.title == "Slow kettle" and doc.metadata["ticket_id"] == "K-7"
    assert [e.text for e in doc.elements[1:]] == ["Customer: My kettle is slow.",
                                                  "Resolution: Hi Ann,\nDescale it with citric acid.\n- Fill\n- Boil"]
    assert doc.metadata["created_at"] == "2025-06-01T08:00:00" and "updated_at" not in doc.metadata


def test_outlook_original_message_headers_are_dropped(tmp_path: Path) -> None:
    body = ("Hello Ann, the filter lifts out; rinse it weekly.\nShop Care\n\n-----Original Message-----\n"
            "From: Ann Example <ann@example.com>\nSent: Sunday, June 1, 2025 8:00 AM\nTo: Help <help@shop.example>\n"
            "Subject: Filter\n\nHow do I clean the filter?\n")
    path = write_email(tmp_path / "o.eml", sender="Shop Care <help@shop.example>", subject="RE: Filter", body=body)
    [doc] = EmailTicketLoader().load(path, source="o.eml", doc_type="ticket").documents
    assert [e.text for e in doc.elements] == ["Filter", "Customer: How do I clean the filter?",
                                              "Resolution: Hello Ann, the filter lifts out; rinse it weekly.\nShop Care"]
    assert doc.metadata["ticket_id"] == "o" and "ann@example.com" not in doc.text
