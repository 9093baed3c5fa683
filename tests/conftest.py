"""Shared test fixtures: where the Anubis samples live, and environment hygiene for AWS clients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent / "samples"

# No test may reach real AWS: dummy credentials and a fixed region for every boto3 client.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def samples() -> Path:
    assert SAMPLES.is_dir(), f"missing {SAMPLES}"
    return SAMPLES
