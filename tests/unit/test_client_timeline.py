"""What an action's events mean to the user (``client.timeline``) and how they are shown (``client.view``).

Pure: events are built here as the executor publishes them (the message texts come from the service's
own modules, so a changed text breaks these tests rather than the client's reading of it).
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from sagemaker_executor.client.timeline import METRICS_GRACE_MS, Change, End, Timeline, Tone
from sagemaker_executor.client.view import View, parse_line
from sagemaker_executor.domain.events import Status
from sagemaker_executor.domain.lifecycle import JobState, report_for
from sagemaker_executor.service.commands import MSG_CANCELLED, MSG_OK
from sagemaker_executor.service.submission import MSG_PENDING, MSG_SUCCEEDED

ACTION = "3f2a1b9c-0000-4000-8000-000000000001"
COMMAND = "c0ffee00-0000-4000-8000-000000000002"
JOB = "job-1"
T0 = 1_700_000_000_000


def status(
    status: Status | str,
    message: str,
    *,
    at: int = T0,
    src: dict[str, Any] | None = None,
    svc: str = "sm-executor",
    action: str = ACTION,
) -> dict[str, Any]:
    return {
        "action_id": action,
        "tstamp": at,
        "visited": [{"svc": svc}],
        "payload": {"status": str(status), "message": message, "src_event": src},
    }


EXECUTOR_EVENT = {"type": "BAI_APP_EXECUTOR", "payload": {"job": {"id": JOB}}}
CANCEL_COMMAND = {
    "type": "CMD_SUBMIT",
    "payload": {"command": "cancel", "args": {"target_action_id": ACTION}},
}


def tracked(
    status_: str, secondary: str, *, at: int = T0, described: dict[str, Any] | None = None
) -> dict[str, Any]:
    report = report_for(JobState(JOB, status_, secondary), described, "us-east-1")
    return status(report.status, report.message, at=at, src=EXECUTOR_EVENT)


def response(code: int, message: str, *, action: str = COMMAND, svc: str = "sm-executor") -> dict[str, Any]:
    return {
        "action_id": action,
        "tstamp": T0,
        "visited": [{"svc": svc}],
        "payload": {"return_code": code, "message": message, "cmd_submit": CANCEL_COMMAND},
    }


def feed(timeline: Timeline, *events: dict[str, Any], response_: bool = False) -> list[Change]:
    changes = [timeline.feed(event, response=response_, now_ms=T0) for event in events]
    return [change for change in changes if change is not None]


def test_a_whole_run_reads_as_named_steps_with_one_created_and_one_finished() -> None:
    timeline = Timeline(ACTION)

    changes = feed(
        timeline,
        status(Status.PENDING, MSG_PENDING),
        status(Status.SUCCEEDED, MSG_SUCCEEDED, src=EXECUTOR_EVENT),
        tracked("InProgress", "Starting"),
        tracked("InProgress", "LaunchingMLInstances"),
        tracked("InProgress", "Training"),
        tracked("InProgress", "Uploading"),
        tracked("Completed", "Completed", at=T0 + 10),
        status(Status.METRICS_AVAILABLE, "Metrics available: accuracy=0.93, loss=0.1", src=EXECUTOR_EVENT),
    )

    assert [c.event for c in changes] == [
        "received",
        "job created",
        "starting",
        "launching instances",
        "training",
        "uploading output",
        "job finished",
        "metrics",
    ]
    assert [c.status for c in changes].count("SUCCEEDED") == 2
    assert changes[1].detail == f"training job {JOB}"
    assert changes[-2].detail.startswith(f"training job {JOB} completed")
    assert changes[-1].detail == "accuracy=0.93, loss=0.1"
    assert timeline.job_name == JOB
    assert timeline.end("ended", T0 + 10) is End.FINISHED
    assert timeline.end("created", T0) is End.CREATED


def test_following_to_the_end_waits_for_metrics_a_moment_after_the_job_ended() -> None:
    timeline = Timeline(ACTION)
    feed(timeline, status(Status.SUCCEEDED, MSG_SUCCEEDED, src=EXECUTOR_EVENT))

    assert timeline.end("created", T0) is End.CREATED
    assert timeline.end("ended", T0) is None  # created is not the end

    feed(timeline, tracked("Failed", "Failed", at=T0, described={"FailureReason": "loss became NaN"}))

    assert timeline.last is not None and timeline.last.event == "job failed"
    assert "loss became NaN" in timeline.last.detail
    assert timeline.end("ended", T0 + METRICS_GRACE_MS - 1) is None
    assert timeline.end("ended", T0 + METRICS_GRACE_MS) is End.FAILED


def test_an_error_ends_following_whatever_the_until() -> None:
    timeline = Timeline(ACTION)

    (change,) = feed(timeline, status(Status.ERROR, "Cannot process the request: descriptor field 'x': bad"))

    assert (change.event, change.tone) == ("refused", Tone.BAD)
    assert timeline.end("created", T0) is End.REFUSED
    assert timeline.end("ended", T0) is End.REFUSED


def test_a_cancel_reads_cancel_requested_stopping_cancelled_not_succeeded_running() -> None:
    timeline = Timeline(ACTION, command_id=COMMAND)
    feed(timeline, status(Status.SUCCEEDED, MSG_SUCCEEDED, src=EXECUTOR_EVENT))

    changes = feed(
        timeline,
        status(Status.SUCCEEDED, MSG_CANCELLED, src=CANCEL_COMMAND),
        tracked("Stopping", "Stopping"),
        tracked("Stopped", "Stopped", at=T0),
    )
    changes += feed(timeline, response(0, MSG_OK), response_=True)

    assert [c.event for c in changes] == ["cancel requested", "stopping", "job cancelled", "cancel answered"]
    assert [c.status for c in changes] == ["SUCCEEDED", "RUNNING", "CANCELED", "CMD_RETURN 0"]
    assert timeline.created and timeline.ended is End.CANCELLED
    assert [a.code for a in timeline.answers] == [0]


def test_cancel_answers_tell_not_found_from_failed() -> None:
    timeline = Timeline(ACTION, command_id=COMMAND)

    feed(
        timeline,
        response(1, f"Cancel command failed: No resources found for '{ACTION}'", svc="executor"),
        response(1, "Cancel command failed: AccessDenied", svc="sm-executor"),
        response(0, "ok", action="someone-else"),
        response_=True,
    )

    assert [(a.service, a.not_found) for a in timeline.answers] == [
        ("executor", True),
        ("sm-executor", False),
    ]


def test_a_failed_cancel_is_not_a_failed_job() -> None:
    timeline = Timeline(ACTION)

    (change,) = feed(
        timeline, status(Status.FAILED, "An error occurred when attempting to delete ...", src=CANCEL_COMMAND)
    )

    assert change.event == "cancel failed"
    assert timeline.cancel_failed and timeline.ended is None


def test_nothing_to_cancel_ends_a_cancel_follow_at_once() -> None:
    timeline = Timeline(ACTION, command_id=COMMAND)

    feed(
        timeline,
        status(
            Status.SUCCEEDED,
            f"Nothing to cancel: training job {JOB} has already ended (Completed)",
            src=CANCEL_COMMAND,
        ),
    )

    assert timeline.end("ended", T0) is End.ALREADY_ENDED


def test_repeats_other_actions_and_unreadable_events_are_not_changes() -> None:
    timeline = Timeline(ACTION)
    created = status(Status.SUCCEEDED, MSG_SUCCEEDED, src=EXECUTOR_EVENT)

    assert feed(timeline, created, dict(created), status(Status.PENDING, MSG_PENDING, action="other")) != []
    assert len(feed(timeline, created)) == 0  # redelivered: published again, shown once
    assert timeline.feed({"payload": "x"}, response=False, now_ms=T0) is None
    assert timeline.statuses == 1


def test_other_services_and_new_sagemaker_statuses_are_shown_in_their_words() -> None:
    timeline = Timeline(ACTION)

    bff, new = feed(
        timeline,
        status(Status.SUCCEEDED, "Submission has been successfully received...", svc="bai-bff"),
        tracked("InProgress", "WarmingUpPools"),
    )

    assert (bff.event, bff.detail) == ("succeeded", "bai-bff: Submission has been successfully received...")
    assert not timeline.created
    assert new.event == "warming up pools"


# ------------------------------------------------------------------------------------------------ view


CHANGE = Change(ACTION, T0, "job created", "training job job-1 (x)", "SUCCEEDED", Tone.GOOD)


def test_piped_output_is_plain_lines_that_parse_back() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = View(out, err, terminal=False)

    view.action(ACTION)
    view.start_waiting("waiting")
    view.change(CHANGE)
    view.stop_waiting()
    view.note("a hint")

    first, line = out.getvalue().splitlines()
    assert first == ACTION
    assert "\x1b[" not in out.getvalue()
    parsed = parse_line(line)
    assert parsed is not None
    assert (parsed.action, parsed.event, parsed.detail, parsed.status) == (
        ACTION[:8],
        "job created",
        "training job job-1 (x)",
        "SUCCEEDED",
    )
    assert err.getvalue() == "a hint\n"
    assert parse_line(ACTION) is None


def test_a_terminal_gets_colour_and_a_status_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    view = View(out, err, terminal=True)

    view.start_waiting("waiting for the executor")
    view.change(CHANGE)
    view.stop_waiting()

    text = out.getvalue()
    assert view.live
    assert "\x1b[" in text  # colour
    assert "job created" in text and "training job job-1" in text
    assert parse_line(text.splitlines()[0]) is None  # not the plain format


@pytest.mark.parametrize("terminal", [True, False])
def test_the_id_line_names_the_action(terminal: bool) -> None:
    out = io.StringIO()

    View(out, io.StringIO(), terminal=terminal).action(ACTION)

    assert ACTION in out.getvalue()


def failed_with_log(lines: list[str]) -> dict[str, Any]:
    from sagemaker_executor.domain.joblog import LogEvent, Masker, tail_of

    described = {"TrainingJobName": JOB, "FailureReason": "AlgorithmError: exit code 1"}
    tail = tail_of(
        JOB, {"algo-1": [LogEvent("algo-1", i, line) for i, line in enumerate(lines)]}, 1, Masker()
    )
    report = report_for(JobState(JOB, "Failed", "Failed"), described, "us-east-1", tail)
    return status(report.status, report.message, src=EXECUTOR_EVENT)


def test_a_failed_jobs_log_lines_come_with_its_change() -> None:
    timeline = Timeline(ACTION)
    (change,) = feed(timeline, failed_with_log(["epoch 1", "Traceback: boom"]))
    assert (change.event, change.status, timeline.ended) == ("job failed", "FAILED", End.FAILED)
    assert "\n" not in change.detail and "AlgorithmError: exit code 1" in change.detail
    assert change.lines[1:] == ("epoch 1", "Traceback: boom")
    assert change.lines[0].startswith("Last 2 lines of the log")


@pytest.mark.parametrize("terminal", [True, False])
def test_a_failed_jobs_log_lines_are_shown_below_it_and_never_read_as_changes(terminal: bool) -> None:
    out = io.StringIO()
    view = View(out, io.StringIO(), terminal=terminal)
    (change,) = feed(
        Timeline(ACTION), failed_with_log(["[07/01/2030 10:00:00 INFO] epoch 1", "Traceback: boom"])
    )
    view.change(change)
    printed = out.getvalue().splitlines()
    assert any("Traceback: boom" in line for line in printed)
    assert any("epoch 1" in line for line in printed)
    if not terminal:
        row, *below = printed
        parsed = parse_line(row)
        assert parsed is not None and parsed.status == "FAILED"
        assert below[1:] == ["    [07/01/2030 10:00:00 INFO] epoch 1", "    Traceback: boom"]
        assert all(parse_line(line) is None for line in below)


@pytest.mark.parametrize("terminal", [True, False])
def test_log_lines_of_several_hosts_say_which_host(terminal: bool) -> None:
    out = io.StringIO()
    view = View(out, io.StringIO(), terminal=terminal)
    view.log_line("one host only")
    view.log_line("from the second", "algo-2")
    text = out.getvalue()
    assert "one host only" in text and "[algo-2]" in text and "from the second" in text
    if not terminal:
        assert text.splitlines() == ["one host only", "[algo-2] from the second"]
