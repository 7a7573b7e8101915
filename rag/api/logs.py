"""Logs of `rag serve`: one JSON object per line, each carrying the id of the request it belongs to.

The request id comes from the caller's `X-Request-ID` when it is short and plain (so a proxy's id
follows the request through), else a new one; the response returns it in the same header. Nothing
a customer typed is logged: access lines hold the route, status, timings and the caller's key name.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["REQUEST_ID", "JsonFormatter", "configure_logging", "request_id_from"]

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_PLAIN_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def request_id_from(header: bytes | None) -> str:
    """The caller's id if it is plain (no CR/LF or other header injection), else a fresh one."""
    if header:
        text = header.decode("latin-1")
        if _PLAIN_ID.fullmatch(text):
            return text
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, request_id, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
        }
        if (request_id := REQUEST_ID.get()) is not None:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        return super().format(record) + (f" [{request_id}]" if request_id else "")


def configure_logging(style: Literal["json", "text"] = "json", level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's included) to stderr in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if style == "json" else _TextFormatter("%(asctime)s %(levelname)s %(name)s: "
                                                                                "%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the service logs its own access lines (rag.access)
