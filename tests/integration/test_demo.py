"""``make demo`` is part of the test run: it must print each flow and exit 0 on a fresh machine."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sagemaker_executor.client.view import parse_line

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_demo_runs_every_flow_and_exits_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.local.demo"], capture_output=True, text=True, timeout=280
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    events = [line for line in map(parse_line, (text.strip() for text in out.splitlines())) if line]
    named = [line.event for line in events]
    assert named.count("job created") == 7  # the seven valid submissions
    assert named.count("job finished") == 4
    assert named.count("metrics") >= 4
    for step in ("starting", "training", "uploading output", "cancel requested", "stopping", "job cancelled"):
        assert step in named, step
    # Run for real: the benchmarks' own output, their metrics from the descriptors' patterns.
    assert "Hello world from algo-1, in " in out and "train loss 0.2178" in out
    assert "metrics: epoch=3, train_loss=0.2178, accuracy=0.88" in out
    failed = next(line for line in events if line.event == "job failed")
    assert "AlgorithmError: , exit code: 3" in failed.detail
    assert "    loss became NaN at step 12" in out  # the FAILED status's last log lines
    refused = next(line for line in events if line.event == "refused")
    assert "descriptor field 'hardware.distributed.num_instances'" in refused.detail
    assert "! sagemaker-executor submit: " in out and "examples/broken.toml: descriptor field" in out
    assert "Demo finished: every benchmark ended as expected." in out
