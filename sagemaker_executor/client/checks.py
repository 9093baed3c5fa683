"""What ``submit`` checks on the user's machine before anything is uploaded or published.

The same code the service runs on the event, so a descriptor the executor would refuse is refused
here, at once, with the same words: the file is read and parsed with ``tomllib`` (TOML 1.0, the one
TOML reader of the project), routed like the service routes it (``domain.translation.routing``: a
descriptor for another engine or a cron schedule is not this executor's), validated
(``domain.descriptor.parse_descriptor``, ``check_sagemaker_support``, the event model) and put through
:func:`_preflight`. Each problem is a :class:`~sagemaker_executor.client.errors.ClientError` naming the
file and what to fix.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sagemaker_executor.client.errors import ClientError, ExitCode
from sagemaker_executor.client.events import DescriptorFile, tar_scripts
from sagemaker_executor.config import Settings
from sagemaker_executor.domain.events import JSONDict
from sagemaker_executor.domain.sections import (
    SAGEMAKER_ENGINE,
    SINGLE_RUN,
)
from sagemaker_executor.domain.translation import ExecutorSite, routing
from sagemaker_executor.service.submission import preflight_errors

# What the deployment fills in is not known on the user's machine; values of the right shape stand in.
_PLACEHOLDER_BUCKET = "preflight-output-bucket"
_PLACEHOLDER_NODATA = "s3://preflight-nodata/no-data"
_PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/preflight"
_PLACEHOLDER_REGION = "us-east-1"


def _reason(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


def read_descriptor(path: Path) -> DescriptorFile:
    """The descriptor at ``path``, parsed as TOML 1.0.

    Raises :class:`ClientError`: ``NO_SUCH_FILE`` when it cannot be read, ``INVALID_DESCRIPTOR`` when
    it is not UTF-8 or not valid TOML (with the line and column).
    """
    try:
        doc = path.read_bytes()
    except OSError as error:
        raise ClientError(
            ExitCode.NO_SUCH_FILE, f"cannot read the descriptor {path}: {_reason(error)}"
        ) from error
    try:
        contents: dict[str, Any] = tomllib.loads(doc.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ClientError(
            ExitCode.INVALID_DESCRIPTOR, f"{path} is not UTF-8 text (byte {error.start}): save it as UTF-8"
        ) from error
    except tomllib.TOMLDecodeError as error:
        raise ClientError(ExitCode.INVALID_DESCRIPTOR, f"{path} is not valid TOML: {error}") from error
    except RecursionError as error:
        raise ClientError(
            ExitCode.INVALID_DESCRIPTOR, f"{path} is not valid TOML: nested too deeply"
        ) from error
    return DescriptorFile(path, doc, contents)


def check_routing(descriptor: DescriptorFile) -> None:
    """Raises ``NOT_FOR_THIS_EXECUTOR`` when the service would ignore the descriptor (CONTRACT §5.1).

    The service ignores such events silently; here the user hears why, before anything is sent.
    """
    engine, scheduling = routing(descriptor.contents)
    path = descriptor.path
    if engine != SAGEMAKER_ENGINE:
        shown = f"{engine!r}" if "execution_engine" in _info(descriptor) else f"not set (so {engine!r})"
        raise ClientError(
            ExitCode.NOT_FOR_THIS_EXECUTOR,
            f"{path}: info.execution_engine is {shown}, so the SageMaker executor would ignore it: "
            f'set execution_engine = "{SAGEMAKER_ENGINE}" to run it on SageMaker, or submit it with '
            "the anubis client to run it on Kubernetes",
        )
    if scheduling != SINGLE_RUN:
        raise ClientError(
            ExitCode.NOT_FOR_THIS_EXECUTOR,
            f"{path}: info.scheduling is {scheduling!r}, a schedule: scheduled benchmarks are run by "
            f"anubis-cron-job through the Kubernetes executor, and this executor only runs "
            f'"{SINGLE_RUN}" ones: remove info.scheduling (or set it to "{SINGLE_RUN}"), or submit '
            "it with the anubis client",
        )


def _info(descriptor: DescriptorFile) -> dict[str, Any]:
    info = descriptor.contents.get("info")
    return info if isinstance(info, dict) else {}


def read_scripts(path: Path) -> tuple[str, bytes]:
    """``--script``: ``(<sha1>.tar, bytes)`` of ``path``; ``NO_SUCH_FILE`` when it cannot be read."""
    if not path.exists():
        raise ClientError(ExitCode.NO_SUCH_FILE, f"--script {path}: no such file or directory")
    try:
        return tar_scripts(path)
    except OSError as error:
        where = error.filename or path
        raise ClientError(
            ExitCode.NO_SUCH_FILE, f"--script {path}: cannot read {where}: {_reason(error)}"
        ) from error


def check_submission(descriptor: DescriptorFile, event: JSONDict, settings: Settings) -> None:
    """Run the service's own checks of ``event`` (built from ``descriptor``): validation, SageMaker
    support, translation and the pre-flight check of the request (:func:`_preflight`), once.

    Raises ``INVALID_DESCRIPTOR`` with the executor's own messages, prefixed by the file's path.
    """
    problems = [problem.removeprefix(_SERVICE_PREFIX) for problem in _preflight(event, settings)]
    if problems:
        raise ClientError(ExitCode.INVALID_DESCRIPTOR, f"{descriptor.path}: " + "; ".join(problems))


_SERVICE_PREFIX = "Cannot process the request: "  # the ERROR status's words; the client names the file


def _preflight(event: JSONDict, settings: Settings) -> list[str]:
    """The service's own pre-flight check of the ``CreateTrainingJob`` request this event would make
    (``service.submission.preflight_errors``): its ERROR messages, ``[]`` when SageMaker would take it.

    Settings the client does not need (the output bucket, the role) stand in as placeholders that are
    valid for SageMaker, so what is judged is the descriptor and the event.
    """
    site = ExecutorSite(
        output_bucket=settings.sagemaker_output_bucket or _PLACEHOLDER_BUCKET,
        nodata_uri=settings.sagemaker_nodataset or _PLACEHOLDER_NODATA,
        role_arn=_PLACEHOLDER_ROLE,
        subnets=settings.sagemaker_subnets,
        security_group_ids=settings.sagemaker_security_group_ids,
        region=settings.aws_region or _PLACEHOLDER_REGION,
    )
    return preflight_errors(event, site)
