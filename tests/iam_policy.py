"""``deploy/iam-policy.json`` against the AWS actions the service really performs.

``sagemaker_executor.adapters.aws`` appends one line per AWS call to the file named by
``SM_EXECUTOR_RECORD_AWS_CALLS`` (``sagemaker:CreateTrainingJob sagemaker_executor.adapters.sagemaker``):
in the test process and in every executor subprocess, which inherit the variable. ``tests/conftest.py``
starts the recording for the whole run and, when the whole suite ran, compares what the service did
with what the policy grants (:func:`verdict`): an action used but not granted, or granted but never
used, fails the run. ``tests/deploy/test_iam_policy.py`` checks the policy itself and these helpers.

Calls made by the ``submit``/``cancel`` client (``sagemaker_executor.client``, run with a user's own
identity) and by the local SageMaker and demo (``sagemaker_executor.local``) are not the service's, and
neither are calls the tests make themselves (no module of the package on the stack).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sagemaker_executor.adapters.aws import RECORD_CALLS_ENV

POLICY = Path(__file__).resolve().parents[1] / "deploy" / "iam-policy.json"

# What each placeholder of the policy stands for: the service's own setting of the same name where it
# has one. The values are examples, used to check the policy's ARNs against the AWS reference.
PLACEHOLDERS = {
    "AWS_ACCOUNT_ID": "111122223333",
    "AWS_DEFAULT_REGION": "us-east-1",
    "SAGEMAKER_ROLE_NAME": "bai-sagemaker",
    "SAGEMAKER_OUTPUT_BUCKET": "bai-sagemaker-output",
    "SCRIPTS_EXCHANGE_S3_BUCKET_NAME": "bai-scripts-exchange",
}

# API operations authorised by an IAM action of another name.
ACTION_OF_OPERATION = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
}

# Performed, yet needs no statement.
NEEDS_NO_GRANT = {
    "sts:GetCallerIdentity": "AWS answers it for every identity; no policy can allow or deny it "
    "(the fallback when iam:GetRole cannot resolve SAGEMAKER_ROLE)",
}

# Granted, yet never an API call of the service: what real AWS checks besides the call itself.
GRANTED_NOT_CALLED = {
    "iam:PassRole": "CreateTrainingJob hands SAGEMAKER_ROLE to SageMaker; AWS checks that the caller may "
    "pass that role (a dependent action of sagemaker:CreateTrainingJob)",
    "sagemaker:AddTags": "CreateTrainingJob with Tags (every job carries anubis-action-id and "
    "anubis-client-id) needs it (a dependent action of sagemaker:CreateTrainingJob)",
    "s3:ListBucket": "without it S3 answers GetObject of a missing script with AccessDenied instead of "
    "NoSuchKey, and a missing script in one of the executor's own buckets would be taken for an outage",
}

# Callers whose AWS calls are not the service's.
NOT_THE_SERVICE = ("sagemaker_executor.client", "sagemaker_executor.local.")

_PLACEHOLDER = re.compile(r"\$\{([A-Z0-9_]+)\}")


def start_recording() -> tuple[Path, bool]:
    """Name a fresh file in ``SM_EXECUTOR_RECORD_AWS_CALLS`` (unless it is set already, to keep a run's
    calls for inspection); returns it and whether it is ours to remove."""
    if os.environ.get(RECORD_CALLS_ENV):
        return Path(os.environ[RECORD_CALLS_ENV]), False
    handle, name = tempfile.mkstemp(prefix="sm-executor-aws-calls-", suffix=".log")
    os.close(handle)
    os.environ[RECORD_CALLS_ENV] = name
    return Path(name), True


def load_policy(path: Path = POLICY) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(path.read_text())
    return policy


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    found = policy["Statement"]
    return [found] if isinstance(found, dict) else list(found)


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def granted_actions(policy: dict[str, Any]) -> set[str]:
    return {action for s in statements(policy) if s["Effect"] == "Allow" for action in as_list(s["Action"])}


def placeholders(policy: dict[str, Any]) -> set[str]:
    return set(_PLACEHOLDER.findall(json.dumps(policy)))


def substituted(policy: dict[str, Any], values: dict[str, str] = PLACEHOLDERS) -> dict[str, Any]:
    """The policy with every ``${NAME}`` replaced, as ``envsubst`` or terraform's ``templatefile`` would."""
    text = _PLACEHOLDER.sub(lambda m: values[m.group(1)], json.dumps(policy))
    result: dict[str, Any] = json.loads(text)
    return result


def recorded_calls(path: Path) -> list[tuple[str, str]]:
    """``(service:Operation, calling module)`` of every recorded call."""
    if not path.exists():
        return []
    calls = []
    for line in path.read_text().splitlines():
        operation, _, caller = line.partition(" ")
        calls.append((operation, caller))
    return calls


def service_actions(calls: Iterable[tuple[str, str]]) -> set[str]:
    """The IAM actions of the calls the service made (not the client's, the local server's or a test's)."""
    return {
        ACTION_OF_OPERATION.get(operation, operation)
        for operation, caller in calls
        if caller.startswith("sagemaker_executor.") and not caller.startswith(NOT_THE_SERVICE)
    }


def verdict(used: set[str], granted: set[str]) -> tuple[set[str], set[str]]:
    """``(missing, unused)``: performed but not granted, and granted but never performed (minus the
    deliberate exceptions above)."""
    missing = used - granted - set(NEEDS_NO_GRANT)
    unused = granted - used - set(GRANTED_NOT_CALLED)
    return missing, unused


def report(used: set[str], granted: set[str]) -> list[str]:
    """Lines for the terminal: what was compared, and what is wrong."""
    missing, unused = verdict(used, granted)
    lines = [f"IAM policy check: {len(used)} AWS actions performed by the service, {len(granted)} granted"]
    for action in sorted(missing):
        lines.append(f"  MISSING from {POLICY.name}: {action} is performed but not granted")
    for action in sorted(unused):
        lines.append(f"  UNUSED in {POLICY.name}: {action} is granted but never performed")
    if not missing and not unused:
        lines.append("  every action performed is granted, and nothing else is")
    return lines
