"""What an S3 location is: the one parser of ``s3://<bucket>[/<key>]`` and the one bucket-name rule.

Callers: ``domain.sections`` (``custom_params.checkpoint_s3_uri``), ``domain.translation`` (where the
fetcher put a dataset), ``domain.request`` (where a job's sources go under its output path),
``adapters.s3`` (a benchmark script's object), ``local.jobspec`` (the local SageMaker's channels and
output path) and the settings (``SAGEMAKER_OUTPUT_BUCKET``, ``SAGEMAKER_NODATASET``). Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

SCHEME: Final = "s3://"
BUCKET_NAME_RULE: Final = (
    "3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
)
# S3's general-purpose bucket naming rules, as far as a name's characters go.
_BUCKET_NAME: Final = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key in it: an object's key, a key prefix, or ``""`` for the bucket itself."""

    bucket: str
    key: str = ""

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def is_bucket_name(name: str) -> bool:
    """True when ``name`` keeps :data:`BUCKET_NAME_RULE`."""
    return _BUCKET_NAME.fullmatch(name) is not None


def parse_s3_uri(text: str, *, object_key: bool = False) -> S3Location:
    """``s3://<bucket>[/<key>]`` as an :class:`S3Location`; ``object_key``: a key must follow.

    Raises ``ValueError`` saying, for a user, what is wrong with ``text``.
    """
    form = f"'{SCHEME}<bucket>/<key>'" if object_key else f"'{SCHEME}<bucket>[/<key>]'"
    if not text.startswith(SCHEME):
        raise ValueError(f"must be an S3 URI {form}")
    bucket, _, key = text.removeprefix(SCHEME).partition("/")
    if not is_bucket_name(bucket):
        raise ValueError(f"must be an S3 URI {form} whose bucket is {BUCKET_NAME_RULE}, not {bucket!r}")
    if object_key and not key:
        raise ValueError(f"must be an S3 URI {form}: it names no object")
    if any(not c.isprintable() for c in key):
        raise ValueError("must not hold control characters or line breaks")
    return S3Location(bucket, key)
