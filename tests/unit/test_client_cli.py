"""Every common mistake with the client commands, through the real entry point: one line, its exit code.

The CLI runs as ``python -m sagemaker_executor.cli`` in a subprocess with a clean environment (only
``PATH``, plus what a case sets), so nothing of the test process leaks in. No case here reaches a
broker or AWS: each stops at a local check, or at a broker port nothing listens on. The cases that
need a broker (a missing status topic, Ctrl-C while following, unknown actions) are in
``tests/integration/test_client.py``. Also here: ``--help`` of the client commands, and the exit codes
as documented in the README.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sagemaker_executor.cli import CLIENT_COMMANDS, KAFKA_COMMANDS, _parser
from sagemaker_executor.client.errors import EXIT_CODE_MEANINGS, ExitCode
from sagemaker_executor.config import OPTIONS, is_client_option

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello-world"
VALID = HELLO / "descriptor.toml"
NO_AWS = {  # no identity anywhere: environment, files, instance metadata
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
}


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


# Every run points at a broker that is not there: a case that got past its check would exit 3.
NOWHERE = closed_port()


def cli(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.cli", *args],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": NOWHERE, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, time.monotonic() - started


def one_line_error(result: subprocess.CompletedProcess[str], code: ExitCode, *needles: str) -> str:
    """The single stderr line of ``result``, which exited with ``code`` and says each of ``needles``."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""  # nothing was published: no action id
    return lines[0]


def write(tmp_path: Path, text: str, name: str = "d.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def valid_with(**sections: str) -> str:
    """The hello-world descriptor with lines added at the top of ``[info]`` (or another table)."""
    text = VALID.read_text()
    for table, lines in sections.items():
        text = text.replace(f"[{table}]\n", f"[{table}]\n{lines}\n", 1)
    return text


# ------------------------------------------------------------------------------------- the mistakes


def test_a_missing_descriptor_file() -> None:
    result, _ = cli("submit", "no-such.toml")

    one_line_error(result, ExitCode.NO_SUCH_FILE, "cannot read the descriptor no-such.toml", "no such file")


def test_a_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'spec_version = "0.1.0"\n[info\ndescription = "x"\n')

    result, _ = cli("submit", str(path))

    one_line_error(result, ExitCode.INVALID_DESCRIPTOR, f"{path} is not valid TOML", "line 2")


def test_toml_1_0_is_read_as_the_service_reads_it(tmp_path: Path) -> None:
    # Mixed-type arrays are TOML 1.0 (tomllib) but not 0.5 (the old `toml` package): same reader both sides.
    path = write(tmp_path, valid_with(custom_params='hyper_params = { mixed = [1, "two"] }'))
    broken = write(tmp_path, valid_with(hardware="x = 1"), "broken.toml")

    accepted, _ = cli("submit", str(path))
    refused, _ = cli("submit", str(broken))

    one_line_error(accepted, ExitCode.BROKERS_UNREACHABLE)  # valid: it went on to the brokers
    one_line_error(refused, ExitCode.INVALID_DESCRIPTOR, "descriptor field 'hardware.x'")


def test_an_invalid_descriptor_is_refused_with_the_executors_words_before_connecting() -> None:
    result, elapsed = cli("submit", str(REPO / "examples" / "broken.toml"))

    one_line_error(
        result,
        ExitCode.INVALID_DESCRIPTOR,
        "examples/broken.toml: descriptor field 'hardware.distributed.num_instances': must be an integer",
    )
    assert elapsed < 10


def test_what_the_request_builder_refuses_is_refused_here(tmp_path: Path) -> None:
    # Valid for the descriptor rules; the SageMaker SDK refuses TensorFlow py2 above 2.1.1 (_preflight).
    text = valid_with().replace(
        'framework = "pytorch"\nframework_version = "2.1"',
        'framework = "tensorflow"\nframework_version = "2.3.0"',
    )
    text = text.replace('python_version = "py310"', 'python_version = "py2"')
    assert 'framework = "tensorflow"' in text and 'python_version = "py2"' in text
    path = write(tmp_path, text)

    result, _ = cli("submit", str(path))

    one_line_error(result, ExitCode.INVALID_DESCRIPTOR, "Cannot create estimator: Python 2 containers")


def test_what_sagemaker_would_refuse_is_refused_here_naming_the_field(tmp_path: Path) -> None:
    # The service's pre-flight check of the final request (issue 9), before anything is uploaded.
    classes = ",".join(f"class-{i:04d}" for i in range(260))
    path = write(tmp_path, valid_with(custom_params=f'hyper_params = {{ classes = "{classes}" }}'))

    result, _ = cli("submit", str(path))

    one_line_error(
        result,
        ExitCode.INVALID_DESCRIPTOR,
        "descriptor field 'custom_params.hyper_params.classes': SageMaker accepts at most 2500 characters",
    )


@pytest.mark.parametrize(
    ("info", "says"),
    [
        ('execution_engine = "kubernetes"', "info.execution_engine is 'kubernetes'"),
        ("", "info.execution_engine is not set (so 'default')"),
        ('execution_engine = "aws.sagemaker"\nscheduling = "0 * * * *"', "info.scheduling is '0 * * * *'"),
    ],
    ids=["engine", "no-engine", "cron"],
)
def test_a_descriptor_for_another_executor_is_named_at_once(tmp_path: Path, info: str, says: str) -> None:
    text = VALID.read_text().replace('execution_engine = "aws.sagemaker"\n', info + "\n")
    path = write(tmp_path, text)

    # With --script and no AWS identity: the routing is said before any upload is tried.
    result, _ = cli("submit", str(path), "--script", str(HELLO / "scripts" / "hello"), **NO_AWS)

    one_line_error(result, ExitCode.NOT_FOR_THIS_EXECUTOR, says, "anubis client")


def test_a_missing_script_directory() -> None:
    result, _ = cli("submit", str(VALID), "--script", "no-such-dir")

    one_line_error(result, ExitCode.NO_SUCH_FILE, "--script no-such-dir: no such file or directory")


def test_no_aws_credentials_for_the_script_upload() -> None:
    result, elapsed = cli(
        "submit",
        str(VALID),
        "--script",
        str(HELLO / "scripts" / "hello"),
        SCRIPTS_EXCHANGE_S3_BUCKET_NAME="scripts-exchange",
        **NO_AWS,
    )

    one_line_error(
        result,
        ExitCode.AWS,
        "no AWS credentials to upload --script to s3://scripts-exchange/anubis0/",
        "AWS_PROFILE",
    )
    assert elapsed < 10


def test_logs_without_aws_credentials_says_how_to_get_them() -> None:
    result, elapsed = cli("logs", "some-id", **NO_AWS)

    one_line_error(
        result, ExitCode.AWS, "no AWS credentials to read the log of action some-id", "AWS_PROFILE"
    )
    assert elapsed < 10


def test_logs_needs_a_region() -> None:
    result, _ = cli("logs", "some-id", **{k: v for k, v in NO_AWS.items() if k != "AWS_DEFAULT_REGION"})

    one_line_error(result, ExitCode.USAGE, "logs needs AWS_DEFAULT_REGION")


def test_a_script_upload_needs_a_bucket() -> None:
    result, _ = cli("submit", str(VALID), "--script", str(HELLO / "scripts" / "hello"), **NO_AWS)

    one_line_error(result, ExitCode.USAGE, "SCRIPTS_EXCHANGE_S3_BUCKET_NAME")


@pytest.mark.parametrize("command", [("submit", str(VALID)), ("cancel", "some-id"), ("status", "some-id")])
def test_an_unreachable_broker_is_one_line_after_the_connect_timeout(command: tuple[str, str]) -> None:
    result, elapsed = cli(*command, "--connect-timeout", "1")

    one_line_error(
        result,
        ExitCode.BROKERS_UNREACHABLE,
        f"no Kafka broker answered at {NOWHERE} within 1s",
        "KAFKA_BOOTSTRAP_SERVERS",
    )
    assert elapsed < 8


def test_debug_shows_the_traceback_and_still_the_message() -> None:
    result, _ = cli("submit", "no-such.toml", "--debug")

    assert result.returncode == ExitCode.NO_SUCH_FILE
    assert "Traceback" in result.stderr
    assert "FileNotFoundError" in result.stderr
    assert (
        result.stderr.rstrip()
        .splitlines()[-1]
        .startswith("sagemaker-executor submit: cannot read the descriptor")
    )


def test_a_malformed_setting_is_a_usage_error() -> None:
    result, _ = cli("status", "x", "--status-topic", "not a topic!")

    one_line_error(result, ExitCode.USAGE)
    assert "STATUS_TOPIC" in result.stderr


def test_an_unknown_argument_is_a_usage_error() -> None:
    result, _ = cli("submit", str(VALID), "--folow")

    assert result.returncode == ExitCode.USAGE
    assert "unrecognized arguments: --folow" in result.stderr


# ------------------------------------------------------------------------------------------- --help


def client_parsers() -> dict[str, argparse.ArgumentParser]:
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: subparsers.choices[name] for name in CLIENT_COMMANDS}


SERVICE_ONLY = [o for o in OPTIONS if not is_client_option(o)]


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
def test_client_help_lists_only_client_options_each_with_help(command: str) -> None:
    parser = client_parsers()[command]
    result, _ = cli(command, "--help")

    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.dest
    for option in SERVICE_ONLY:
        assert "--" + option.name.replace("_", "-") not in text, option.name
    for flag in ("--timeout", "--debug", "--client-id"):
        assert flag in text
    kafka = ("--kafka-bootstrap-servers", "--status-topic", "--connect-timeout")
    for flag in kafka:  # `logs` asks AWS only
        assert (flag in text) is (command in KAFKA_COMMANDS), flag
    for code in ExitCode:
        assert f" {int(code)} " in text.split("exit codes:")[1]
    assert len(SERVICE_ONLY) > 25  # the service's own settings are many; none of them is shown


def test_the_action_id_argument_is_explained() -> None:
    for command in ("cancel", "status", "logs"):
        result, _ = cli(command, "--help")
        assert "action_id the action id that submit printed" in " ".join(result.stdout.split())


def test_submit_help_names_its_options() -> None:
    result, _ = cli("submit", "--help")

    text = " ".join(result.stdout.split())
    for word in ("descriptor", "--script", "--follow", "--until {created,ended}", "--no-check"):
        assert word in text


def test_the_readme_documents_every_exit_code() -> None:
    readme = (REPO / "README.md").read_text()
    start = readme.index("### Exit codes")
    section = readme[start : readme.index("\n## ", start)]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M))
    assert {int(code) for code in rows} == {int(code) for code in ExitCode}
    assert set(EXIT_CODE_MEANINGS) == set(ExitCode)
