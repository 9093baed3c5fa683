"""One thing SageMaker would refuse (:class:`Violation`), told to a user and in SageMaker's own words.

``domain.constraints`` finds violations of botocore's SageMaker model and of the API reference's
rules; ``domain.preflight`` tells them to a user with :meth:`Violation.limit_text` (``SageMaker
accepts at most 63 characters, got 70``), and the local SageMaker (``local.sagemaker``) answers with
:func:`validation_exception_message`, SageMaker's ``ValidationException`` message, built from
:meth:`Violation.aws_text` (``Value 'x' at 'trainingJobName' failed to satisfy constraint: ...``,
values written as Java's ``toString`` writes them). Lengths are in characters (Unicode code points)
or numbers of entries, as ``domain.constraints`` measures them. Pure.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sagemaker_executor.domain.javaregex import refused_characters

_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80


class Rule(StrEnum):
    LENGTH = "length"  # a string's length, a list's or map's number of entries
    RANGE = "range"  # a number's value
    PATTERN = "pattern"
    REQUIRED = "required"
    TYPE = "type"
    DOCUMENTED = "documented"  # the API reference's words, not a shape's


@dataclass(frozen=True)
class Violation:
    """One thing SageMaker would refuse.

    ``path``: where in the request, as member names, list indices (from 0) and map keys, e.g.
    ``("Tags", 1, "Value")`` or ``("HyperParameters", "classes")``. ``in_key``: the map key at the end
    of ``path`` violates; ``in_value``: the map value there does (SageMaker reports both at the map).
    ``shape``: the model's shape name (for a documented rule, the member's name). ``bound`` is ``"max"``
    or ``"min"`` for length and range rules, ``limit`` that bound (or the pattern, or the expected
    type), ``actual`` the length, number of entries or value compared with it. ``container``:
    ``"list"`` or ``"map"`` when the length is a number of entries. ``width``: set when the range is the
    integer type's own (``"32-bit integer"``). ``detail``: a documented rule's words for a user;
    ``aws``: SageMaker's own words for it, when it has some of its own (spot's rules).
    """

    path: tuple[str | int, ...]
    rule: Rule
    shape: str
    value: Any = None
    bound: str = ""
    limit: int | str | None = None
    actual: int | None = None
    in_key: bool = False
    in_value: bool = False
    container: str = ""
    width: str = ""
    detail: str = ""
    aws: str = ""
    whole_map: Any = None  # the map of an in_key or in_value violation, which SageMaker's words show

    def limit_text(self, noun: str = "") -> str:
        """What SageMaker accepts, for a user: ``SageMaker accepts at most 2500 characters, got 3902``.
        ``noun`` names what a list or map holds (``"input channels"``); default ``"entries"``."""
        if self.rule is Rule.LENGTH:
            unit = (noun or "entries") if self.container else "characters"
            if self.bound == "max":
                return f"SageMaker accepts at most {self.limit} {unit}, got {self.actual}"
            if self.limit == 1 and not self.container:
                return "SageMaker does not accept an empty value"
            return f"SageMaker needs at least {self.limit} {unit}, got {self.actual}"
        if self.rule is Rule.RANGE:
            width = f" (the field is a {self.width})" if self.width else ""
            word = "at most" if self.bound == "max" else "at least"
            return f"SageMaker accepts {word} {self.limit}{width}, got {self.actual}"
        if self.rule is Rule.PATTERN:
            text = f"SageMaker accepts only text matching the pattern {self.limit}"
            refused = refused_characters(str(self.limit), self.value)
            if refused:
                verb = "is" if len(refused) == 1 else "are"
                text += f" ({', '.join(map(_char, refused))} {verb} not allowed)"
            return f"{text}, got {_REPR.repr(self.value)}"
        if self.rule is Rule.REQUIRED:
            return "SageMaker requires it"
        if self.rule is Rule.TYPE:
            return f"SageMaker expects {self.limit}, got {type(self.value).__name__}"
        return self.detail

    def wire_path(self) -> str:
        """The path as SageMaker's messages write it: ``tags.2.member.value``, ``hyperParameters``."""
        parts: list[str] = []
        for part in self.path[:-1] if (self.in_key or self.in_value) else self.path:
            parts.append(f"{part + 1}.member" if isinstance(part, int) else part[:1].lower() + part[1:])
        return ".".join(parts)

    def aws_text(self) -> str:
        """The violation in SageMaker's words: ``Value 'x' at 'trainingJobName' failed to satisfy
        constraint: Member must have length less than or equal to 63``."""
        if self.aws:
            return self.aws
        if self.rule is Rule.REQUIRED:
            constraint = "Member must not be null"
        elif self.rule is Rule.TYPE:
            constraint = f"Member must be {self.limit}"
        elif self.rule is Rule.PATTERN:
            constraint = f"Member must satisfy regular expression pattern: {self.limit}"
        else:
            kind = "length" if self.rule is Rule.LENGTH else "value"
            relation = "less than or equal to" if self.bound == "max" else "greater than or equal to"
            constraint = f"Member must have {kind} {relation} {self.limit}"
        if self.in_key or self.in_value:
            constraint = f"Map {'keys' if self.in_key else 'value'} must satisfy constraint: [{constraint}]"
        shown = self.whole_map if (self.in_key or self.in_value) else self.value
        value, where = _java_text(shown), self.wire_path()
        return f"Value '{value}' at '{where}' failed to satisfy constraint: {constraint}"


def _char(char: str) -> str:
    return repr(char) if char.isprintable() and char != " " else f"{char!r} (U+{ord(char):04X})"


def _java_text(value: Any) -> str:
    """A value as Java's ``toString`` writes it in SageMaker's messages (maps as ``{k=v}``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_java_text(k)}={_java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value)


def validation_exception_message(violations: Sequence[Violation]) -> str:
    """SageMaker's ``ValidationException`` message for ``violations`` (non-empty): ``N validation
    error(s) detected: Value '...' at '...' failed to satisfy constraint: ...`` joined by ``; ``, then
    the rules SageMaker words its own way (``Invalid MaxWaitTimeInSeconds. ...``)."""
    generic = [v.aws_text() for v in violations if not v.aws]
    own = [v.aws for v in violations if v.aws]
    parts = []
    if generic:
        count = f"{len(generic)} validation error{'s' if len(generic) > 1 else ''} detected: "
        parts.append(count + "; ".join(generic))
    return "; ".join(parts + own)
