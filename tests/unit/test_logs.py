"""Log lines: JSON that parses one record per line, action and job on every line (per thread, nested),
the text format's tag, and AWS secrets masked wherever they appear."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import datetime

import pytest

from sagemaker_executor.logs import (
    ContextFilter,
    JsonFormatter,
    SecretMaskingFilter,
    TextFormatter,
    configure_logging,
    current_context,
    log_context,
    mask_secrets,
)

ACTION = "6f0a1c2e-8b3d-4e5f-9a7b-1c2d3e4f5a6b"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """configure_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = {
        name: logging.getLogger(name).level
        for name in ("kafka", "botocore", "boto3", "s3transfer", "urllib3")
    }
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


class Capture:
    """A logger whose output goes through the production filters and formatter into a string."""

    def __init__(self, formatter: logging.Formatter, name: str = "sagemaker_executor.test") -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.addFilter(ContextFilter())
        handler.addFilter(SecretMaskingFilter())
        handler.setFormatter(formatter)
        self.logger = logging.getLogger(name)
        self.logger.handlers = [handler]
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def json(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines()]


def test_json_is_one_parseable_object_per_record_with_the_context() -> None:
    out = Capture(JsonFormatter())
    out.logger.info("outside")
    with log_context(action_id=ACTION, job_name="bench-1"):
        out.logger.warning("submitted %s", "bench-1", extra={"partition": 2})
    first, second = out.json()

    assert first["action_id"] is None and first["job_name"] is None and first["message"] == "outside"
    assert second["level"] == "WARNING" and second["logger"] == "sagemaker_executor.test"
    assert second["message"] == "submitted bench-1"
    assert second["action_id"] == ACTION and second["job_name"] == "bench-1"
    assert second["partition"] == 2
    ts = datetime.fromisoformat(str(second["ts"]))
    offset = ts.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    assert "exc" not in second


def test_a_traceback_stays_on_one_json_line() -> None:
    out = Capture(JsonFormatter())
    try:
        raise ValueError("boom")
    except ValueError:
        out.logger.exception("failed")
    (line,) = out.lines()
    record = json.loads(line)
    assert record["message"] == "failed"
    assert "Traceback" in record["exc"] and "ValueError: boom" in record["exc"]


def test_text_shows_the_short_action_id_and_the_job_only_when_set() -> None:
    out = Capture(TextFormatter())
    out.logger.info("idle")
    with log_context(action_id=ACTION):
        out.logger.info("picked up")
        with log_context(job_name="bench-1"):
            out.logger.info("created")
    idle, picked, created = out.lines()
    assert idle.endswith("sagemaker_executor.test: idle")
    assert picked.endswith(": [action=6f0a1c2e] picked up")
    assert created.endswith(": [action=6f0a1c2e job=bench-1] created")


def test_nested_contexts_keep_outer_values_unless_overridden_and_restore_them() -> None:
    with log_context(action_id="a1", job_name="j1"):
        with log_context(job_name="j2"):
            assert current_context() == ("a1", "j2")
            with log_context(action_id="a3"):
                assert current_context() == ("a3", "j2")
            assert current_context() == ("a1", "j2")
        assert current_context() == ("a1", "j1")
    assert current_context() == (None, None)


def test_a_context_is_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), log_context(action_id="a1"):
        raise RuntimeError
    assert current_context() == (None, None)


def test_each_thread_logs_its_own_action() -> None:
    out = Capture(JsonFormatter())
    both_inside = threading.Barrier(2, timeout=10)

    def work(action: str) -> None:
        with log_context(action_id=action, job_name=f"job-{action}"):
            both_inside.wait()  # both contexts are set at the same time
            out.logger.info("working on %s", action)
            both_inside.wait()

    threads = [threading.Thread(target=work, args=(a,)) for a in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    out.logger.info("main thread")

    by_message = {r["message"]: (r["action_id"], r["job_name"]) for r in out.json()}
    assert by_message == {
        "working on a": ("a", "job-a"),
        "working on b": ("b", "job-b"),
        "main thread": (None, None),
    }


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY env", "wJalrXUtnFEMI"),
        ("env {'AWS_SECRET_ACCESS_KEY': 'wJalrXUtnFEMI/K7+MDENG'} end", "wJalrXUtnFEMI"),
        ('{"aws_session_token": "IQoJb3JpZ2luX2VjEXAMPLE=="}', "IQoJb3JpZ2lu"),
        ("AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjEXAMPLE", "IQoJb3JpZ2lu"),
        ("{'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEXAMPLE', 'X-Amz-Date': b'20240101T000000Z'}", "IQoJ"),
        ("https://b.s3.amazonaws.com/k?X-Amz-Security-Token=IQoJb3JpZ2lu%2BEXAMPLE&X-Amz-Expires=60", "IQoJ"),
        ("{'SecretAccessKey': 'wJalrXUtnFEMI', 'SessionToken': 'IQoJb3JpZ2lu'}", "wJalrXUtnFEMI"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    masked = mask_secrets(text)
    assert secret not in masked
    assert "***" in masked


def test_masking_keeps_everything_else() -> None:
    text = "X-Amz-Date=20240101T000000Z&X-Amz-Security-Token=abc&X-Amz-Expires=60"
    assert mask_secrets(text) == "X-Amz-Date=20240101T000000Z&X-Amz-Security-Token=***&X-Amz-Expires=60"
    assert mask_secrets("AWS_SECRET_ACCESS_KEY is not set") == "AWS_SECRET_ACCESS_KEY is not set"
    assert mask_secrets("{'SessionToken': 'x', 'Other': 'y'}") == "{'SessionToken': '***', 'Other': 'y'}"


def test_secrets_never_reach_a_log_line_from_arguments_or_tracebacks() -> None:
    out = Capture(JsonFormatter())
    out.logger.info("env: %s", {"AWS_SECRET_ACCESS_KEY": "s3cr3tKEYvalue", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        raise RuntimeError("bad config aws_session_token=t0kenVALUE")
    except RuntimeError:
        out.logger.exception("start-up failed")
    text = out.stream.getvalue()
    assert "s3cr3tKEYvalue" not in text and "t0kenVALUE" not in text
    assert "us-east-1" in text
    env, failure = out.json()
    assert "'AWS_SECRET_ACCESS_KEY': '***'" in str(env["message"])
    assert "aws_session_token=***" in str(failure["exc"])


def test_configure_logging_json_to_stderr(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    with log_context(action_id=ACTION, job_name="bench-1"):
        logging.getLogger("sagemaker_executor.service").info("created aws_secret_access_key=abc123")
        logging.getLogger("sagemaker_executor.service").debug("not at INFO")
        logging.getLogger("botocore.endpoint").info("library chatter stays out")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["action_id"] == ACTION and record["job_name"] == "bench-1"
    assert record["message"] == "created aws_secret_access_key=***"


def test_configure_logging_text(root_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "text")
    with log_context(job_name="bench-1"):
        logging.getLogger("sagemaker_executor").warning("throttled")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith("WARNING sagemaker_executor: [job=bench-1] throttled")


def test_library_loggers_follow_the_level_only_at_debug(root_logging: None) -> None:
    configure_logging("INFO", "text")
    assert logging.getLogger("kafka").level == logging.WARNING
    assert logging.getLogger("botocore").level == logging.WARNING
    configure_logging("ERROR", "text")
    assert logging.getLogger("kafka").level == logging.ERROR
    configure_logging("DEBUG", "json")
    assert logging.getLogger("kafka").level == logging.DEBUG
    assert logging.getLogger("botocore").level == logging.DEBUG


def test_configure_logging_rejects_an_unknown_format_or_level(root_logging: None) -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("INFO", "xml")
    with pytest.raises(ValueError, match="logging level"):
        configure_logging("LOUD", "text")
