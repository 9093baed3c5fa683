"""The command line as a deployment sees it, and the client's event building.

The CLI runs as ``python -m sagemaker_executor.cli`` in a subprocess with a clean environment (only
``PATH``), so nothing from the test process (its dummy AWS settings) leaks in. No case here reaches a
broker or AWS: each one stops at argument parsing or configuration validation.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import pytest

from sagemaker_executor import __version__
from sagemaker_executor.client.checks import read_descriptor
from sagemaker_executor.client.events import fetcher_event, tar_scripts
from sagemaker_executor.domain.descriptor import parse_descriptor
from sagemaker_executor.domain.events import FetcherBenchmarkEvent

REPO_ROOT = Path(__file__).resolve().parents[2]
HELLO = REPO_ROOT / "examples" / "hello-world"
REQUIRED = ("SAGEMAKER_OUTPUT_BUCKET", "SAGEMAKER_NODATASET", "SAGEMAKER_ROLE", "AWS_DEFAULT_REGION")
# Valid values for every required setting, as flags.
REQUIRED_FLAGS = (
    "--sagemaker-output-bucket",
    "bai-output",
    "--sagemaker-nodataset",
    "s3://bai-data-pull/no-data",
    "--sagemaker-role",
    "bai-sagemaker",
)
QUICKLY = 10.0  # seconds; a configuration error must not wait for a broker or AWS


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {"PATH": "/usr/bin:/bin", **(env or {})}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.cli", *args],
        cwd=REPO_ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, time.monotonic() - started


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


# ------------------------------------------------------------------------------ configuration errors


def test_no_configuration_exits_2_quickly_listing_every_missing_variable() -> None:
    result, elapsed = cli()

    print(f"no configuration: exit {result.returncode} in {elapsed:.2f}s")
    assert result.returncode == 2
    assert elapsed < QUICKLY
    for variable in REQUIRED:
        assert variable in result.stderr, result.stderr
    assert result.stdout == ""
    assert_no_traceback(result)


def test_under_log_format_json_a_configuration_error_is_one_json_line() -> None:
    result, _ = cli(env={"LOG_FORMAT": "json", "AWS_DEFAULT_REGION": "us-east-1", "NUM_PARTITIONS": "x"})

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    record = json.loads(line)
    assert record["level"] == "CRITICAL" and record["exit_code"] == 2
    assert sorted(record["settings"]) == [
        "NUM_PARTITIONS",
        "SAGEMAKER_NODATASET",
        "SAGEMAKER_OUTPUT_BUCKET",
        "SAGEMAKER_ROLE",
    ]
    assert "NUM_PARTITIONS (--num-partitions) must be an integer, got 'x'" in record["message"]
    assert_no_traceback(result)


def test_run_without_configuration_is_the_same_as_no_subcommand() -> None:
    result, _ = cli("run")

    assert result.returncode == 2
    for variable in REQUIRED:
        assert variable in result.stderr
    assert_no_traceback(result)


def test_flags_without_a_subcommand_are_routed_to_run() -> None:
    # All required settings given plus one malformed flag: "run" validates and stops before connecting.
    result, elapsed = cli(
        *REQUIRED_FLAGS, "--num-partitions", "three", env={"AWS_DEFAULT_REGION": "us-east-1"}
    )

    assert result.returncode == 2, result.stderr
    assert elapsed < QUICKLY
    assert "NUM_PARTITIONS" in result.stderr
    assert "'three'" in result.stderr
    for variable in REQUIRED:  # the flags and the region were accepted
        assert f"{variable} (or" not in result.stderr
    assert "invalid choice" not in result.stderr  # not mistaken for a subcommand
    assert_no_traceback(result)


def test_a_malformed_bootstrap_flag_is_named_by_its_variable() -> None:
    result, _ = cli(
        *REQUIRED_FLAGS, "--kafka-bootstrap-servers", "no-port-here", env={"AWS_DEFAULT_REGION": "us-east-1"}
    )

    assert result.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert "'no-port-here'" in result.stderr
    assert_no_traceback(result)


def test_the_environment_alone_configures_run() -> None:
    # The image swap: only the original's variables, no arguments; one malformed value stops it early.
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_OUTPUT_BUCKET": "bai-output",
        "SAGEMAKER_NODATASET": "s3://bai-data-pull/no-data",
        "SAGEMAKER_ROLE": "bai-sagemaker",
        "LOGGING_LEVEL": "CHATTY",
    }
    result, _ = cli(env=env)

    assert result.returncode == 2
    assert "LOGGING_LEVEL" in result.stderr
    assert "SAGEMAKER_ROLE" not in result.stderr
    assert_no_traceback(result)


def test_submit_does_not_need_sagemaker_settings_but_validates_the_rest() -> None:
    result, elapsed = cli(
        "submit", str(HELLO / "descriptor.toml"), "--kafka-bootstrap-servers", "not a server list"
    )

    assert result.returncode == 2
    assert elapsed < QUICKLY
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    for variable in REQUIRED:
        assert variable not in result.stderr
    assert_no_traceback(result)


# ------------------------------------------------------------------------------------ help, version


def test_version() -> None:
    result, _ = cli("--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"sagemaker-executor {__version__}"


def test_help_lists_the_subcommands() -> None:
    result, _ = cli("--help")

    assert result.returncode == 0
    for command in ("run", "submit", "cancel", "status", "logs"):
        assert command in result.stdout
    assert_no_traceback(result)


def test_run_help_lists_every_setting_with_its_variable() -> None:
    from sagemaker_executor.config import OPTIONS

    result, _ = cli("run", "--help")

    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps long lines
    for option in OPTIONS:
        assert "--" + option.name.replace("_", "-") in text
        assert f"env {option.name.upper()}" in text


def test_flags_then_help_without_a_subcommand_shows_run_help() -> None:
    result, _ = cli("--consumer-topic", "X", "--help")

    assert result.returncode == 0
    assert "usage: sagemaker-executor run" in result.stdout


# ------------------------------------------------------------------------------------ client events


def test_fetcher_event_from_the_hello_world_descriptor_is_a_valid_fetcher_event() -> None:
    path = HELLO / "descriptor.toml"
    data = path.read_bytes()

    event = fetcher_event(read_descriptor(path), "client-1", "BAI_APP_FETCHER", None)
    model = FetcherBenchmarkEvent.model_validate(event)

    assert model.client_id == "client-1"
    assert model.type == "BAI_APP_FETCHER"
    assert model.visited[0].svc == "anubis-client"
    assert base64.b64decode(model.payload.toml.doc) == data
    assert model.payload.toml.sha1 == hashlib.sha1(data).hexdigest()
    assert model.payload.toml.contents == tomllib.loads(data.decode())
    assert model.payload.toml.descriptor_filename == "descriptor.toml"
    assert model.payload.scripts == []
    assert model.payload.datasets == []
    parse_descriptor(model.payload.toml.contents)


def test_fetcher_event_with_a_script_names_the_tar_in_the_descriptor() -> None:
    uri = "s3://scripts-exchange/anubis0/0123456789abcdef0123456789abcdef01234567.tar"

    descriptor = read_descriptor(HELLO / "descriptor.toml")

    event = fetcher_event(descriptor, "client-1", "BAI_APP_FETCHER", uri)
    model = FetcherBenchmarkEvent.model_validate(event)

    contents = model.payload.toml.contents
    assert contents["ml"]["script"]["script"] == "0123456789abcdef0123456789abcdef01234567.tar"
    assert contents["ml"]["benchmark_code"] == "python hello/train.py --epochs 3"
    assert [s.dst for s in model.payload.scripts] == [uri]
    parsed = parse_descriptor(contents)
    assert parsed.ml is not None and parsed.ml.script is not None
    assert "script" not in descriptor.contents["ml"]  # the file's table is left as read


def test_fetcher_events_get_fresh_ids() -> None:
    descriptor = read_descriptor(HELLO / "descriptor.toml")
    first = fetcher_event(descriptor, "c", "T", None)
    second = fetcher_event(descriptor, "c", "T", None)

    assert first["action_id"] != second["action_id"]
    assert first["message_id"] != second["message_id"]


def test_tar_scripts_roots_the_archive_at_the_directory_basename() -> None:
    scripts = HELLO / "scripts" / "hello"

    name, data = tar_scripts(scripts)

    assert name == hashlib.sha1(data).hexdigest() + ".tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        names = archive.getnames()
    assert names[0] == "hello"
    assert sorted(names) == ["hello", "hello/requirements.txt", "hello/train.py"]
    assert all(n == "hello" or n.startswith("hello/") for n in names)


def test_tar_scripts_of_a_single_file(tmp_path: Path) -> None:
    script = tmp_path / "bench.py"
    script.write_text("print('hi')\n")

    name, data = tar_scripts(script)

    assert name == hashlib.sha1(data).hexdigest() + ".tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames() == ["bench.py"]
        member = archive.extractfile("bench.py")
        assert member is not None and member.read() == b"print('hi')\n"


@pytest.mark.parametrize(
    "args",
    [("cancel", "--help"), ("submit", "--help"), ("status", "--help"), ("logs", "--help"), ("run", "--help")],
)
def test_subcommand_help_never_needs_configuration(args: tuple[str, ...]) -> None:
    result, elapsed = cli(*args)

    assert result.returncode == 0
    assert elapsed < QUICKLY
    assert result.stderr == ""
