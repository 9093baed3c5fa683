"""How one setting's text becomes its value: the parsers that ``config.settings`` attaches to its fields.

Each parser takes the text of one environment variable or flag (already stripped) and returns the
typed value, or raises :class:`~pydantic_core.PydanticCustomError` of type ``setting`` whose message
ends the sentence "NAME (--flag) ...". pydantic collects every field's error, so one start-up message
lists them all (``config.load``). A secret's text is never put in a message.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from pydantic_core import PydanticCustomError

from sagemaker_executor.domain.s3location import BUCKET_NAME_RULE, SCHEME, is_bucket_name, parse_s3_uri

# Kafka security (kafka-python's names): the protocols and the SASL mechanisms accepted.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_CREATE_RATE = 1000.0

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SERVER_RE = re.compile(r"^[^\s:]+:\d{1,5}$")
_TRUE = ("true", "1", "yes")
_BOOLEANS = (*_TRUE, "false", "0", "no")
_OFF = ("off", "none", "")


def problem(text: str) -> PydanticCustomError:
    """The error of one setting; ``text`` follows the setting's name ("must be ..., got 'x'")."""
    return PydanticCustomError("setting", "{text}", {"text": text})


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def integer(minimum: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        text = text_of(value)
        try:
            number = int(text)
        except ValueError:
            raise problem(f"must be an integer, got {text!r}") from None
        if number < minimum:
            raise problem(f"must be at least {minimum}, got {number}")
        return number

    return parse


def seconds(low: float, high: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        text = text_of(value)
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not low <= number <= high:
            raise problem(f"must be seconds between {low:g} and {high:g}, got {text!r}")
        return number

    return parse


def topic(value: Any) -> str:
    text = text_of(value)
    if not _TOPIC_RE.match(text):
        raise problem(f"must be a Kafka topic name ([A-Za-z0-9._-], 1-249), got {text!r}")
    return text


def optional_topic(value: Any) -> str:
    """A topic name, or "" for none (``STATUS_TOPIC``: no status events)."""
    return "" if text_of(value) == "" else topic(value)


def one_of(
    choices: tuple[str, ...], *, upper: bool = False, lower: bool = False, listed: str = ""
) -> Callable[[Any], str]:
    """One of ``choices``, compared after changing case (the value returned is the changed one);
    ``listed``: how the message lists them (default "A, B or C")."""
    listed = listed or (", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else choices[0])

    def parse(value: Any) -> str:
        text = text_of(value)
        folded = text.upper() if upper else text.lower() if lower else text
        if folded not in choices:
            raise problem(f"must be {listed}, got {text!r}")
        return folded

    return parse


def boolean(value: Any) -> bool:
    text = text_of(value).lower()
    if text not in _BOOLEANS:
        raise problem(f"must be true or false, got {text_of(value)!r}")
    return text in _TRUE


def comma_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, tuple):
        return value
    return tuple(part.strip() for part in text_of(value).split(",") if part.strip())


def bootstrap_servers(value: Any) -> tuple[str, ...]:
    servers = comma_list(value)
    if not servers or any(not _SERVER_RE.match(server) for server in servers):
        raise problem(f"must be host:port[,host:port...], got {text_of(value)!r}")
    return servers


def bucket_name(value: Any) -> str:
    """An S3 bucket name; ``s3://name/`` is accepted and normalised to ``name``; "" stays ""."""
    text = text_of(value)
    name = text[len(SCHEME) :].rstrip("/") if text.startswith(SCHEME) else text
    if name and not is_bucket_name(name):
        raise problem(f"must be an S3 bucket name ({BUCKET_NAME_RULE}), got {text!r}")
    return name


def s3_uri(value: Any) -> str:
    text = text_of(value)
    if text:
        try:
            parse_s3_uri(text)
        except ValueError as error:
            raise problem(f"must be an s3:// URI, got {text!r}: {error}") from None
    return text


def port_or_off(value: Any) -> int | None:
    text = text_of(value).lower()
    if text in _OFF:
        return None
    number = integer(0)(text)
    if number > 65535:
        raise problem(f"must be a port number or 'off', got {text!r}")
    return number


def rate_or_off(value: Any) -> float | None:
    """A rate per second in (0, MAX_CREATE_RATE], or None for 'off' (also '0' and empty)."""
    text = text_of(value)
    if text.lower() in (*_OFF, "0"):
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not 0 < rate <= MAX_CREATE_RATE:
        raise problem(f"must be 'off' or a rate per second up to {MAX_CREATE_RATE:g}, got {text!r}")
    return rate


def readable_file(value: Any) -> str:
    """A path that can be read now (a typo fails start-up, not the first connection), or ""."""
    path = text_of(value)
    if path and not (os.path.isfile(path) and os.access(path, os.R_OK)):
        raise problem(f"must be a readable file, got {path!r}")
    return path


def secret(value: Any) -> SecretStr | None:
    """A secret, or None when empty. Its text never appears in an error."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return SecretStr(value) if value else None


def secret_file_text(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read().rstrip("\r\n")  # a Secret file written with echo ends in one
