"""PII redaction with the real Presidio and spaCy: planted values gone, product facts kept, offline."""

from __future__ import annotations

import csv
import json
import logging
import re
import socket
from collections import Counter
from typing import Any

import pytest
import tldextract

from ingest.documents import Element, SourceDocument
from ingest.pii import PresidioRedactor
from ingest.tickets import TicketLoader
from rag.errors import ConfigError
from tests.conftest import REPO, SAMPLE_CORPUS

TICKETS = SAMPLE_CORPUS / "tickets"
PLANTED: dict[str, list[str]] = {
    kind: values for kind, values in json.loads((REPO / "samples" / "planted_pii.json").read_text("utf-8")).items()
    if not kind.startswith("_")
}
BUSINESS = ["support@nordhaven.example", "1-800-555-0142", "4410 NW Yeon Avenue"]
TICKET_FIELDS = ("subject", "customer_message", "agent_resolution")
PRODUCTS = ["Aurora X2", "Volt 300", "Hearth T4", "Cascade 2P", "Tidal BT5", "BrewPoint", "Solis 60", "Driftwood 20",
            "Nordhaven"]


@pytest.fixture(scope="module")
def redactor() -> PresidioRedactor:
    return PresidioRedactor(allow=BUSINESS)


def ticket_records() -> list[dict[str, Any]]:
    with (TICKETS / "tickets.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    with (TICKETS / "tickets.csv").open(encoding="utf-8", newline="") as handle:
        return records + list(csv.DictReader(handle))


def ticket_texts() -> dict[str, str]:
    """The free text of every sample ticket, by where it comes from: ticket fields, and e-mail bodies whole."""
    texts = {f"{record['ticket_id']}.{name}": str(record[name]) for record in ticket_records() for name in TICKET_FIELDS}
    for path in sorted(TICKETS.glob("*.eml")):
        headers, body = path.read_text(encoding="utf-8").split("\n\n", 1)
        texts[f"{path.name} subject"] = next(h for h in headers.splitlines() if h.startswith("Subject:"))
        texts[path.name] = body  # quoted replies, signatures and the HTML part included
    return texts


def leaks(texts: dict[str, str]) -> list[str]:
    return [f"{kind}: {value!r} in {where}" for kind, values in PLANTED.items() for value in values
            for where, text in texts.items() if value.lower() in text.lower()]


@pytest.fixture(scope="module")
def redacted(redactor: PresidioRedactor) -> dict[str, str]:
    return {where: redactor.redact(text).text for where, text in ticket_texts().items()}


def test_no_planted_value_survives(redacted: dict[str, str]) -> None:
    raw = "\n".join(ticket_texts().values())
    # Phones, cards, addresses and order numbers all appear in free text; most e-mails and names only in fields.
    assert all(value in raw for kind in ("phones", "cards", "addresses", "order_numbers") for value in PLANTED[kind])
    first_and_last = {word for name in PLANTED["names"] if name in raw for word in name.split()}  # "Hi Olivia,"
    missed = leaks(redacted) + [f"name word {word!r} in {where}" for word in sorted(first_and_last)
                                for where, text in redacted.items() if re.search(rf"\b{word}\b", text)]
    assert not missed, f"{len(missed)} planted values survived redaction:\n" + "\n".join(missed)


def test_sample_ticket_documents_come_out_clean(redactor: PresidioRedactor) -> None:
    loader = TicketLoader(include_unresolved=True)
    documents = [d for name in ("tickets.jsonl", "tickets.csv")
                 for d in loader.load(TICKETS / name, source=f"tickets/{name}", doc_type="ticket").documents]
    redacted = {d.source: redactor.redact_document(d)[0] for d in documents}
    texts = {source: "\n".join([d.title, d.text, *map(str, d.metadata.values())]) for source, d in redacted.items()}
    assert len(texts) == 30 and not leaks(texts)
    assert redacted["tickets/tickets.jsonl#T-1001"].metadata["ticket_id"] == "T-1001"


def test_identity_written_into_the_text_is_removed(redactor: PresidioRedactor) -> None:
    templates = ("{message}\n\nThanks,\n{name}\n{email}", "From: {name} <{email}>\n\n{message}",
                 "Hi, this is {name} ({email}). {message}", "{name} wrote: {message}")
    missed = []
    for record in ticket_records():
        name, email = record["customer_name"], record["customer_email"]
        for template in templates:
            text = redactor.redact(template.format(message=record["customer_message"], name=name, email=email)).text
            missed += [f"{value!r} in {text[:60]!r}" for value in (name, email, *name.split()) if value in text]
    assert not missed, "\n".join(missed)


def test_business_contacts_survive(redacted: dict[str, str], redactor: PresidioRedactor) -> None:
    assert "support@nordhaven.example" in redacted["email-volt300-damaged-delivery.eml"]
    assert "Nordhaven Customer Care | 1-800-555-0142" in redacted["email-hearth-t4-no-c-wire.eml"]
    text = "Visit us at 4410 NW Yeon Avenue, Portland, OR 97210 or write to support@nordhaven.example."
    assert redactor.redact(text).text == text


def test_products_and_support_facts_survive(redacted: dict[str, str]) -> None:
    raw, clean = "\n".join(ticket_texts().values()), "\n".join(redacted.values())
    for product in PRODUCTS:
        assert clean.count(product) == raw.count(product) > 0, product
    for fact in ("650 lumens", "300 lumens", "45 days", "E05 = solar input over 28 V", "288 Wh", "14-day price match",
                 "Trail Tested Guarantee", "Party Pair", "Keep Warm", "Power Adapter Kit (PAK)", "NH-YPAR"):
        assert fact in clean, fact
    assert redacted["T-1018.agent_resolution"] == ticket_texts()["T-1018.agent_resolution"]


def test_counts_by_entity(redactor: PresidioRedactor) -> None:
    text = ("Hi Olivia, my name is Maria Delgado. Order NH-2025-004812 went to 914 Elm Street, Eugene, OR 97401. "
            "Call +1-503-555-0134 or mail maria.delgado@example.com; card 4111 1111 1111 1111, account 12345678.")
    redaction = redactor.redact(text)
    assert redaction.text == ("Hi <NAME>, my name is <NAME>. Order <ORDER_NO> went to <ADDRESS>. "
                              "Call <PHONE> or mail <EMAIL>; card <CARD>, account <ACCOUNT_NO>.")
    assert redaction.counts == Counter({"PERSON": 2, "ORDER_NUMBER": 1, "ADDRESS": 1, "PHONE": 1, "EMAIL": 1, "CARD": 1,
                                        "ACCOUNT_NUMBER": 1})
    assert redactor.redact("order #12345, acct no. 9876-5432-10").text == "order #<ORDER_NO>, acct no. <ACCOUNT_NO>"
    assert redactor.redact("").counts == Counter()


def test_kept_order_numbers_are_not_read_as_phones() -> None:
    redactor = PresidioRedactor(entities=["PHONE", "ORDER_NUMBER"], keep_order_numbers=True)
    redaction = redactor.redact("Order NH-2025-004812 for ann@example.com; call +1-503-555-0134.")
    assert redaction.text == "Order NH-2025-004812 for ann@example.com; call <PHONE>."
    assert redaction.counts == Counter({"PHONE": 1})
    assert redactor.settings["keep_order_numbers"] and redactor.settings["entities"] == ["PHONE"]


def test_unknown_entity_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown PII entity 'NAME'.*EMAIL, PHONE, CARD, ADDRESS, PERSON"):
        PresidioRedactor(entities=["EMAIL", "NAME"])


def test_redact_document(redactor: PresidioRedactor) -> None:
    document = SourceDocument(
        "tickets/t.jsonl#T-9", "Refund for Maria Delgado", "ticket", "en",
        (Element("Refund for Maria Delgado", kind="title"), Element("Customer: Maria says her Volt 300 is dead."),
         Element("Resolution: Sent a label to 77 Birch Lane, Bend, OR 97701.")),
        {"ticket_id": "T-9", "created_at": "2025-05-03T15:22:10Z", "status": "resolved", "product": "Volt 300",
         "channel": "email", "subject": "Call me: +1-503-555-0134", "count": 3},
    )
    redacted, counts = redactor.redact_document(document)
    assert redacted.title == "Refund for <NAME>"
    assert [e.text for e in redacted.elements] == ["Refund for <NAME>", "Customer: <NAME> says her Volt 300 is dead.",
                                                   "Resolution: Sent a label to <ADDRESS>."]
    assert redacted.metadata == {**document.metadata, "subject": "Call me: <PHONE>"}
    assert [e.kind for e in redacted.elements] == ["title", "text", "text"] and redacted.source == document.source
    assert counts == Counter({"PERSON": 3, "ADDRESS": 1, "PHONE": 1})


def test_settings_are_json_and_versioned(redactor: PresidioRedactor) -> None:
    settings = redactor.settings
    assert json.loads(json.dumps(settings)) == settings
    assert settings["version"] >= 1 and settings["allow"] == sorted(BUSINESS)
    assert settings != PresidioRedactor(allow=BUSINESS, keep_order_numbers=True).settings


def test_runs_offline_and_quietly(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted during PII redaction")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    # Presidio's own e-mail check calls tldextract, which fetches the public suffix list unless a cache exists.
    monkeypatch.setattr(tldextract.TLDExtract, "__call__", refuse)
    caplog.set_level(logging.DEBUG)
    redaction = PresidioRedactor().redact("Write to jo.smith@mail.example.co.uk or a@b.io, or call +44 20 7946 0958.")
    assert redaction.text == "Write to <EMAIL> or <EMAIL>, or call <PHONE>."
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text

