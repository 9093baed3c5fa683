"""Shared test fixtures: where the Anubis samples live, environment hygiene for AWS clients, and the
IAM policy check: every AWS call of the run is recorded, and a run of the whole suite fails if
``deploy/iam-policy.json`` misses an action the service performed or grants one it never performed."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import iam_policy

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

# Set before any client exists, and inherited by every executor subprocess the tests start.
AWS_CALLS, _OWN_CALLS_FILE = iam_policy.start_recording()
_run = {"deselected": 0, "finished": 0}
_IAM_REPORT = pytest.StashKey[list[str]]()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A test that runs a CLI entry point installs a root handler on the stderr pytest gave it, closed
    once the test ends; later tests would log into it ("--- Logging error ---"). Remove what the test
    added (pytest's own capture handlers are pytest's to manage) and put the root's level back."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="session")
def samples() -> Path:
    assert SAMPLES.is_dir(), f"missing {SAMPLES}"
    return SAMPLES


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--check-iam-policy",
        action="store_true",
        help="compare deploy/iam-policy.json with the AWS actions performed even when only part of the "
        "suite runs (by default only a run of the whole suite is compared)",
    )


def pytest_deselected(items: list[pytest.Item]) -> None:
    _run["deselected"] += len(items)


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    _run["finished"] += 1


def partial_run(session: pytest.Session) -> str | None:
    """Why this run may not have performed every AWS action the service can, or None for the whole suite."""
    config = session.config
    if config.args_source != pytest.Config.ArgsSource.TESTPATHS:
        return "test paths were named"
    if config.getoption("keyword") or config.getoption("markexpr") or _run["deselected"]:
        return "tests were deselected"
    if session.shouldstop or session.shouldfail or _run["finished"] < len(session.items):
        return "the run stopped early"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[None]:
    yield
    reason = partial_run(session)
    if reason is not None and not session.config.getoption("check_iam_policy"):
        session.config.stash[_IAM_REPORT] = [
            f"IAM policy check skipped: {reason} (--check-iam-policy forces it)"
        ]
        return
    used = iam_policy.service_actions(iam_policy.recorded_calls(AWS_CALLS))
    granted = iam_policy.granted_actions(iam_policy.load_policy())
    session.config.stash[_IAM_REPORT] = iam_policy.report(used, granted)
    if any(iam_policy.verdict(used, granted)):
        session.testsfailed += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in terminalreporter.config.stash.get(_IAM_REPORT, []):
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_CALLS_FILE:
        AWS_CALLS.unlink(missing_ok=True)
