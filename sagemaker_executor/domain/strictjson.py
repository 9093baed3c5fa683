"""Strict JSON at the executor's edges: which incoming values it cannot carry, and how it writes JSON.

Python's ``json.loads`` (how the service reads every record) accepts more than JSON: the tokens
``NaN``, ``Infinity`` and ``-Infinity``, which RFC 8259 §6 does not have, and ``\\ud800``-style escapes
that decode to lone surrogates, which are not Unicode text (I-JSON, RFC 7493 §2.1, forbids them). A
TOML descriptor gets there too: ``lr = nan`` is valid TOML 1.0, and the BFF passes it on as ``NaN``.
Strict readers (Jackson, Go's ``encoding/json``, JavaScript's ``JSON.parse``) reject such output, and
encoding a lone surrogate as UTF-8 raises, so they must never go out.

* :func:`first_unfit` finds the first such value in document order, as ``(location, reason)``.
  ``domain.descriptor`` refuses a descriptor that holds one (both kinds); the handlers refuse an event
  whose *text* holds one (``domain.events.check_event_text``). Numbers elsewhere in an event are typed
  by its model or only passed on.
* :func:`strict_value` is the one rendering rule for what is only passed on (``src_event`` in
  statuses, ``cmd_submit`` in command responses, the executor event's copy of its input): a
  non-finite number becomes the *string* ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (the names
  JavaScript, Jackson and pydantic's ``ser_json_inf_nan="strings"`` use; a string keeps what the user
  wrote, where ``null`` would pass for "absent"), and each lone surrogate becomes U+FFFD, as Go's
  decoder and WHATWG's UTF-8 decoder substitute it. Two keys that differ only in their lone
  surrogates become one; the later value wins.
* :func:`encode` / :func:`dumps` are how every publisher serialises (``service.emitter``,
  ``adapters.kafka.Publisher``, ``adapters.cloudwatch``): compact JSON, ``allow_nan=False``, ASCII
  (non-ASCII text as ``\\u`` escapes, as before). The rendering is applied only when the plain
  serialisation shows it is needed, so clean events cost one ``json.dumps``.

Pure: no I/O. Nesting deeper than Python's recursion limit raises ``RecursionError`` here as it does
in ``json`` itself.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

NAN, INFINITY, MINUS_INFINITY = "NaN", "Infinity", "-Infinity"
REPLACEMENT_CHARACTER = "\ufffd"

Location = tuple[str | int, ...]

_SURROGATE = re.compile("[\ud800-\udfff]")
_SEPARATORS = (",", ":")


def text_problem(text: str) -> str | None:
    """Why ``text`` is not Unicode text (it holds a lone surrogate), or None when it is."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"is not valid Unicode text: character {found.start() + 1} is a lone surrogate "
        f"{found.group()!r} (a '\\u' escape without its pair)"
    )


def number_problem(number: float) -> str | None:
    """Why ``number`` has no JSON form (NaN or an infinity), or None when it has one."""
    if math.isfinite(number):
        return None
    return f"must be a finite number, got {_name(number)}: JSON has no NaN or Infinity"


class _KeyProblem:
    """A stack entry: a key found unfit while its table was opened, reported in document order."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


# A location while walking: (parent, key or index), linked to the root's None; unrolled only when
# something is found, so a deep value costs no copying of long tuples.
_Path = tuple["_Path", str | int] | None


def first_unfit(value: object, *, numbers: bool = True) -> tuple[Location, str] | None:
    """The first string, key or (with ``numbers``) float in ``value`` that strict JSON cannot carry.

    ``value`` is JSON-like (mappings, lists and tuples, scalars; other types, and entries under a key
    that is not a string, are not looked into). Returns ``(location, reason)`` -- location as keys and
    list indexes from the top, a key's own problem located at that key -- or None. Document order: a
    table's entries in their order, each key before its value. Iterative and linear, so any depth is
    fine.
    """
    stack: list[tuple[_Path, object]] = [(None, value)]
    while stack:
        path, node = stack.pop()
        reason: str | None = None
        if isinstance(node, _KeyProblem):
            reason = node.reason
        elif isinstance(node, str):
            reason = text_problem(node)
        elif isinstance(node, float):
            reason = number_problem(node) if numbers else None
        elif isinstance(node, Mapping):
            children: list[tuple[_Path, object]] = []
            for key, child in node.items():
                if not isinstance(key, str):
                    continue  # no JSON has one; whoever reads the value refuses the key itself
                key_reason = text_problem(key)
                if key_reason is not None:
                    children.append(((path, key), _KeyProblem(f"the key {key_reason}")))
                children.append(((path, key), child))
            stack.extend(reversed(children))
        elif isinstance(node, list | tuple):
            stack.extend(reversed([((path, index), child) for index, child in enumerate(node)]))
        if reason is not None:
            return _unroll(path), reason
    return None


def _unroll(path: _Path) -> Location:
    parts: list[str | int] = []
    while path is not None:
        path, part = path
        parts.append(part)
    return tuple(reversed(parts))


def strict_value(value: Any) -> Any:
    """``value`` with non-finite numbers as "NaN"/"Infinity"/"-Infinity" and lone surrogates as U+FFFD.

    The one rendering rule for values the executor passes on (see the module docstring). Mappings
    come back as dicts and tuples as lists; anything else is returned as it is.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else _name(value)
    if isinstance(value, str):
        return _SURROGATE.sub(REPLACEMENT_CHARACTER, value) if not value.isascii() else value
    if isinstance(value, Mapping):
        return {strict_value(key): strict_value(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [strict_value(child) for child in value]
    return value


def dumps(value: Any) -> str:
    """``value`` as compact, ASCII, strict JSON text; never a NaN/Infinity token, never a lone surrogate.

    Raises ``TypeError`` for a value JSON has no form for (a defect of the caller), like ``json.dumps``.
    """
    try:
        text = json.dumps(value, separators=_SEPARATORS, allow_nan=False)
    except ValueError:  # a non-finite number somewhere
        return json.dumps(strict_value(value), separators=_SEPARATORS, allow_nan=False)
    # ASCII output writes every surrogate as a lower-case "\ud..." escape; astral characters (written
    # as pairs) and a literal backslash before "ud" also match, and merely take the slower path.
    if "\\ud" in text:
        return json.dumps(strict_value(value), separators=_SEPARATORS, allow_nan=False)
    return text


def encode(value: Any) -> bytes:
    """:func:`dumps` as the UTF-8 bytes of a Kafka record value (pure ASCII, in fact)."""
    return dumps(value).encode("ascii")


def _name(number: float) -> str:
    if math.isnan(number):
        return NAN
    return INFINITY if number > 0 else MINUS_INFINITY
