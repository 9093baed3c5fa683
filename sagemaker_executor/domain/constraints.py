"""What SageMaker accepts: every input constraint of botocore's own SageMaker service model, applied as
SageMaker applies it, plus the rules of the CreateTrainingJob API reference the model cannot express.

Owns the one place where a SageMaker limit is known. ``domain.preflight`` checks the executor's final
CreateTrainingJob request with :func:`validate` before any AWS call; ``domain.descriptor`` and
``domain.translation`` ask :func:`violations` about job names and tag values (the job-name rule
lives here and nowhere else); the local SageMaker (``local.sagemaker``) answers every request it serves
with :func:`validation_exception_message` when :func:`validate` finds something, so tests see what
production sees.

The model is ``botocore/data/sagemaker/<version>/service-2.json``, the newest version botocore ships
(the one boto3's client uses). It is read once, on first use (about 0.6 s), and kept as a compact
table of the constraints without the documentation (about 4 MiB). botocore's own client-side
validation checks only ``required`` and ``min``; this module applies all of them, as SageMaker does:

* ``min``/``max`` of a string: its length in characters (Unicode code points, as Smithy's ``@length``
  counts them); of a list or map: its number of entries; of an integer or long: its value.
* ``integer`` and ``long`` shapes are 32- and 64-bit signed integers (Smithy's types): a larger value
  cannot be sent, whatever ``max`` says.
* ``pattern`` is a Java regular expression that must match the *whole* value (Java's ``matches()``):
  :func:`java_regex` translates it for the ``regex`` package (which reads ``\\p{L}`` classes; ``re``
  does not) with Java's meaning of ``.`` (no line terminator: ``\\n``, ``\\r``, U+0085, U+2028,
  U+2029), of ``\\d``, ``\\w``, ``\\s`` and the POSIX ``\\p{Alnum}`` classes (ASCII only), and of
  surrogate-pair escapes; it is applied with ``fullmatch``, so ``$`` never accepts a trailing newline.
* ``required`` members; the JSON type of each value.

Not applied, on purpose: ``enum`` (SageMaker adds instance types faster than an installed botocore
learns them; refusing a type the service accepts would be worse than letting SageMaker answer).

The API reference's rules for CreateTrainingJob that no model shape carries (:data:`DOCUMENTED_RULES`):
``StoppingCondition.MaxRuntimeInSeconds`` at most 28 days; ``MaxWaitTimeInSeconds`` only with
``EnableManagedSpotTraining``, required with it, and at least ``MaxRuntimeInSeconds``. The count of
tags, the executor's own included, is the model's ``TagList`` maximum.

Pure apart from reading that one data file of botocore's, like an import: no other I/O, no clock.
"""

from __future__ import annotations

import functools
import json
import reprlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final, TypeGuard

import regex
from botocore.loaders import create_loader

SERVICE: Final = "sagemaker"
TRAINING_JOB_NAME: Final = "TrainingJobName"  # the shape of every training job name
TAG_VALUE: Final = "TagValue"
TAG_KEY: Final = "TagKey"

MAX_RUNTIME_SECONDS: Final = 28 * 24 * 60 * 60
"""``StoppingCondition.MaxRuntimeInSeconds``: "The maximum value is 28 days." (API reference,
StoppingCondition; the model's documentation of that member says so, its shape has only ``min``)."""

INT_RANGES: Final = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_WIDTHS: Final = {"integer": "32-bit integer", "long": "64-bit integer"}
_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "timestamp": (int, float, str),
    "blob": (str,),
    "structure": (dict,),
    "list": (list,),
    "map": (dict,),
}
# Java's line terminators, which its "." does not match (java.util.regex.Pattern, without DOTALL).
_JAVA_DOT: Final = "[^\\n\\r\\u0085\\u2028\\u2029]"
_JAVA_CLASSES: Final = {  # Java's shorthand classes are ASCII-only unless UNICODE_CHARACTER_CLASS
    "d": "0-9",
    "w": "a-zA-Z_0-9",
    "s": " \\t\\n\\x0B\\f\\r",
}
_JAVA_POSIX: Final = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1F\\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0B\\f\\r",
}

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
            refused = _refused_characters(str(self.limit), self.value)
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


@dataclass(frozen=True)
class _Shape:
    type: str
    members: Mapping[str, str]
    required: frozenset[str]
    member: str = ""
    key: str = ""
    value: str = ""
    min: int | None = None
    max: int | None = None
    pattern: str | None = None


# ---------------------------------------------------------------- the model


@functools.cache
def _model() -> dict[str, _Shape]:
    raw = create_loader().load_service_model(SERVICE, "service-2")
    shapes: dict[str, _Shape] = {}
    for name, shape in raw["shapes"].items():
        shapes[name] = _Shape(
            type=shape["type"],
            members={m: spec["shape"] for m, spec in shape.get("members", {}).items()},
            required=frozenset(shape.get("required", ())),
            member=shape.get("member", {}).get("shape", ""),
            key=shape.get("key", {}).get("shape", ""),
            value=shape.get("value", {}).get("shape", ""),
            min=shape.get("min"),
            max=shape.get("max"),
            pattern=shape.get("pattern"),
        )
    inputs = {op: spec["input"]["shape"] for op, spec in raw["operations"].items() if "input" in spec}
    _INPUTS.update(inputs)
    return shapes


_INPUTS: dict[str, str] = {}


def input_shape(operation: str) -> str | None:
    """The name of ``operation``'s input shape (``CreateTrainingJobRequest``), None if there is none."""
    _model()
    return _INPUTS.get(operation)


def shape_limits(shape: str) -> tuple[int | None, int | None, str | None]:
    """``(min, max, pattern)`` of a shape of the model, as the model states them."""
    found = _model()[shape]
    return found.min, found.max, found.pattern


def shape_type(shape: str) -> str:
    """The model's type of ``shape``: ``string``, ``integer``, ``structure``, ``list``, ``map``, ..."""
    return _model()[shape].type


def member_shape(shape: str, member: str) -> str:
    """The shape of ``member`` of the structure ``shape``; of a list's items for ``"member"``, of a map's
    keys and values for ``"key"`` and ``"value"``."""
    found = _model()[shape]
    if member in ("member", "key", "value") and found.type in ("list", "map"):
        return str(getattr(found, member))
    return found.members[member]


# ---------------------------------------------------------------- Java patterns


def java_regex(pattern: str) -> Any:
    """``pattern`` (Java's ``java.util.regex`` syntax) compiled for the ``regex`` package, to be used with
    ``fullmatch``. Raises ``regex.error`` for a pattern it cannot read."""
    return _compiled(pattern)


@functools.cache
def _compiled(pattern: str) -> Any:
    return regex.compile(_translate(pattern), regex.V1)


def _translate(pattern: str) -> str:
    """Java -> ``regex`` (V1, whose nested sets mean what Java's ``[a[b]]`` means)."""
    out: list[str] = []
    depth = 0  # inside how many character classes
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped, i = _escape(pattern, i, depth > 0)
            out.append(escaped)
            continue
        if char == "[":
            depth += 1
            out.append(char)
            if pattern.startswith("^", i + 1):
                out.append("^")
                i += 1
        elif char == "]" and depth:
            depth -= 1
            out.append(char)
        elif char == "." and not depth:
            out.append(_JAVA_DOT)
        else:
            out.append(char)
        i += 1
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """One escape sequence at ``pattern[i]`` (a backslash); returns its translation and where it ends."""
    code = pattern[i + 1]
    if code in "dws":
        body = _JAVA_CLASSES[code]
        return (body if in_class else f"[{body}]"), i + 2
    if code in "DWS":
        return f"[^{_JAVA_CLASSES[code.lower()]}]", i + 2
    if code in "pP" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 2)
        if end < 0:
            raise regex.error("missing } of \\p{...}", pattern, i)
        name = pattern[i + 3 : end]
        posix = _JAVA_POSIX.get(name)  # \p{IsAlnum} is Unicode's Alnum in Java, not POSIX's: as it is
        if posix is None:
            return pattern[i : end + 1], end + 1
        if code == "P":
            return f"[^{posix}]", end + 1
        return (posix if in_class else f"[{posix}]"), end + 1
    if code == "u" and regex.fullmatch(r"[dD][89abAB][0-9a-fA-F]{2}", pattern[i + 2 : i + 6] or ""):
        low = pattern[i + 6 : i + 12]
        if regex.fullmatch(r"\\u[dD][c-fC-F][0-9a-fA-F]{2}", low):
            point = 0x10000 + ((int(pattern[i + 2 : i + 6], 16) - 0xD800) << 10) + int(low[2:], 16) - 0xDC00
            return f"\\U{point:08X}", i + 12
    return pattern[i : i + 2], i + 2


def _refused_characters(pattern: str, value: Any) -> list[str]:
    """The characters of ``value`` that the pattern allows nowhere (none of its classes or literals
    matches them), in order and at most five: ``'_'`` in ``my_job`` for a job name."""
    if not isinstance(value, str):
        return []
    alphabet = _alphabet(pattern)
    if alphabet is None:
        return []
    refused: list[str] = []
    for char in value:
        if char not in refused and not alphabet.fullmatch(char):
            refused.append(char)
    return refused[:5]


@functools.cache
def _alphabet(pattern: str) -> Any:
    """One character any of ``pattern``'s classes, escapes, ``.`` or literals matches; None if the
    pattern cannot be read that way."""
    atoms: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "[":
            depth, end = 0, i
            while end < len(pattern):
                if pattern[end] == "\\":
                    end += 2
                    continue
                depth += {"[": 1, "]": -1}.get(pattern[end], 0)
                end += 1
                if depth == 0:
                    break
            atoms.append(pattern[i:end])
            i = end
        elif char == "\\":
            end = pattern.index("}", i) + 1 if pattern.startswith(("p{", "P{"), i + 1) else i + 2
            atoms.append(pattern[i:end])
            i = end
        elif char == "{" and regex.match(r"\{\d*(,\d*)?\}", pattern[i:]):
            i = pattern.index("}", i) + 1
        elif char == "(" and pattern.startswith("?", i + 1):
            prefix = regex.match(r"[:=!]|<[=!]|", pattern[i + 2 :])
            assert prefix is not None  # the empty alternative always matches
            i += 2 + len(prefix[0])
        elif char in "()|*+?^$":
            i += 1
        else:
            atoms.append(regex.escape(char) if char != "." else ".")
            i += 1
    if not atoms:
        return None
    try:
        return java_regex("(?:" + "|".join(atoms) + ")")
    except regex.error:
        return None


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


# ---------------------------------------------------------------- validation


def validate(operation: str, params: Mapping[str, Any]) -> list[Violation]:
    """Every violation of ``operation``'s input constraints in ``params`` (the request's keyword
    arguments, as boto3 takes them), in request order, then the documented rules of
    :data:`DOCUMENTED_RULES`. An operation the model does not know has no constraints here."""
    shape = input_shape(operation)
    if shape is None:
        return []
    found = list(_check(shape, params, ()))
    rules = DOCUMENTED_RULES.get(operation)
    if rules is not None:
        found += rules(params)
    return found


def violations(shape: str, value: Any) -> list[Violation]:
    """The violations of the model's shape ``shape`` (``TrainingJobName``, ``TagValue``) by ``value``;
    paths start below it."""
    return list(_check(shape, value, ()))


def is_valid(shape: str, value: Any) -> bool:
    """True when SageMaker accepts ``value`` as a value of the shape ``shape``."""
    return not violations(shape, value)


def _check(name: str, value: Any, path: tuple[str | int, ...], in_key: bool = False) -> Iterator[Violation]:
    shape = _model()[name]
    if not _of_type(value, shape.type):
        yield Violation(path, Rule.TYPE, name, value, limit=f"a {shape.type}", in_key=in_key)
        return
    if shape.type == "structure":
        for member in sorted(shape.required - set(value), key=list(shape.members).index):
            yield Violation((*path, member), Rule.REQUIRED, shape.members[member])
        for member, item in value.items():
            if member in shape.members and item is not None:
                yield from _check(shape.members[member], item, (*path, member))
    elif shape.type in ("list", "map"):
        yield from _bounds(name, shape, len(value), value, path, Rule.LENGTH, container=shape.type)
        if shape.type == "list":
            for index, item in enumerate(value):
                yield from _check(shape.member, item, (*path, index))
        else:
            for key, item in value.items():
                for violation in _check(shape.key, key, (*path, key), in_key=True):
                    yield replace(violation, whole_map=value)
                for violation in _check(shape.value, item, (*path, key)):
                    direct = len(violation.path) == len(path) + 1
                    yield replace(violation, in_value=True, whole_map=value) if direct else violation
    elif shape.type == "string":
        yield from _bounds(name, shape, len(value), value, path, Rule.LENGTH, in_key=in_key)
        if shape.pattern is not None and not _matches(shape.pattern, value):
            yield Violation(path, Rule.PATTERN, name, value, limit=shape.pattern, in_key=in_key)
    elif shape.type in INT_RANGES:
        yield from _bounds(name, shape, value, value, path, Rule.RANGE)


def _bounds(
    name: str,
    shape: _Shape,
    measured: int,
    value: Any,
    path: tuple[str | int, ...],
    rule: Rule,
    *,
    container: str = "",
    in_key: bool = False,
) -> Iterator[Violation]:
    common: dict[str, Any] = {
        "shape": name,
        "value": value,
        "actual": measured,
        "container": container,
        "in_key": in_key,
    }
    if shape.max is not None and measured > shape.max:
        yield Violation(path, rule, bound="max", limit=shape.max, **common)
    elif shape.min is not None and measured < shape.min:
        yield Violation(path, rule, bound="min", limit=shape.min, **common)
    low, high = INT_RANGES.get(shape.type, (None, None))
    if high is not None and measured > high and (shape.max is None or shape.max > high):
        yield Violation(path, rule, bound="max", limit=high, width=_WIDTHS[shape.type], **common)
    if low is not None and measured < low and (shape.min is None or shape.min < low):
        yield Violation(path, rule, bound="min", limit=low, width=_WIDTHS[shape.type], **common)


def _matches(pattern: str, text: str) -> bool:
    try:
        compiled = java_regex(pattern)
    except regex.error:  # a pattern this module cannot read is left to SageMaker (none in the model)
        return True
    return compiled.fullmatch(text) is not None


# ---------------------------------------------------------------- the API reference's rules


_RUN_PATH: Final = ("StoppingCondition", "MaxRuntimeInSeconds")
_WAIT_PATH: Final = ("StoppingCondition", "MaxWaitTimeInSeconds")


def _create_training_job_rules(params: Mapping[str, Any]) -> list[Violation]:
    """CreateTrainingJob's documented rules (API reference: StoppingCondition, CreateTrainingJob)."""
    stopping = params.get("StoppingCondition")
    stopping = stopping if isinstance(stopping, Mapping) else {}
    run, wait = stopping.get("MaxRuntimeInSeconds"), stopping.get("MaxWaitTimeInSeconds")
    spot = params.get("EnableManagedSpotTraining") is True
    found = [_run_too_long(run)] if _integer(run) and run > MAX_RUNTIME_SECONDS else []
    spot_rule = _spot_wait_rule(run, wait, spot)
    return found + ([spot_rule] if spot_rule is not None else [])


def _run_too_long(run: int) -> Violation:
    return Violation(
        _RUN_PATH,
        Rule.DOCUMENTED,
        "MaxRuntimeInSeconds",
        run,
        bound="max",
        limit=MAX_RUNTIME_SECONDS,
        actual=run,
        detail=f"SageMaker accepts at most {MAX_RUNTIME_SECONDS} seconds (28 days), got {run}",
    )


def _spot_wait_rule(run: Any, wait: Any, spot: bool) -> Violation | None:
    """``MaxWaitTimeInSeconds`` only with managed spot training, required with it, at least the run."""
    if wait is not None and not spot:
        return Violation(
            _WAIT_PATH,
            Rule.DOCUMENTED,
            "MaxWaitTimeInSeconds",
            wait,
            detail="SageMaker accepts it only with EnableManagedSpotTraining",
            aws="Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is "
            "set to true",
        )
    if spot and wait is None:
        return Violation(
            _WAIT_PATH,
            Rule.DOCUMENTED,
            "MaxWaitTimeInSeconds",
            None,
            bound="min",
            limit=run if _integer(run) else None,
            detail="SageMaker requires it for managed spot training",
            aws="Invalid MaxWaitTimeInSeconds. It is required for managed spot training",
        )
    if spot and _integer(wait) and _integer(run) and wait < run:
        return Violation(
            _WAIT_PATH,
            Rule.DOCUMENTED,
            "MaxWaitTimeInSeconds",
            wait,
            bound="min",
            limit=run,
            actual=wait,
            detail=f"SageMaker needs at least MaxRuntimeInSeconds ({run}), got {wait}",
            aws="Invalid MaxWaitTimeInSeconds. It must be greater than or equal to MaxRuntimeInSeconds",
        )
    return None


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _of_type(value: Any, shape_type: str) -> bool:
    """Whether ``value`` (parsed JSON) has the JSON type of a ``shape_type`` shape."""
    if shape_type in INT_RANGES:
        return _integer(value)
    return isinstance(value, _JSON_TYPES.get(shape_type, (object,)))


DOCUMENTED_RULES: Final[dict[str, Callable[[Mapping[str, Any]], list[Violation]]]] = {
    "CreateTrainingJob": _create_training_job_rules,
}


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
