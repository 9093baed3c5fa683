"""Log output: text or JSON lines, each naming the action and job it is about, with secrets masked.

Owned here: the format of every log line and what may never appear in one. ``cli`` calls
:func:`configure_logging` once at start-up (``LOGGING_LEVEL``, ``LOG_FORMAT``); the code that handles a
record or a job wraps its work in :func:`log_context` so that every line logged inside, by any module
and any library, carries ``action_id`` and ``job_name``. The values live in :mod:`contextvars`, so each
thread (and each worker task) has its own.

* ``json``: one JSON object per line: ``ts`` (ISO-8601 UTC), ``level``, ``logger``, ``message``,
  ``action_id``, ``job_name``, any ``extra=`` fields, and ``exc`` (the traceback) when there is one.
* ``text``: ``<time> <LEVEL> <logger>: [action=<first 8 of the id> job=<name>] <message>``, the
  bracket only when something is set.

AWS secret keys and session tokens are masked wherever they appear as ``name=value`` or
``name: value`` (messages, arguments, tracebacks), whatever logged them; so is every value given to
:func:`add_secret` (the Kafka passwords), wherever it appears: kafka-python's DEBUG output of a SASL
PLAIN exchange holds the password verbatim. This module imports nothing
from the rest of the package, so every layer may use it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")

_action_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("action_id", default=None)
_job_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_name", default=None)

# Libraries that are noisy below WARNING; they follow LOGGING_LEVEL only when it is DEBUG.
_QUIET_LOGGERS = ("kafka", "botocore", "boto3", "s3transfer", "urllib3")

_MASK = "***"
# A secret's name, then ':' or '=' (optionally quoted, as in dict reprs and headers), then its value.
# botocore's DEBUG output shows headers as bytes (b'...'), hence the optional b prefix.
_SECRET = re.compile(
    r"""(?P<name>\b(?:aws_)?secret_access_key|\bsecretaccesskey|\b(?:aws_)?session_token|\bsessiontoken"""
    r"""|\bx-amz-security-token)"""
    r"""(?P<sep>["']?\s*[:=]\s*b?["']?)"""
    r"""(?P<value>[^\s"',;&}\])]+)""",
    re.IGNORECASE,
)

# LogRecord's own attributes; anything else on a record came from ``extra=`` and goes into JSON.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "action_id",
    "job_name",
    "tags",
}


@contextmanager
def log_context(action_id: str | None = None, job_name: str | None = None) -> Iterator[None]:
    """Tag every log line inside with the action and/or job; an omitted value keeps the outer one."""
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = []
    if action_id is not None:
        tokens.append((_action_id, _action_id.set(action_id)))
    if job_name is not None:
        tokens.append((_job_name, _job_name.set(job_name)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_context() -> tuple[str | None, str | None]:
    """(action_id, job_name) of the calling thread's current :func:`log_context`."""
    return _action_id.get(), _job_name.get()


# Exact values to mask (add_secret); a tuple replaced whole, so readers in other threads need no lock.
_known_secrets: tuple[str, ...] = ()
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words; such a password is no secret anyway


def add_secret(value: str) -> None:
    """Mask ``value`` wherever it appears in a log line from now on (values under 4 characters are
    not masked: they would blank out ordinary text)."""
    global _known_secrets
    if len(value) >= _MIN_SECRET_LENGTH and value not in _known_secrets:
        # Longest first, so a secret that contains another is masked whole.
        _known_secrets = tuple(sorted({*_known_secrets, value}, key=len, reverse=True))


def mask_secrets(text: str) -> str:
    """``text`` with the values of AWS secret keys and session tokens, and every value given to
    :func:`add_secret`, replaced by ``***``."""
    for secret in _known_secrets:
        text = text.replace(secret, _MASK)
    return _SECRET.sub(lambda m: m["name"] + m["sep"] + _MASK, text)


class ContextFilter(logging.Filter):
    """Puts the current ``action_id`` and ``job_name`` on every record (``None`` when unset)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.action_id, record.job_name = current_context()
        return True


class SecretMaskingFilter(logging.Filter):
    """Masks secrets in the formatted message, the traceback and the stack of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (newlines inside values are escaped, so a traceback stays one line)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "action_id": getattr(record, "action_id", None),
            "job_name": getattr(record, "job_name", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: [action=<id8> job=<name>] <message>``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(tags)s%(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        tags = []
        action_id = getattr(record, "action_id", None)
        job_name = getattr(record, "job_name", None)
        if action_id:
            tags.append(f"action={action_id[:8]}")
        if job_name:
            tags.append(f"job={job_name}")
        record.tags = f"[{' '.join(tags)}] " if tags else ""
        return super().formatMessage(record)


def configure_logging(level: str, fmt: str = "text") -> None:
    """Send every logger's records to stderr as ``fmt`` (``text`` or ``json``), replacing any handlers."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown logging level {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretMaskingFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    quiet = numeric if numeric <= logging.DEBUG else max(logging.WARNING, numeric)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
