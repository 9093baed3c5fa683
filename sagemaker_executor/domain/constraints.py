"""What SageMaker accepts: every input constraint of botocore's own SageMaker service model, applied as
SageMaker applies it, plus the rules of the CreateTrainingJob API reference the model cannot express.

Owns the one place where a SageMaker limit is known. ``domain.preflight`` checks the executor's final
CreateTrainingJob request with :func:`validate` before any AWS call; the descriptor's checks
(``domain.sections``, ``fieldrules``, ``descriptor``) and ``domain.translation`` ask :func:`violations`
about job names, tag values and channel names (the job-name rule lives here and nowhere else); the
local SageMaker (``local.sagemaker``) answers every request it serves with ``domain.violation``'s
``validation_exception_message`` when :func:`validate` finds something, so tests see what production
sees. What is found is a ``domain.violation.Violation`` each.

The model is ``botocore/data/sagemaker/<version>/service-2.json``, the newest version botocore ships
(the one boto3's client uses). It is read once, on first use (about 0.6 s), and kept as a compact
table of the constraints without the documentation (about 4 MiB). botocore's own client-side
validation checks only ``required`` and ``min``; this module applies all of them, as SageMaker does:

* ``min``/``max`` of a string: its length in characters (Unicode code points, as Smithy's ``@length``
  counts them); of a list or map: its number of entries; of an integer or long: its value.
* ``integer`` and ``long`` shapes are 32- and 64-bit signed integers (Smithy's types): a larger value
  cannot be sent, whatever ``max`` says.
* ``pattern`` is a Java regular expression that must match the *whole* value (Java's ``matches()``):
  ``domain.javaregex`` translates it for the ``regex`` package (which reads ``\\p{L}`` classes; ``re``
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, TypeGuard

import regex
from botocore.loaders import create_loader

from sagemaker_executor.domain.javaregex import java_regex
from sagemaker_executor.domain.violation import Rule, Violation

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
