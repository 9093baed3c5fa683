"""What a POSIX shell can take from a descriptor: the one rule for each of an environment variable
name, ``ml.benchmark_code`` and ``ml.args``.

``domain.fieldrules`` refuses an ``env.vars`` name that breaks :func:`is_environment_variable_name`;
``domain.entrypoint`` (script mode) and ``domain.bootstrap`` (command mode) write only such names into
``export`` lines and run only code that :func:`checked_benchmark_code` passes; ``domain.bootstrap`` and
``domain.command`` split ``ml.args`` with :func:`split_args`, as the Kubernetes executor does. Pure.
"""

from __future__ import annotations

import re
import shlex
from typing import Final

from sagemaker_executor.domain.errors import DescriptorError

NAME_RULE: Final = "letters, digits and '_', not starting with a digit"
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_environment_variable_name(name: str) -> bool:
    """True when a POSIX shell can ``export`` ``name``: :data:`NAME_RULE`."""
    # fullmatch, not "^...$": "$" would accept a trailing newline.
    return _NAME.fullmatch(name) is not None


def checked_benchmark_code(code: str) -> str:
    """``code``, when a shell has something to run in it; :class:`DescriptorError` otherwise."""
    if not code.strip():
        raise DescriptorError("ml.benchmark_code", "is blank; there is nothing to run")
    if "\x00" in code:
        raise DescriptorError("ml.benchmark_code", "contains a NUL character, which a shell cannot read")
    return code


def split_args(args: str) -> list[str]:
    """``ml.args`` as ``shlex.split`` splits it (as the Kubernetes executor does); :class:`DescriptorError`
    for a NUL character or what cannot be split (unbalanced quotes)."""
    if "\x00" in args:
        raise DescriptorError("ml.args", "contains a NUL character, which no argument can hold")
    try:
        return shlex.split(args)
    except ValueError as error:
        reason = f"cannot be split into arguments as the Kubernetes executor does: {error}"
        raise DescriptorError("ml.args", reason) from None
