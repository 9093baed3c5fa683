"""The one place that turns an expected failure into the message a user reads in an ERROR status.

Handlers catch :class:`~sagemaker_executor.domain.errors.PermanentError` (and the few ``ValueError``
kinds the domain and the source-dir builder raise) and ask :func:`user_message` what to say. Texts
start like the original's (CONTRACT §5.1 step 4) so existing dashboards and users recognise them, and
then say what is wrong and where.
"""

from __future__ import annotations

import tarfile

from pydantic import ValidationError

from sagemaker_executor.domain.descriptor import field_path
from sagemaker_executor.domain.errors import DescriptorError, PermanentError, ScriptRejected
from sagemaker_executor.domain.events import EventFieldError
from sagemaker_executor.domain.preflight import PreflightError


class Unroutable(Exception):
    """The record cannot be routed (not a JSON object naming an action and a client, no descriptor
    contents) or answered (ids too long to file an answer under): its reason goes to the dead-letter
    topic, and nobody gets a status."""


# Errors a handler converts to an ERROR status (anything else is a bug and is logged as one).
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    PermanentError,
    DescriptorError,
    EventFieldError,
    ScriptRejected,
    tarfile.TarError,
    ValidationError,
)


def describe_validation_error(error: ValidationError, what: str = "event field") -> str:
    """``event field 'payload.datasets[0].src': Field required`` -- the first problem, by its wire path."""
    first = error.errors(include_url=False)[0]
    got = first.get("input")
    detail = first["msg"]
    if first["type"] not in ("missing", "extra_forbidden") and got is not None:
        detail += f", got {_short(got)}"
    return f"{what} '{field_path(first['loc'])}': {detail}"


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def user_message(error: BaseException) -> str:
    """The ERROR status message for an expected failure of a submission."""
    if isinstance(error, DescriptorError | EventFieldError | PreflightError):
        return f"Cannot process the request: {error}"
    if isinstance(error, ValidationError):
        return f"Cannot process the request: {describe_validation_error(error)}"
    if isinstance(error, ScriptRejected | tarfile.TarError):
        return f"Cannot process the request: benchmark script rejected: {error}"
    text = str(error)
    if text.startswith(("Cannot ", "Benchmark creation failed")):
        return text
    return f"Benchmark creation failed. {text}"
