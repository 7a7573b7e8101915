"""Support threads saved as e-mail (.eml), one ticket each: the customer's question, the store's reply.

See `EmailTicketLoader` for how the thread is read. Sender names and addresses never reach the
text or the metadata; personal data inside the bodies is redacted later, by `ingest.pii`.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ingest.documents import Loaded
from ingest.tickets import read_ticket_file, ticket_document
from rag.errors import DocumentParseError
from rag.types import DocType

__all__ = ["EmailTicketLoader", "looks_like_ticket_email"]

_TICKET_TAG = re.compile(r"\[\s*(?:ticket|case)\s*[#:]?\s*([A-Za-z0-9][\w.-]*)\s*\]", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fwd?|aw|wg|sv)\s*(?:\[\d+\])?\s*:)+", re.IGNORECASE)
_ATTRIBUTION = re.compile(r"^On\s.{4,300}\swrote:$")  # On Wed, 18 Jun 2025 at 14:27, Name <address> wrote:
_SEPARATOR = re.compile(r"^(?:-{2,}\s*(?:original message|forwarded message)\s*-{2,}|_{10,})$", re.IGNORECASE)
_HEADER_LINE = re.compile(r"^(from|sent|date|to|cc|subject):\s*(.*)$", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_QUOTE = re.compile(r"^(?:>[ \t]?)+")
_QUOTED_DATES = (  # "9 Mar 2025 at 19:48" and "Mar 9, 2025 at 7:48 PM": naive, the writer's local time
    (re.compile(r"\b(\d{1,2} [A-Z][a-z]{2} \d{4}),? (?:at )?(\d{1,2}:\d{2})\b"), "%d %b %Y %H:%M"),
    (re.compile(r"\b([A-Z][a-z]{2} \d{1,2}, \d{4}),? (?:at )?(\d{1,2}:\d{2} [AP]M)"), "%b %d, %Y %I:%M %p"),
)


def looks_like_ticket_email(path: Path) -> bool:
    """True when the e-mail's subject carries a ticket tag such as "[Ticket T-3003]"."""
    try:
        with path.open("rb") as handle:
            headers = BytesHeaderParser(policy=email.policy.default).parse(handle)
        return bool(_TICKET_TAG.search(str(headers["Subject"] or "")))
    except Exception:  # an unreadable or malformed file is simply not a ticket e-mail
        return False


class EmailTicketLoader:
    """Parses a support thread saved as .eml into one ticket: the customer's question, the store's reply.

    The author of the oldest message in the thread is the customer and anyone else is the store; the
    store's latest reply is the resolution (status "resolved"); without one the ticket is "open".
    """

    version = "email-tickets-1"

    def __init__(self, *, include_unresolved: bool = False) -> None:
        self._include_unresolved = include_unresolved

    def load(self, path: Path, *, source: str, doc_type: DocType = "ticket") -> Loaded:
        data = read_ticket_file(path)
        if not data.strip():
            return Loaded()
        message = _parse_email(path, data)
        sent = _header_date(message)
        thread = [m for m in _thread(_body(path, message), _Author.of(str(message["From"] or "")), sent) if m.text]
        record = _exchange(thread)
        if not record["customer_message"]:
            raise DocumentParseError(f"cannot parse {path}: the e-mail has no message text; remove the file")
        if not self._include_unresolved and record["status"] != "resolved":
            return Loaded()
        record |= {"ticket_id": _email_ticket_id(message, path), "updated_at": sent, "channel": "email",
                   "subject": _clean_subject(str(message["Subject"] or "")) or _title_from(path)}
        return Loaded([ticket_document(record, source=source, doc_type=doc_type)])


def _parse_email(path: Path, data: bytes) -> EmailMessage:
    try:
        message = email.message_from_bytes(data, policy=email.policy.default)
        is_email = any(message[name] for name in ("From", "Subject", "Date", "Message-ID"))
    except Exception as exc:  # the email package raises assorted types on malformed headers
        raise DocumentParseError(f"cannot parse {path}: malformed e-mail headers ({type(exc).__name__}: {exc})") from exc
    if not is_email:
        raise DocumentParseError(
            f"cannot parse {path}: it is not an e-mail (no From, Subject, Date or Message-ID header); "
            "save the thread from the mail client as .eml"
        )
    return message


def _body(path: Path, message: EmailMessage) -> str:
    """The text/plain body, else the text/html one as text with its blockquotes as "> " lines."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        raise DocumentParseError(
            f"cannot parse {path}: the e-mail has no text body (attachments only?); ingest the attachments instead"
        )
    try:
        content = str(part.get_content())
    except (LookupError, UnicodeError) as exc:
        raise DocumentParseError(f"cannot parse {path}: its body cannot be decoded ({exc}); re-save it as UTF-8") from exc
    return _html_text(content) if part.get_content_subtype() == "html" else content


@dataclass(frozen=True, slots=True)
class _Author:
    """Who wrote a message, only to tell the customer from the store: never copied into a document."""

    address: str = ""
    name: str = ""

    @classmethod
    def of(cls, text: str) -> _Author:
        found = _ADDRESS.search(text)
        name = text.rsplit(",", 1)[-1].strip().casefold()  # "On <date>, Name wrote" keeps the name
        return cls(found.group(0).lower()) if found else cls(name=name)

    def known(self) -> bool:
        return bool(self.address or self.name)

    def same(self, other: _Author) -> bool:
        if self.address and other.address:
            return self.address == other.address
        return bool(self.name) and self.name == other.name


@dataclass(slots=True)
class _Message:
    author: _Author = _Author()
    date: str | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in self.lines)).strip()


def _thread(body: str, sender: _Author, sent: str | None) -> list[_Message]:
    """The messages of a reply chain, newest first: the reply, then each level quoted below it."""
    messages = [_Message(sender, sent)]
    lines = [_unquote(line) for line in body.splitlines()]
    shift, index, in_headers = 0, 0, False  # shift: levels opened by unquoted "Original Message" blocks
    while index < len(lines):
        depth, content = lines[index]
        attribution, used = _attribution(lines, index)
        if attribution:
            quoted = _quoted(messages, depth + shift)
            quoted.date, who = _quoted_date(attribution.removeprefix("On ").removesuffix("wrote:"))
            quoted.author = _Author.of(who)
        elif _SEPARATOR.match(content):
            shift, in_headers, used = shift + 1, True, 1
        elif in_headers and (header := _HEADER_LINE.match(content)):
            _header_into(_nested(messages, depth + shift), header.group(1).lower(), header.group(2))
        else:
            in_headers = in_headers and not content.strip()
            _nested(messages, depth + shift).lines.append(content)
        index += max(used, 1)
    return messages


def _unquote(line: str) -> tuple[int, str]:
    marks = _QUOTE.match(line)
    return (marks.group(0).count(">"), line[marks.end() :]) if marks else (0, line)


def _attribution(lines: list[tuple[int, str]], index: int) -> tuple[str, int]:
    """An "On <date>, <who> wrote:" line (or two, when the mail client wrapped it) and how many lines it took."""
    depth, content = lines[index]
    if _ATTRIBUTION.match(content.strip()):
        return content.strip(), 1
    if content.startswith("On ") and index + 1 < len(lines) and lines[index + 1][0] == depth:
        joined = f"{content.strip()} {lines[index + 1][1].strip()}"
        return (joined, 2) if _ATTRIBUTION.match(joined) else ("", 0)
    return "", 0


def _nested(messages: list[_Message], level: int) -> _Message:
    while len(messages) <= level:
        messages.append(_Message())
    return messages[level]


def _quoted(messages: list[_Message], level: int) -> _Message:
    """The message an attribution at this level introduces: the next level down, or this one when it
    opens the level (HTML mail puts "On ... wrote:" inside the blockquote it introduces)."""
    message = _nested(messages, level)
    return _nested(messages, level + 1) if message.lines or message.author.known() else message


def _header_into(message: _Message, name: str, value: str) -> None:
    """Outlook's "From:/Sent:" block under a separator names the quoted message's author and date."""
    if name == "from":
        message.author = _Author.of(value)
    elif name in ("sent", "date"):
        message.date = _quoted_date(value)[0]


def _quoted_date(text: str) -> tuple[str | None, str]:
    """The ISO date found in text (naive: quoted dates carry no zone), and the text without it."""
    for pattern, layout in _QUOTED_DATES:
        if found := pattern.search(text):
            try:
                when = datetime.strptime(" ".join(found.groups()), layout).isoformat()
            except ValueError:
                when = None
            return when, text.replace(found.group(0), "")
    return None, text


def _exchange(thread: list[_Message]) -> dict[str, Any]:
    """Status, question and answer of a thread, newest first; the oldest author is the customer."""
    customer = next((m.author for m in reversed(thread) if m.author.known()), _Author())
    replies = [i for i, m in enumerate(thread) if m.author.known() and not m.author.same(customer)]
    older = thread[replies[0] + 1 :] if replies else thread
    asked = [m for m in reversed(older) if not (m.author.known() and not m.author.same(customer))]
    return {"status": "resolved" if replies else "open",
            "customer_message": "\n\n".join(m.text for m in asked),
            "agent_resolution": thread[replies[0]].text if replies else "",
            "created_at": asked[0].date if asked else None}


def _email_ticket_id(message: EmailMessage, path: Path) -> str:
    """The "[Ticket X]" tag of the subject, else a hash of the Message-ID (it may name the sender), else the file."""
    if tag := _TICKET_TAG.search(str(message["Subject"] or "")):
        return tag.group(1)
    message_id = str(message["Message-ID"] or "").strip()
    return f"email-{hashlib.sha256(message_id.encode()).hexdigest()[:12]}" if message_id else path.stem


def _clean_subject(subject: str) -> str:
    """The subject without its ticket tag and its "Re:"/"Fwd:" prefixes."""
    return " ".join(_REPLY_PREFIX.sub("", _TICKET_TAG.sub(" ", subject).strip()).split())


def _title_from(path: Path) -> str:
    return path.stem.replace("-", " ").replace("_", " ").strip().capitalize()


def _header_date(message: EmailMessage) -> str | None:
    try:
        when = getattr(message["Date"], "datetime", None)
    except Exception:  # a malformed Date header is the same as none
        return None
    return when.isoformat() if isinstance(when, datetime) else None


def _html_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


class _HtmlText(HTMLParser):
    """HTML as plain text: a line per block, blockquotes as "> " lines, scripts and styles dropped."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "ul", "ol", "pre", "hr", "h1", "h2", "h3", "h4",
                         "blockquote"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._lines: list[str] = []
        self._pieces: list[str] = []
        self._depth = 0
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, 1)
        if tag == "li":
            self._pieces.append("- ")

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, -1)

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._pieces.append(data)

    def text(self) -> str:
        self._flush()
        return "\n".join(self._lines)

    def _tag(self, tag: str, step: int) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden + step)
        elif tag in self._BLOCKS:
            self._flush()
            if tag == "blockquote":
                self._depth = max(0, self._depth + step)

    def _flush(self) -> None:
        line = " ".join("".join(self._pieces).split())
        if line:
            self._lines.append("> " * self._depth + line)
        self._pieces = []
