"""The rules the descriptor's tables share, and the error their validators raise.

``domain.sections`` (one pydantic model per TOML table of the descriptor) validates fields with these:
:func:`enum_value` (a member of a ``StrEnum``, named in the message when the value is none),
:func:`not_blank`, :func:`check_env_vars` (``env.vars`` and ``server.env.vars``: names a shell
takes, CONTRACT.md §8; no NUL in a value) and :func:`check_tag` (``custom_params.tags``: SageMaker's
``TagKey`` and ``TagValue`` from ``domain.constraints``, and the prefixes the executor reserves).
Each raises :class:`Invalid`, a ``ValueError`` whose ``at`` continues the field path below the value
being validated; ``domain.descriptor`` turns it into a
:class:`~sagemaker_executor.domain.errors.DescriptorError` naming the field. A user's value is shown
short by :func:`show` (``repr`` cut by :data:`REPR`, then its type). Pure.
"""

import reprlib
from enum import StrEnum
from typing import Any

from sagemaker_executor.domain import constraints
from sagemaker_executor.domain.shell import NAME_RULE, is_environment_variable_name

_RESERVED_TAG_PREFIXES = ("aws:", "anubis-")


class Invalid(ValueError):
    """Raised by validators; `at` continues the path below the value being validated."""

    def __init__(self, reason: str, *at: str | int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at


REPR = reprlib.Repr()
REPR.maxstring = 60
REPR.maxother = 60
REPR.maxlevel = 2
REPR.maxlist = REPR.maxdict = 4


def show(value: object) -> str:
    """Short `repr (type)` of a user value; huge or deeply nested values are abbreviated."""
    try:
        text = REPR.repr(value)
    except Exception:  # e.g. an int past Python's digit limit refuses repr()
        text = "<unprintable>"
    return f"{text} ({type(value).__name__})"


def enum_value(enum_cls: type[StrEnum], value: object) -> Any:
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        try:
            return enum_cls(value)
        except ValueError:
            pass
    allowed = ", ".join(repr(member.value) for member in enum_cls)
    raise Invalid(f"must be one of {allowed}, got {show(value)}")


def not_blank(value: str) -> str:
    if not value.strip():
        raise Invalid("must not be empty")
    return value


def check_env_vars(variables: dict[str, str]) -> dict[str, str]:
    for name, value in variables.items():
        if not is_environment_variable_name(name):
            raise Invalid(f"variable name {show(name)} must be {NAME_RULE}", name)
        if "\0" in value:
            raise Invalid("must not contain a NUL character", name)
    return variables


def check_tag(key: str, value: str) -> None:
    """SageMaker's ``TagKey`` and ``TagValue`` (``domain.constraints``), and the reserved prefixes."""
    for what, shape, text in (("key", constraints.TAG_KEY, key), ("value", constraints.TAG_VALUE, value)):
        found = constraints.violations(shape, text)
        if found:
            raise Invalid(f"tag {what}: {found[0].limit_text()}", key)
    if key.lower().startswith(_RESERVED_TAG_PREFIXES):
        raise Invalid(f"tag key {show(key)} uses a reserved prefix ('aws:' or 'anubis-')", key)
