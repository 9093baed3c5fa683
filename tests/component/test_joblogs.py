"""The CloudWatch Logs wrapper against moto's ``logs`` service, the job's streams written as SageMaker
writes them: which streams are a job's, the tail of a failed job (bounded, hosts named, the hosts
that logged last), following the whole log, and how each failure of CloudWatch Logs leaves the
adapter (botocore's Stubber stands in for the answers moto cannot give)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sagemaker_executor.adapters.joblogs import FIX_LOGS, JobLogs
from sagemaker_executor.domain.errors import OutageError, TransientError
from sagemaker_executor.domain.joblog import LOG_GROUP, TAIL_HOSTS, TAIL_LINES, LogEvent, Masker
from tests.builders import write_job_log

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

JOB = "job-1"


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def cw(aws: boto3.Session) -> CloudWatchLogsClient:
    return aws.client("logs")


@pytest.fixture
def logs(aws: boto3.Session) -> JobLogs:
    return JobLogs(aws, retry_attempts=1)


def now_ms() -> int:
    return int(time.time() * 1000)


# ------------------------------------------------------------------------------------------ streams


def test_no_log_group_yet_is_no_log(logs: JobLogs) -> None:
    assert logs.streams(JOB) == []
    tail = logs.tail(JOB, Masker())
    assert (tail.lines, tail.problem, tail.host_count) == ((), None, 0)


def test_a_jobs_streams_are_its_own_and_all_of_them(cw: CloudWatchLogsClient, logs: JobLogs) -> None:
    for host in range(1, 61):  # past DescribeLogStreams' page of 50: the paginator reads on
        write_job_log(cw, JOB, host, ["hello"])
    write_job_log(cw, "job-10", 1, ["another job's"])
    streams = logs.streams(JOB)
    assert len(streams) == 60
    assert {s.host for s in streams} == {f"algo-{n}" for n in range(1, 61)}
    assert all(s.name.startswith(f"{JOB}/algo-") for s in streams)


# --------------------------------------------------------------------------------------------- tail


def test_the_tail_is_the_last_lines_of_one_host(cw: CloudWatchLogsClient, logs: JobLogs) -> None:
    write_job_log(cw, JOB, 1, [f"step {i}" for i in range(500)])
    tail = logs.tail(JOB, Masker())
    assert [e.message for e in tail.lines] == [f"step {i}" for i in range(500 - TAIL_LINES, 500)]
    assert (tail.hosts, tail.host_count, tail.problem) == (("algo-1",), 1, None)


def test_the_tail_of_several_hosts_interleaves_them_by_time(cw: CloudWatchLogsClient, logs: JobLogs) -> None:
    start = now_ms() - 60_000
    write_job_log(cw, JOB, 1, ["1a", "1b"], start_ms=start, step_ms=10)
    write_job_log(cw, JOB, 2, ["2a", "2b"], start_ms=start + 5, step_ms=10)
    tail = logs.tail(JOB, Masker())
    assert [(e.host, e.message) for e in tail.lines] == [
        ("algo-1", "1a"),
        ("algo-2", "2a"),
        ("algo-1", "1b"),
        ("algo-2", "2b"),
    ]
    assert tail.hosts == ("algo-1", "algo-2") and tail.host_count == 2


def test_the_tail_reads_only_the_hosts_that_logged_last(cw: CloudWatchLogsClient, logs: JobLogs) -> None:
    late = now_ms() + 3_600_000  # later than any ingestion time of this test
    for host in range(1, 13):
        start = late + host if host > 12 - TAIL_HOSTS else now_ms() - 3_600_000
        write_job_log(cw, JOB, host, [f"host {host} says bye"], start_ms=start)
    tail = logs.tail(JOB, Masker())
    assert tail.host_count == 12
    assert tail.hosts == tuple(f"algo-{n}" for n in range(12 - TAIL_HOSTS + 1, 13))


def test_the_tail_is_masked(cw: CloudWatchLogsClient, logs: JobLogs) -> None:
    write_job_log(cw, JOB, 1, ["login with hunter2-long", "key AKIAIOSFODNN7EXAMPLE"])
    tail = logs.tail(JOB, Masker({"DB_PASSWORD": "hunter2-long"}))
    assert [e.message for e in tail.lines] == ["login with ***", "key ***"]


def test_the_budget_stops_reading_more_streams(aws: boto3.Session, cw: CloudWatchLogsClient) -> None:
    for host in range(1, 5):
        write_job_log(cw, JOB, host, [f"host {host}"])
    ticks = iter(range(0, 1000, 6))  # every look at the clock: 6 s later
    logs = JobLogs(aws, retry_attempts=1, clock=lambda: next(ticks))
    tail = logs.tail(JOB, Masker(), budget_s=10)
    assert len(tail.hosts) == 2
    assert tail.problem == "stopped after 2 of 4 streams: 10s spent"


# ------------------------------------------------------------------------------------------ failures


def stubbed(logs: JobLogs) -> Stubber:
    return Stubber(logs.boto_client)


def test_access_denied_is_an_outage_of_the_executors_own_set_up(logs: JobLogs) -> None:
    with stubbed(logs) as stub:
        stub.add_client_error(
            "describe_log_streams",
            "AccessDeniedException",
            "not authorized to perform logs:DescribeLogStreams",
        )
        with pytest.raises(OutageError) as caught:
            logs.tail(JOB, Masker())
    assert caught.value.fix == FIX_LOGS
    assert "AccessDeniedException" in str(caught.value)


def test_throttling_is_transient(logs: JobLogs) -> None:
    with stubbed(logs) as stub:
        stub.add_client_error("describe_log_streams", "ThrottlingException", "Rate exceeded", 400)
        with pytest.raises(TransientError):
            logs.streams(JOB)


def stream(host: int, last: int) -> dict[str, Any]:
    return {
        "logStreamName": f"{JOB}/algo-{host}-1700000000",
        "lastEventTimestamp": last,
        "lastIngestionTime": last,
    }


def test_a_failure_after_a_stream_was_read_keeps_what_was_read(logs: JobLogs) -> None:
    group = {"logGroupName": LOG_GROUP}
    with stubbed(logs) as stub:
        stub.add_response("describe_log_streams", {"logStreams": [stream(1, 2000), stream(2, 1000)]})
        stub.add_response(
            "get_log_events",
            {"events": [{"timestamp": 1, "message": "from algo-1"}], "nextForwardToken": "f/1"},
            {**group, "logStreamName": f"{JOB}/algo-1-1700000000", "startFromHead": False, "limit": 15},
        )
        stub.add_client_error("get_log_events", "ThrottlingException", "Rate exceeded", 400)
        tail = logs.tail(JOB, Masker())
    assert [e.message for e in tail.lines] == ["from algo-1"]
    assert tail.problem is not None and tail.problem.startswith("stopped after 1 of 2 streams: ")
    assert "ThrottlingException" in tail.problem


def test_a_stream_that_went_away_reads_as_empty(logs: JobLogs) -> None:
    with stubbed(logs) as stub:
        stub.add_response("describe_log_streams", {"logStreams": [stream(1, 2000)]})
        stub.add_client_error(
            "get_log_events", "ResourceNotFoundException", "The specified log stream does not exist."
        )
        tail = logs.tail(JOB, Masker())
    assert (tail.lines, tail.problem, tail.host_count) == ((), None, 1)


# ------------------------------------------------------------------------------------------- follow


def test_following_reads_every_host_interleaved_then_only_what_is_new(
    cw: CloudWatchLogsClient, logs: JobLogs
) -> None:
    start = now_ms() - 60_000
    write_job_log(cw, JOB, 1, ["1a", "1b"], start_ms=start, step_ms=10)
    follower = logs.follow(JOB, expected_hosts=2)
    assert [e.message for e in follower.read()] == ["1a", "1b"]
    assert follower.host_count == 1
    write_job_log(cw, JOB, 2, ["2a"], start_ms=start + 15)  # the second host starts logging late
    write_job_log(cw, JOB, 1, ["1c"], start_ms=start + 20)
    assert list(follower.read()) == [
        LogEvent("algo-2", start + 15, "2a"),
        LogEvent("algo-1", start + 20, "1c"),
    ]
    assert follower.host_count == 2
    assert list(follower.read()) == []


def test_following_a_log_of_many_pages(cw: CloudWatchLogsClient, logs: JobLogs) -> None:
    write_job_log(cw, JOB, 1, [f"line {i}" for i in range(25_000)], step_ms=1)  # GetLogEvents: 10,000 a page
    assert sum(1 for _ in logs.follow(JOB, 1).read()) == 25_000
