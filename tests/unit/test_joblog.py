"""The pure rules of ``domain.joblog``: where a job's log is, what a FAILED status keeps of it (lines,
bytes, hosts), how it reads, and which secrets never leave it; and the FAILED message they make with
``domain.lifecycle``."""

from __future__ import annotations

import pytest

from sagemaker_executor.domain.events import Status
from sagemaker_executor.domain.joblog import (
    LINE_BYTES,
    MASK,
    PROBLEM_BYTES,
    REASON_BYTES,
    TAIL_BYTES,
    TAIL_LINES,
    LogEvent,
    LogTail,
    Masker,
    clean,
    host_of,
    host_order,
    secret_name,
    share,
    stream_prefix,
    tail_of,
    tail_text,
)
from sagemaker_executor.domain.lifecycle import JobState, is_failure, report_for
from sagemaker_executor.domain.limits import MAX_MESSAGE_BYTES, bounded_message, json_size

JOB = "anubis-job-1"
NO_SECRETS = Masker()


def events(host: str, count: int, start: int = 0, step: int = 10, text: str = "line") -> list[LogEvent]:
    return [LogEvent(host, start + i * step, f"{text} {i}") for i in range(count)]


# ------------------------------------------------------------------------------------ where and who


def test_streams_are_found_by_the_job_name_and_a_slash() -> None:
    assert stream_prefix("job-1") == "job-1/"
    assert not "job-10/algo-1-1700000000".startswith(stream_prefix("job-1"))


@pytest.mark.parametrize(
    ("stream", "host"),
    [
        (f"{JOB}/algo-1-1700000000", "algo-1"),
        (f"{JOB}/algo-12-1700000000", "algo-12"),
        (f"{JOB}/algo-3", "algo-3"),
        (f"{JOB}/something-else", "something-else"),
    ],
)
def test_the_host_is_read_from_the_stream_name(stream: str, host: str) -> None:
    assert host_of(stream, JOB) == host


def test_hosts_sort_by_number() -> None:
    assert sorted(["algo-10", "algo-2", "algo-1"], key=host_order) == ["algo-1", "algo-2", "algo-10"]


def test_lines_read_as_a_terminal_showed_them() -> None:
    assert clean("\x1b[31mError\x1b[0m: boom\n") == ["Error: boom"]
    assert clean("epoch 1:  10%\repoch 1: 100%") == ["epoch 1: 100%"]
    assert clean("a\x00b\x07c\tTab\nsecond\n\n") == ["abc\tTab", "second"]


# ------------------------------------------------------------------------------------------ bounds


def test_the_tail_keeps_the_last_lines_only() -> None:
    tail = tail_of(JOB, {"algo-1": events("algo-1", 100)}, 1, NO_SECRETS)
    assert len(tail.lines) == TAIL_LINES
    assert [e.message for e in tail.lines][-1] == "line 99"
    assert tail.lines[0].message == f"line {100 - TAIL_LINES}"


def test_each_event_line_counts_as_a_line() -> None:
    traceback = LogEvent("algo-1", 5, "Traceback (most recent call last):\n  File x\nValueError: bad\n")
    tail = tail_of(JOB, {"algo-1": [*events("algo-1", 3), traceback]}, 1, NO_SECRETS)
    assert [e.message for e in tail.lines][-3:] == [
        "Traceback (most recent call last):",
        "  File x",
        "ValueError: bad",
    ]


def test_a_long_line_is_cut_to_its_bound() -> None:
    tail = tail_of(JOB, {"algo-1": [LogEvent("algo-1", 1, "x" * 100_000)]}, 1, NO_SECRETS)
    (line,) = tail.lines
    assert json_size(line.message) <= LINE_BYTES
    assert line.message.startswith("xxx") and "[cut: 100000 characters]" in line.message


def test_the_tail_keeps_the_newest_lines_within_its_bytes() -> None:
    wide = [
        LogEvent("algo-1", i, f"{i:03d} " + "é" * 300) for i in range(TAIL_LINES)
    ]  # escaped: 6 bytes each
    tail = tail_of(JOB, {"algo-1": wide}, 1, NO_SECRETS)
    assert 0 < len(tail.lines) < TAIL_LINES
    assert json_size("\n".join(e.message for e in tail.lines)) <= TAIL_BYTES
    assert tail.lines[-1].message.startswith(f"{TAIL_LINES - 1:03d}")


def test_each_host_gets_its_share_so_a_crash_is_not_pushed_out() -> None:
    crash = [LogEvent("algo-2", 100, "RuntimeError: CUDA out of memory")]
    chatter = events("algo-1", 200, start=200, text="waiting for peers")  # all after the crash
    tail = tail_of(JOB, {"algo-1": chatter, "algo-2": crash}, 2, NO_SECRETS)
    assert tail.lines[0] == LogEvent("algo-2", 100, "RuntimeError: CUDA out of memory")
    assert sum(e.host == "algo-1" for e in tail.lines) == share(2)
    assert [e.timestamp_ms for e in tail.lines] == sorted(e.timestamp_ms for e in tail.lines)


# ------------------------------------------------------------------------------------------- text


def test_one_host_lines_are_shown_as_they_are() -> None:
    text = tail_text(tail_of(JOB, {"algo-1": events("algo-1", 2)}, 1, NO_SECRETS))
    head, *lines = text.split("\n")
    assert (
        head
        == f"Last 2 lines of the log (CloudWatch Logs /aws/sagemaker/TrainingJobs, streams {JOB}/algo-*):"
    )
    assert lines == ["line 0", "line 1"]


def test_several_hosts_say_which_host_each_line_came_from() -> None:
    per_host = {"algo-2": events("algo-2", 2, start=5), "algo-1": events("algo-1", 2)}
    head, *lines = tail_text(tail_of(JOB, per_host, 2, NO_SECRETS)).split("\n")
    assert head.endswith(", hosts algo-1, algo-2):")
    assert lines == ["[algo-1] line 0", "[algo-2] line 0", "[algo-1] line 1", "[algo-2] line 1"]


def test_a_tail_of_some_hosts_says_so() -> None:
    head = tail_text(tail_of(JOB, {"algo-7": events("algo-7", 1)}, 16, NO_SECRETS)).split("\n")[0]
    assert "the 1 of 16 hosts that logged last: algo-7" in head
    assert (
        tail_text(tail_of(JOB, {"algo-7": events("algo-7", 1)}, 16, NO_SECRETS)).split("\n")[1]
        == "[algo-7] line 0"
    )


def test_an_unreadable_log_is_one_line_saying_why_and_where() -> None:
    text = tail_text(LogTail.unreadable(JOB, "AccessDeniedException: not authorized"))
    assert text == (
        "The job's log could not be read (AccessDeniedException: not authorized); it is in CloudWatch Logs "
        f"/aws/sagemaker/TrainingJobs, streams {JOB}/algo-*."
    )


def test_a_job_without_a_log_says_it_failed_before_its_container_ran() -> None:
    assert "failed before its container started" in tail_text(LogTail(JOB))


def test_a_partial_read_shows_what_it_has_and_why_it_stopped() -> None:
    tail = tail_of(JOB, {"algo-1": events("algo-1", 1)}, 2, NO_SECRETS, "stopped after 1 of 2 streams")
    assert "read in part: stopped after 1 of 2 streams" in tail_text(tail).split("\n")[0]


# ---------------------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True),
        ("HF_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("API_KEY", True),
        ("apiKey", True),
        ("SSH_KEY_PATH", True),
        ("GITHUB_CREDENTIALS", True),
        ("MY_PWD", True),
        ("X-Amz-Signature", True),
        ("MONKEY", False),
        ("KEYBOARD_LAYOUT", False),
        ("EPOCHS", False),
        ("SM_MODEL_DIR", False),
    ],
)
def test_which_names_look_secret(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("connecting with hunter2-long to db", f"connecting with {MASK} to db"),
        ("token is hf_abcdef123", f"token is {MASK}"),
        ("epoch 7 of 10, loss 0.7", f"epoch {MASK} of 10, loss 0.7"),  # a short secret: whole words only
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            f"aws_secret_access_key = {MASK}",
        ),
        ('{"SessionToken": "FwoGZX IvYXdz", "epochs": 3}', f'{{"SessionToken": "{MASK}", "epochs": 3}}'),
        ("using key AKIAIOSFODNN7EXAMPLE now", f"using key {MASK} now"),
        ("Authorization: Bearer abcdefghijklmnop", f"Authorization: Bearer {MASK}"),
        ("python train.py --password s3cr3tpw --epochs 3", f"python train.py --password {MASK} --epochs 3"),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123&x=1",
            f"https://b.s3.amazonaws.com/k?X-Amz-Signature={MASK}&x=1",
        ),
        ("MONKEY=5 learning_rate: 0.1", "MONKEY=5 learning_rate: 0.1"),
    ],
)
def test_secrets_are_masked(line: str, masked: str) -> None:
    masker = Masker({"DB_PASSWORD": "hunter2-long", "HF_TOKEN": "hf_abcdef123", "PASS": "7", "HOME": "/root"})
    assert masker.mask(line) == masked


def test_values_of_variables_that_do_not_look_secret_stay() -> None:
    assert (
        Masker({"HOME": "/root", "EPOCHS": "10"}).mask("HOME is /root for 10 epochs")
        == "HOME is /root for 10 epochs"
    )


def test_the_masker_reads_the_jobs_environment() -> None:
    masker = Masker.of_job({"Environment": {"WANDB_API_KEY": "0123456789abcdef"}})
    assert masker.mask("wandb login 0123456789abcdef") == f"wandb login {MASK}"
    assert Masker.of_job(None).mask("plain") == "plain"


def test_secrets_are_masked_before_a_line_is_cut() -> None:
    secret = "s" * 64
    line = "x" * (LINE_BYTES - 20) + secret  # the cut falls inside the secret
    tail = tail_of(JOB, {"algo-1": [LogEvent("algo-1", 1, line)]}, 1, Masker({"MY_SECRET": secret}))
    assert "sssss" not in tail.lines[0].message


# --------------------------------------------------------------------------- the FAILED message


def failed(reason: str, **extra: object) -> tuple[JobState, dict[str, object]]:
    description = {"TrainingJobName": JOB, "TrainingJobStatus": "Failed", "SecondaryStatus": "Failed"}
    return JobState(JOB, "Failed", "Failed"), {**description, "FailureReason": reason, **extra}


def test_a_failure_has_a_one_line_headline_and_the_log_below_it() -> None:
    state, description = failed("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage boom")
    tail = tail_of(JOB, {"algo-1": events("algo-1", 3)}, 1, NO_SECRETS)
    report = report_for(state, description, "us-east-1", tail)
    headline, *rest = report.message.split("\n")
    assert report.status is Status.FAILED
    assert headline == (
        f"Benchmark failed: AlgorithmError: ExecuteUserScriptError: ExitCode 1 ErrorMessage boom "
        f"(training job {JOB} Failed)"
    )
    assert rest == tail_text(tail).split("\n")


def test_the_failure_reason_is_masked_too() -> None:
    state, description = failed("bad login hunter2-long", Environment={"DB_PASSWORD": "hunter2-long"})
    assert "hunter2-long" not in report_for(state, description, "us-east-1").message


def test_without_a_log_reader_the_message_is_the_headline_alone() -> None:
    state, description = failed("boom")
    assert "\n" not in report_for(state, description, "us-east-1").message


@pytest.mark.parametrize(
    ("status", "secondary", "failure"),
    [
        ("Failed", "Failed", True),
        ("Stopped", "MaxRuntimeExceeded", True),
        ("Stopped", "Stopped", False),
        ("Completed", "Completed", False),
        ("InProgress", "Interrupted", False),
    ],
)
def test_which_endings_are_failures(status: str, secondary: str, failure: bool) -> None:
    assert is_failure(JobState(JOB, status, secondary)) is failure


def test_the_largest_failed_message_fits_a_status_uncut() -> None:
    state, description = failed("é" * 5_000)  # escaped as 6 bytes each, beyond any real reason
    lines = [LogEvent(f"algo-{i % 8}", i, "é" * 10_000) for i in range(200)]
    per_host: dict[str, list[LogEvent]] = {}
    for event in lines:
        per_host.setdefault(event.host, []).append(event)
    tail = tail_of("j" * 63, per_host, 64, NO_SECRETS, "stopped after 8 of 8 streams: " + "x" * 2_000)
    message = report_for(state, description, "us-east-1", tail).message
    assert json_size(message) <= MAX_MESSAGE_BYTES
    assert bounded_message(message) == message
    assert json_size(message.split("\n")[0]) < REASON_BYTES + 200


def test_a_huge_line_is_masked_in_linear_time() -> None:
    import time

    masker = Masker({"MY_TOKEN": "tok-123456"})
    started = time.monotonic()
    for text in ("x" * 300_000, "a-" * 150_000, "k=v " * 60_000, "--a" * 100_000):
        masker.mask(text)
    assert time.monotonic() - started < 5  # quadratic backtracking took minutes


def test_why_a_log_could_not_be_read_is_bounded_too() -> None:
    text = tail_text(LogTail.unreadable(JOB, "AccessDenied: " + "x" * 100_000))
    assert json_size(text) < PROBLEM_BYTES + 200 and "[cut: " in text


def test_the_service_log_shows_a_statuss_first_line_only(caplog: pytest.LogCaptureFixture) -> None:
    from sagemaker_executor.service.emitter import StatusEmitter
    from tests.fakes import FakeSink

    emitter = StatusEmitter(FakeSink(), status_topic="BAI_APP_STATUS", node="n")
    event = {"action_id": "a", "client_id": "c", "payload": {}}
    with caplog.at_level("INFO", logger="sagemaker_executor.service.emitter"):
        emitter.status(event, Status.FAILED, "Benchmark failed: boom\nLast 2 lines of the log:\nx\ny")
    (record,) = caplog.records
    assert record.getMessage() == "status FAILED for action a: Benchmark failed: boom (and 3 more lines)"
