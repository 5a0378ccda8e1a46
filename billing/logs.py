"""What kassa writes to its logs: one line per record, never a card number or CVC, each with
the id of the request (or of the request that scheduled the job) it belongs to.

* **Request ids.**  :data:`request_id` is a context variable: the web app sets it for each
  request (from a sane incoming ``X-Request-ID`` or a new one, :func:`accepted_request_id`),
  :mod:`billing.jobs` stores it in the payload of every job the request schedules and sets
  it again while a worker runs that job, so one id follows the work from the click to the
  card charge made hours later.
* **Redaction.**  Every formatted line — message, arguments and traceback alike — passes
  :func:`redact` before it is written: digit runs shaped like a card number, and the short
  numbers after a card-number or CVC field's name (``cvc: "123"``, ``cvv=123``).
  Filtering the finished line rather than each logger's arguments means a library that logs
  a request (uvicorn, strawberry, httpx) cannot get one past it.
* **Format.**  Text for people at a terminal; JSON (one object per line: ``time``,
  ``level``, ``logger``, ``message``, ``request_id``, and ``exception`` when there is one)
  for log collectors — the default outside development (:mod:`settings`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

#: The request (or the scheduling request of the job) being served; None outside both.
request_id: ContextVar[str | None] = ContextVar("kassa_request_id", default=None)

#: What an incoming ``X-Request-ID`` may be: short, and nothing a log reader could trip on.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

#: 12 to 19 digits, perhaps grouped by spaces or dashes: anything that could be a card number.
_CARD_NUMBER = re.compile(r"(?<!\d)(?:\d[ -]?){11,18}\d(?!\d)")
#: A card-number or CVC field's name in any spelling (GraphQL, JSON, a form, a repr): what
#: follows it on the line may be its value.
_CARD_FIELD = re.compile(
    r"(?<![a-z])(?:card[_-]?number|cvc2?|cvv2?|csc|pan)(?![a-z])", re.IGNORECASE
)
#: Three or four digits standing alone: a CVC, once a card field has been named before it.
_SHORT_NUMBER = re.compile(r"(?<![\w.])\d{3,4}(?![\w.])")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with anything shaped like a card number replaced and, after the first
    card-number or CVC field named in it, every standalone three- or four-digit number.

    A CVC is only told from any other number by the field it belongs to (``cvc: "123"``,
    ``cvc=123``, GraphQL's "invalid value at .cvc: … non string value: 123").  GraphQL's own
    errors quote the offending value, and neither may reach an error message or a log line.
    """
    text = _CARD_NUMBER.sub(REDACTED, text)
    field = _CARD_FIELD.search(text)
    if field is None:
        return text
    return text[: field.end()] + _SHORT_NUMBER.sub(REDACTED, text[field.end() :])


def accepted_request_id(incoming: str | None) -> str:
    """The caller's ``X-Request-ID`` when it is sane (a proxy's or a client's id, so their
    logs and ours join up), else a new one: an arbitrary header must not reach every log
    line of the request."""
    if (
        incoming is not None
        and _SANE_REQUEST_ID.fullmatch(incoming)
        and not _CARD_NUMBER.search(incoming)  # it is stored in jobs: no card numbers there
    ):
        return incoming
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message``, redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False))


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send every logger's records (uvicorn's too, which must then be started with
    ``log_config=None``) to standard error in ``log_format`` ("json" or "text")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
