"""Fault-suite fixtures: the integration world (broker, local SageMaker, ``Pipeline``) reused as is,
and a terminal summary with every scenario's counts, so ``pytest -q`` shows what held without ``-s``."""

from __future__ import annotations

from bench.faults import FaultCounts
from tests.faults.observe import REPORTED
from tests.integration.conftest import aws, bootstrap, broker, local_sagemaker, pipeline

__all__ = ["aws", "bootstrap", "broker", "local_sagemaker", "pipeline"]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not REPORTED:
        return
    terminalreporter.section("fault suite counts")
    for counts in REPORTED:
        assert isinstance(counts, FaultCounts)
        terminalreporter.write_line(counts.line())
