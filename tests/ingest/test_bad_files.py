"""Bad input loses nothing: each corrupt, empty, encrypted, binary or mis-encoded file gets its own reason."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from pypdf import PdfWriter

from ingest.documents import Loaded
from ingest.email_tickets import EmailTicketLoader
from ingest.tickets import TicketLoader
from ingest.unstructured_loader import UnstructuredLoader
from rag.errors import DocumentParseError

GOOD_MARKDOWN = "# Kettle care\n\nDescale the BrewPoint kettle every month with citric acid.\n"


def load(path: Path) -> Loaded:
    return UnstructuredLoader().load(path, source=path.name, doc_type="doc")


def reason(path: Path) -> str:
    with pytest.raises(DocumentParseError) as caught:
        load(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message  # names the file, one line
    return message


def pdf_bytes(*, password: str = "") -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    if password:
        writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def zip_bytes(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n"])
@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".pdf", ".docx", ".eml"])
def test_empty_files_have_no_documents(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(content)
    assert load(path) == Loaded()


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html", ".eml"])
def test_binary_bytes_in_a_text_format_are_refused_before_unstructured(tmp_path: Path, suffix: str) -> None:
    nul = tmp_path / f"nul{suffix}"
    nul.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    assert "looks binary, not text (NUL bytes in its first 8 KB)" in reason(nul)
    controls = tmp_path / f"controls{suffix}"
    controls.write_bytes(bytes(range(1, 32)) * 20 + b"some text")
    assert "looks binary, not text (" in reason(controls)


def test_text_of_no_detectable_encoding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes((i * 7919) % 128 + 128 for i in range(4000)))
    assert "its text encoding cannot be detected" in reason(path)


@pytest.mark.parametrize(("name", "encoding"), [("legacy.txt", "cp1252"), ("latin.md", "latin-1"),
                                                ("wide.md", "utf-16"), ("bom.txt", "utf-8-sig")])
def test_legacy_and_unicode_encodings_are_decoded(tmp_path: Path, name: str, encoding: str) -> None:
    path = tmp_path / name
    path.write_bytes("Le café est prêt à 8 h, crème brûlée comprise.\n".encode(encoding))
    [doc] = load(path).documents
    assert "Le café est prêt à 8 h, crème brûlée comprise." in doc.text


def test_cp1252_punctuation_survives(tmp_path: Path) -> None:
    path = tmp_path / "quotes.txt"
    path.write_bytes("Our café opens at 8 – “fresh” coffee, 5 €.\n".encode("cp1252"))
    assert "Our café opens at 8 – “fresh” coffee, 5 €." in load(path).documents[0].text


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(pdf_bytes(password="secret"))
    assert "is encrypted (password-protected)" in reason(path)


@pytest.mark.parametrize("content", [pdf_bytes()[:300], b"%PDF-1.4 this is not really a pdf", b"<html>hello</html>"])
def test_corrupt_pdf(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    assert "cannot parse" in (message := reason(path)) and "corrupt or not a real PDF" in message


def test_pdf_without_a_text_layer_has_no_documents(tmp_path: Path) -> None:
    path = tmp_path / "scanned.pdf"
    path.write_bytes(pdf_bytes())
    assert load(path) == Loaded()


@pytest.mark.parametrize(("content", "detail"), [
    (b"PK\x03\x04 but then random bytes \x00\x01\x02" * 10, "(not a ZIP archive)"),
    (zip_bytes({"hello.txt": "hi"}), "(no word/document.xml inside)"),
    (b"plain text, saved with the wrong suffix\n", "(not a ZIP archive)"),
])
def test_corrupt_docx(tmp_path: Path, content: bytes, detail: str) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(content)
    assert f"corrupt or not a real DOCX {detail}" in reason(path)


def test_password_protected_docx(tmp_path: Path) -> None:
    path = tmp_path / "locked.docx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504)
    assert "is encrypted (password-protected) or an old binary .doc" in reason(path)


def test_front_matter_becomes_metadata_not_text(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("---\ntitle: Kettle care guide\nupdated: 2025-04-01\ntags: [kettle, care]\n---\n" + GOOD_MARKDOWN,
                    encoding="utf-8")
    [doc] = load(path).documents
    assert doc.title == "Kettle care guide"
    assert doc.metadata == {"front_matter": {"title": "Kettle care guide", "updated": "2025-04-01",
                                             "tags": ["kettle", "care"]}}
    assert "updated" not in doc.text and "tags" not in doc.text and doc.text.startswith("Kettle care")


def test_rules_around_plain_text_are_not_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "rules.md"
    path.write_text("---\nJust a paragraph between two rules\n---\n\nMore text.\n", encoding="utf-8")
    [doc] = load(path).documents
    assert "Just a paragraph between two rules" in doc.text and "front_matter" not in doc.metadata


@pytest.mark.parametrize(("front_matter", "expected"), [
    ("title: ok\nkey: value: other\n", "invalid YAML front matter at line 3: mapping values are not allowed here"),
    ("base: &b [1, 2]\ncopy: *b\n", "YAML front matter line 3 uses an alias (*name)"),
    ("deep: " + "[" * 3000 + "]" * 3000 + "\n", "YAML front matter is nested too deeply"),
])
def test_invalid_front_matter_names_file_and_line(tmp_path: Path, front_matter: str, expected: str) -> None:
    path = tmp_path / "bad.md"
    path.write_text(f"---\n{front_matter}---\n{GOOD_MARKDOWN}", encoding="utf-8")
    assert expected in reason(path)


def test_a_good_file_next_to_bad_ones_still_loads(tmp_path: Path) -> None:
    files = {"good.md": GOOD_MARKDOWN.encode(), "locked.pdf": pdf_bytes(password="x"), "broken.pdf": b"%PDF-1.7 trunc",
             "image.txt": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "fake.docx": b"not a docx", "empty.md": b""}
    loaded: dict[str, int] = {}
    failed: dict[str, str] = {}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        try:
            loaded[name] = len(load(tmp_path / name).documents)
        except DocumentParseError as exc:
            failed[name] = str(exc)
    assert loaded == {"good.md": 1, "empty.md": 0}
    assert sorted(failed) == ["broken.pdf", "fake.docx", "image.txt", "locked.pdf"]
    assert len(set(failed.values())) == 4


# --- ticket files ---------------------------------------------------------------------------------


def ticket_error(loader: TicketLoader | EmailTicketLoader, path: Path) -> str:
    with pytest.raises(DocumentParseError) as caught:
        loader.load(path, source=path.name, doc_type="ticket")
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_unreadable_ticket_exports(tmp_path: Path) -> None:
    assert "cannot read" in ticket_error(TicketLoader(), tmp_path / "missing.jsonl")
    (tmp_path / "binary.jsonl").write_bytes(b"\x00\x01\x02{}")
    assert "looks binary, not text" in ticket_error(TicketLoader(), tmp_path / "binary.jsonl")
    (tmp_path / "wide.jsonl").write_bytes('{"ticket_id": "T-1"}\n'.encode("utf-16"))
    assert "JSON Lines must be UTF-8" in ticket_error(TicketLoader(), tmp_path / "wide.jsonl")
    (tmp_path / "odd.csv").write_bytes(b"ticket_id,status,subject,customer_message\n\x81\x8d,open,s,m\n")
    assert "neither UTF-8 nor Windows-1252" in ticket_error(TicketLoader(), tmp_path / "odd.csv")
    (tmp_path / "empty.jsonl").write_bytes(b"\n\n")
    assert TicketLoader().load(tmp_path / "empty.jsonl", source="empty.jsonl", doc_type="ticket") == Loaded()


def email_bytes(*, body: str = "", charset: str = "utf-8", attachment: bool = False) -> bytes:
    message = EmailMessage()
    message["From"], message["Subject"] = "Ann <ann@example.com>", "[Ticket T-9] Help"
    if attachment:
        message.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="photo.png")
        return message.as_bytes()
    message.set_content(body)
    return message.as_bytes().replace(b'charset="utf-8"', f'charset="{charset}"'.encode())


@pytest.mark.parametrize(("content", "expected"), [
    (email_bytes(attachment=True), "the e-mail has no text body (attachments only?)"),
    (email_bytes(body="Hello, where is my order?\n", charset="x-no-such-charset"), "its body cannot be decoded"),
    (email_bytes(body="\n\n"), "the e-mail has no message text"),
    (b"Just some notes, not an e-mail at all.\n", "it is not an e-mail (no From, Subject, Date or Message-ID header)"),
    (b"From: a\x00\x00\x01", "looks binary, not text"),
])
def test_bad_emails(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "thread.eml"
    path.write_bytes(content)
    assert expected in ticket_error(EmailTicketLoader(include_unresolved=True), path)
