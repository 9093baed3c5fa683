"""The Anubis benchmark descriptor: its validation into the typed model, and the SageMaker support check.

Owns every rule a descriptor must satisfy: the shape of `payload.toml.contents` (the descriptor TOML
parsed to a table) is `domain.sections`' model, one frozen pydantic model per TOML table, whose
validators use `domain.fieldrules`; here pydantic's errors become one `DescriptorError`. The service
calls `parse_descriptor` on each `BAI_APP_FETCHER` event and then `check_sagemaker_support`;
translation reads the returned `Descriptor`. Every problem surfaces as a `DescriptorError` that names
the first offending field in document order (`field_path` writes it), whatever JSON-like value comes
in; a value with no strict JSON form (NaN, an infinity, text with a lone surrogate) is one of those
problems (see `parse_descriptor`).

Rules follow CONTRACT.md §8 with the original's bugs fixed (§10): unknown keys are a
`DescriptorError`, single-node jobs may have one instance, and `info.task_name` is accepted.
SageMaker's own limits on a value that reaches the training job as it is (the job name, a tag, a
channel name) are `domain.constraints`' (botocore's SageMaker model), asked here and in the model so
the user hears early; every other SageMaker limit, and everything that depends on what the executor
adds, is checked on the final request by `domain.preflight`. No limit of SageMaker's is written down
here. Pure: no I/O, no clock.
"""

import re
import tomllib
from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from sagemaker_executor.domain import constraints, instances
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.fieldrules import REPR, Invalid, show
from sagemaker_executor.domain.sections import SAGEMAKER_ENGINE, Descriptor, Strategy
from sagemaker_executor.domain.strictjson import first_unfit

ROOT = "<root>"


# ---------------------------------------------------------------- pydantic errors -> DescriptorError

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean (true or false)",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _strip_optional(annotation: object) -> object:
    if get_origin(annotation) in (Union, UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _field_at(loc: Sequence[str | int]) -> tuple[object, FieldInfo | None]:
    """The annotation at `loc` inside Descriptor and the FieldInfo of the model field it ends on."""
    annotation: object = Descriptor
    info: FieldInfo | None = None
    for part in loc:
        annotation = _strip_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None, None
            annotation = info.annotation
        elif get_origin(annotation) in (list, dict):
            annotation, info = get_args(annotation)[-1], None
        else:
            return None, None
    return _strip_optional(annotation), info


def _bounds(loc: Sequence[str | int]) -> str:
    _, info = _field_at(loc)
    words = []
    for limit in info.metadata if info else ():
        for attr, symbol in (("ge", ">="), ("le", "<=")):
            if getattr(limit, attr, None) is not None:
                words.append(f"{symbol} {getattr(limit, attr)}")
    return (" " + " and ".join(words)) if words else ""


def _reason(error: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str]:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), Invalid):
        return loc + ctx["error"].at, ctx["error"].reason
    if kind == "invalid_key":
        return loc, f"keys must be strings, got {show(value)}"
    if loc and loc[-1] == "[key]":
        # The input is the key itself; loc[-2] is pydantic's text for it (None becomes 'None').
        return loc[:-1], f"key must be a string, got {show(value)}"
    if kind == "missing":
        return loc, "is required"
    if kind == "extra_forbidden":
        model, _ = _field_at(loc[:-1])
        allowed = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
        return loc, f"unknown key {REPR.repr(loc[-1])} (allowed: {', '.join(allowed)})"
    if kind in _EXPECTED:
        return (
            loc,
            f"must be {_EXPECTED[kind]}{_bounds(loc) if kind == 'int_type' else ''}, got {show(value)}",
        )
    for key, symbol in (("ge", ">="), ("le", "<=")):
        if key in ctx:
            return loc, f"must be {symbol} {ctx[key]}, got {show(value)}"
    return loc, f"{error.get('msg', 'is invalid')}, got {show(value)}"


def _document_position(data: object, loc: Sequence[str | int]) -> tuple[int, ...]:
    """Where `loc` sits in the input, in key order; a missing key sorts at the end of its table."""
    position = []
    node: object = data
    for part in loc:
        if isinstance(node, Mapping):
            keys = list(node)
            if part in node:
                position.append(keys.index(part))
                node = node[part]
                continue
            position.append(len(keys))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            position.append(part)
            node = node[part]
            continue
        break
    return tuple(position)


def field_path(loc: Sequence[str | int]) -> str:
    """Dotted path for a location, e.g. ("data", "sources", 0, "src") -> "data.sources[0].src"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{REPR.repr(part)}]"
    return path or ROOT


def _first_problem(
    error: ValidationError, data: object, unfit: tuple[tuple[str | int, ...], str] | None
) -> DescriptorError:
    problems = [_reason(e) for e in error.errors(include_url=False)]
    if unfit is not None:
        problems.append(unfit)  # after pydantic's: at the same place, its "must be an integer" says more
    loc, reason = min(problems, key=lambda problem: _document_position(data, problem[0]))
    return DescriptorError(field_path(loc), reason)


# ---------------------------------------------------------------- public entry points


def parse_descriptor(contents: Mapping[str, Any]) -> Descriptor:
    """Validate descriptor contents (TOML parsed to a table); raise DescriptorError, nothing else.

    Every value is first checked to have a strict JSON form (``domain.strictjson.first_unfit``): no
    NaN or infinity (valid TOML 1.0, but no JSON has them, and they would reach SageMaker and the
    executor event), no string or key that is not Unicode text (a lone surrogate from a ``\\u``
    escape, which nothing downstream can encode). Such a value is refused wherever it sits, even in
    the free-form ``custom_params.hyper_params``; the first problem in document order is reported,
    whichever check found it.
    """
    data: object = contents
    if isinstance(contents, Mapping) and not isinstance(contents, dict):
        data = dict(contents)
    unfit = first_unfit(data)
    try:
        descriptor = Descriptor.model_validate(data)
    except ValidationError as error:
        raise _first_problem(error, data, unfit) from None
    if unfit is not None:
        raise DescriptorError(field_path(unfit[0]), unfit[1])
    return descriptor


def parse_descriptor_toml(text: str) -> Descriptor:
    """Parse descriptor TOML text and validate it like `parse_descriptor`."""
    try:
        contents = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        raise DescriptorError(ROOT, f"not valid TOML: {error or 'nested too deeply'}") from None
    return parse_descriptor(contents)


def check_sagemaker_support(d: Descriptor) -> None:
    """Raise DescriptorError for a valid descriptor the SageMaker engine cannot run."""
    if d.info.execution_engine != SAGEMAKER_ENGINE:
        raise DescriptorError(
            "info.execution_engine",
            f"must be {SAGEMAKER_ENGINE!r} for the SageMaker executor, got {d.info.execution_engine!r}",
        )
    if d.hardware.strategy is Strategy.INFERENCE:
        raise DescriptorError(
            "hardware.strategy",
            "'inference' is not supported by the SageMaker executor (use single_node or horovod)",
        )
    instances.check_sagemaker_instance_type(d.hardware.instance_type)
    distributed = d.hardware.distributed
    if (
        distributed
        and distributed.processes_per_instance == "gpus"
        and instances.gpus_per_instance(d.hardware.instance_type) == 0
    ):
        note = instances.accelerator_note(d.hardware.instance_type)
        raise DescriptorError(
            "hardware.distributed.processes_per_instance",
            f"'gpus' needs a GPU instance, but {d.hardware.instance_type} has no GPUs"
            + (f" ({note})" if note else "")
            + "; give the number of processes as a string instead",
        )
    _check_channels(d)


def channel_name(index: int, source_id: str | None) -> str:
    """The input channel data source ``index`` becomes (CONTRACT §7): its ``id``, or ``src<index>``."""
    return source_id if source_id is not None else f"src{index}"


def _check_channels(d: Descriptor) -> None:
    """Each data source becomes the input channel `id`, or `src<index>` without one (CONTRACT §7): a
    SageMaker ``ChannelName`` (``domain.constraints``), distinct from the others."""
    seen: set[str] = set()
    for index, source in enumerate(d.data.sources if d.data else []):
        channel = channel_name(index, source.id)
        found = constraints.violations("ChannelName", channel)
        if found:
            raise DescriptorError(
                f"data.sources[{index}].id", f"becomes a SageMaker channel name: {found[0].limit_text()}"
            )
        if channel in seen:
            raise DescriptorError(f"data.sources[{index}].id", f"channel name {channel!r} is used twice")
        seen.add(channel)
