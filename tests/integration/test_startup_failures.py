"""Start-up failures through the real entry point (``python -m sagemaker_executor.cli``): each kind
ends the process with its own exit code after exactly one log line that names the setting to fix, a
JSON object under ``LOG_FORMAT=json``, and no traceback.

Brokers that do not answer, a health port in use, a tracking topic with too few partitions, and AWS
refusing the role's resolution (a local endpoint that answers every call with a permanent error).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sagemaker_executor.adapters.kafka import KafkaOptions, ensure_topics
from sagemaker_executor.startup import ExitCode
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration

SASL_PASSWORD = "startup-Secret-77"
IMPORT_AND_AWS_S = 30  # importing the SDK and resolving the role, on a loaded 2-core machine


def run_executor(p: Pipeline, **extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.cli"],
        env=p.env(**extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - started


def json_lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every line of stderr as a JSON object (fails if one is not)."""
    assert result.stdout == ""
    return [json.loads(line) for line in result.stderr.splitlines()]


def the_failure_line(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The one line above INFO; fails if there are several or none."""
    (failure,) = [line for line in lines if line["level"] not in ("DEBUG", "INFO")]
    assert failure["level"] == "CRITICAL"
    return failure


def test_brokers_that_do_not_answer_end_start_up_in_one_json_line_with_exit_3(pipeline: Pipeline) -> None:
    result, elapsed = run_executor(
        pipeline,
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        KAFKA_CONNECT_TIMEOUT_SECONDS="2",
        LOG_FORMAT="json",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="PLAIN",
        KAFKA_SASL_USERNAME="bai",
        KAFKA_SASL_PASSWORD=SASL_PASSWORD,
    )

    assert result.returncode == int(ExitCode.KAFKA_UNREACHABLE) == 3, result.stderr
    assert elapsed < 2 + IMPORT_AND_AWS_S
    lines = json_lines(result)
    failure = the_failure_line(lines)
    assert failure["setting"] == "KAFKA_BOOTSTRAP_SERVERS" and failure["exit_code"] == 3
    assert "127.0.0.1:1" in failure["message"] and "within 2s" in failure["message"]
    assert "ECONNREFUSED" in failure["message"]  # kafka-python's cause, its own lines held back
    assert "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT" in failure["message"]
    assert "Traceback" not in result.stderr and "exc" not in failure
    assert SASL_PASSWORD not in result.stderr
    (starting,) = [line["message"] for line in lines if line["message"].startswith("starting ")]
    assert "'kafka_sasl_password': '***'" in starting  # the start-up line shows it is set, not what


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_health_port_in_use_is_one_line_naming_health_port_with_exit_4(
    pipeline: Pipeline, taken_port: int
) -> None:
    result, _ = run_executor(pipeline, HEALTH_PORT=str(taken_port), LOG_FORMAT="text")

    assert result.returncode == int(ExitCode.HEALTH_PORT) == 4, result.stderr
    lines = result.stderr.splitlines()
    failures = [line for line in lines if " INFO " not in line]
    assert len(failures) == 1, result.stderr
    assert " CRITICAL sagemaker_executor: start-up failed (exit 4)" in failures[0]
    assert f"cannot listen on port {taken_port}" in failures[0] and "Fix HEALTH_PORT" in failures[0]
    assert "Traceback" not in result.stderr


def test_a_tracking_topic_with_too_few_partitions_is_one_line_naming_it_with_exit_5(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    wide = "T" + uuid.uuid4().hex[:10] + ".wide"
    ensure_topics(KafkaOptions([p.bootstrap], client_id="tests", group_id=""), [wide], 2, 1)

    result, _ = run_executor(p, CONSUMER_TOPIC=wide, LOG_FORMAT="json")

    assert result.returncode == int(ExitCode.TOPICS) == 5, result.stderr
    failure = the_failure_line(json_lines(result))
    assert failure["setting"] == "TRACKING_TOPIC"
    assert f"{p.topics.tracking} has 1 partitions, fewer than the 2 of {wide}" in failure["message"]


class RefusingAws(BaseHTTPRequestHandler):
    """Every AWS call answered with a permanent client error, in the query protocol's XML (IAM, STS)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code>"
            b"<Message>this endpoint refuses everything</Message></Error>"
            b"<RequestId>1</RequestId></ErrorResponse>"
        )
        self.send_response(400)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_aws() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RefusingAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_role_aws_will_not_resolve_is_one_line_naming_sagemaker_role_with_exit_6(
    pipeline: Pipeline, refusing_aws: str
) -> None:
    result, _ = run_executor(pipeline, AWS_ENDPOINT_URL=refusing_aws, LOG_FORMAT="json")

    assert result.returncode == int(ExitCode.AWS_REFUSED) == 6, result.stderr
    failure = the_failure_line(json_lines(result))
    assert failure["setting"] == "SAGEMAKER_ROLE"
    assert "cannot resolve SAGEMAKER_ROLE" in failure["message"]
    assert "this endpoint refuses everything" in failure["message"]
    assert "Traceback" not in result.stderr
