"""``make demo`` is part of the test run: it must print each flow and exit 0 on a fresh machine."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_demo_runs_every_flow_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.local.demo"], capture_output=True, text=True, timeout=280
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.count("Benchmark successfully created...") == 5
    assert (
        "ERROR              Cannot process the request: descriptor field 'hardware.distributed.num_instances'"
        in out
    )
    for status in ("INITIALIZING", "RUNNING", "METRICS AVAILABLE"):
        assert f"sm-executor  {status}" in out
    assert (
        "FAILED             Benchmark failed: AlgorithmError: ExecuteUserScriptError: loss became NaN" in out
    )
    assert out.count("Benchmark finished: training job") == 2
    assert "SUCCEEDED          Execution successfully cancelled..." in out
    assert "CMD_RETURN 0: Cancel command processed successfully" in out
    assert "CANCELED           Benchmark cancelled" in out
    assert "Demo finished: every benchmark ended as expected." in out
