"""The CloudWatch Logs wrapper: training jobs' logs, read from ``/aws/sagemaker/TrainingJobs``.

Used by ``service.tracker`` (the last lines of a job that failed, read once: :meth:`JobLogs.tail`) and
by the ``logs`` client command (the whole log, interleaved across hosts and followed:
:meth:`JobLogs.follow`); ``app`` builds it. Where the streams are and what a tail keeps is
``domain.joblog``'s; this module only reads.

Two API calls, as the SageMaker SDK's ``logs_for_job`` makes them: ``DescribeLogStreams`` with the
prefix ``<job>/`` (through boto3's paginator) finds one stream per host, and ``GetLogEvents`` reads
one. botocore has no paginator for ``GetLogEvents``: reading forward follows ``nextForwardToken``
until it comes back unchanged (the end of the stream for now); the tail is one call per stream from
its end (``startFromHead=False``). A log group that does not exist yet (no job of the account has
logged in this region) or a stream that went away reads as no log; every other botocore error leaves
as one of ``domain.errors``' kinds (``adapters.aws.classify``), access denied as an outage of the
executor's own set-up with :data:`FIX_LOGS`.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sagemaker_executor.adapters.aws import classify, client, error_code
from sagemaker_executor.domain.errors import ExecutorError
from sagemaker_executor.domain.joblog import (
    LOG_GROUP,
    TAIL_HOSTS,
    LogEvent,
    LogTail,
    Masker,
    host_of,
    host_order,
    share,
    stream_prefix,
    tail_of,
)

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import OutputLogEventTypeDef

FIX_LOGS = (
    "grant the executor's identity logs:DescribeLogStreams and logs:GetLogEvents on the log group "
    f"{LOG_GROUP} (deploy/iam-policy.json)"
)
NOT_FOUND = "ResourceNotFoundException"
MAX_PAGES_PER_READ = 100
"""``GetLogEvents`` pages read from one stream by one :meth:`LogFollower.read` (up to 10,000 events or
1 MB each); a stream that says more is read on at the next call."""


@dataclass(frozen=True)
class LogStream:
    """One host's stream of a job: its name, the host it belongs to, when it last logged (ms)."""

    name: str
    host: str
    last_activity_ms: int


class JobLogs:
    """Reads training jobs' logs. ``call_timeout_s`` bounds each call's wait for an answer;
    ``clock`` (monotonic seconds) times :meth:`tail`'s budget."""

    def __init__(
        self,
        session: boto3.Session,
        retry_attempts: int,
        *,
        call_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client(session, "logs", retry_attempts, call_timeout_s)
        self._clock = clock

    @property
    def boto_client(self) -> CloudWatchLogsClient:
        return self._client

    def streams(self, job_name: str) -> list[LogStream]:
        """The job's streams, one per host (and one more per restart of a host); none yet: ``[]``."""
        what = "listing the job's log streams"
        try:
            pages = self._client.get_paginator("describe_log_streams").paginate(
                logGroupName=LOG_GROUP, logStreamNamePrefix=stream_prefix(job_name), orderBy="LogStreamName"
            )
            found = [stream for page in pages for stream in page.get("logStreams", [])]
        except ClientError as error:
            if error_code(error) == NOT_FOUND:
                return []
            raise classify(error, what, own=FIX_LOGS) from error
        except BotoCoreError as error:
            raise classify(error, what, own=FIX_LOGS) from error
        return [
            LogStream(
                name=str(stream["logStreamName"]),
                host=host_of(str(stream["logStreamName"]), job_name),
                last_activity_ms=max(
                    int(stream.get("lastIngestionTime") or 0), int(stream.get("lastEventTimestamp") or 0)
                ),
            )
            for stream in found
        ]

    def tail(self, job_name: str, masker: Masker, *, budget_s: float | None = None) -> LogTail:
        """The end of the job's log, bounded and masked as ``domain.joblog.tail_of`` says.

        Reads the streams of the :data:`~sagemaker_executor.domain.joblog.TAIL_HOSTS` hosts that
        logged last, one call each. Once ``budget_s`` has passed, or when a stream fails after some
        were read, the tail so far is returned with the ``problem``; a failure before any line was
        read raises (``domain.errors``).
        """
        started = self._clock()
        streams = self.streams(job_name)
        hosts = {stream.host for stream in streams}
        chosen = sorted(streams, key=lambda s: (-s.last_activity_ms, host_order(s.host)))[:TAIL_HOSTS]
        per_host: dict[str, list[LogEvent]] = {}
        problem = None
        for index, stream in enumerate(chosen):
            if budget_s is not None and index and self._clock() - started > budget_s:
                problem = f"stopped after {index} of {len(chosen)} streams: {budget_s:g}s spent"
                break
            try:
                events = self._last_events(stream, share(len(chosen)))
            except ExecutorError as error:
                if not per_host:
                    raise
                problem = f"stopped after {index} of {len(chosen)} streams: {error}"
                break
            per_host.setdefault(stream.host, []).extend(events)
        for events in per_host.values():
            events.sort(key=lambda event: event.timestamp_ms)
        return tail_of(job_name, per_host, len(hosts), masker, problem)

    def _last_events(self, stream: LogStream, limit: int) -> list[LogEvent]:
        try:
            page = self._client.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=stream.name, startFromHead=False, limit=limit
            )
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and error_code(error) == NOT_FOUND:
                return []
            raise classify(error, f"reading the log of {stream.host}", own=FIX_LOGS) from error
        return [_event(stream.host, item) for item in page.get("events", [])]

    def follow(self, job_name: str, expected_hosts: int | None = None) -> LogFollower:
        """A reader of the job's whole log, from its start, that goes on where it stopped.

        ``expected_hosts``: the job's instance count; streams are looked up again at each read until
        there are that many (hosts start logging at different moments).
        """
        return LogFollower(self, job_name, expected_hosts)

    def events_after(self, stream: LogStream, token: str | None) -> tuple[list[LogEvent], str | None]:
        """One ``GetLogEvents`` page of ``stream`` forward from ``token`` (its start when None), and
        the token to go on from; the same token back means the end for now. A gone stream: ``[]``."""
        kwargs: dict[str, Any] = {"nextToken": token} if token else {}
        try:
            page = self._client.get_log_events(
                logGroupName=LOG_GROUP, logStreamName=stream.name, startFromHead=True, **kwargs
            )
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and error_code(error) == NOT_FOUND:
                return [], token
            raise classify(error, f"reading the log of {stream.host}", own=FIX_LOGS) from error
        return [_event(stream.host, item) for item in page.get("events", [])], page.get("nextForwardToken")


class LogFollower:
    """The whole log of one job, read in steps: each :meth:`read` yields what was written since the
    previous one, every host's stream interleaved by time (as the SDK's ``logs_for_job`` prints it)."""

    def __init__(self, logs: JobLogs, job_name: str, expected_hosts: int | None) -> None:
        self._logs = logs
        self._job_name = job_name
        self._expected = expected_hosts
        self._streams: dict[str, LogStream] = {}
        self._tokens: dict[str, str | None] = {}

    @property
    def host_count(self) -> int:
        """Hosts whose streams were found so far."""
        return len({stream.host for stream in self._streams.values()})

    def read(self) -> Iterator[LogEvent]:
        """Everything new, oldest first; raises ``domain.errors`` kinds when CloudWatch Logs fails."""
        if self._expected is None or len(self._streams) < self._expected:
            for stream in self._logs.streams(self._job_name):
                if stream.name not in self._streams:
                    self._streams[stream.name] = stream
                    self._tokens[stream.name] = None
        readers = [self._new_events(self._streams[name]) for name in sorted(self._streams)]
        yield from heapq.merge(*readers, key=lambda event: event.timestamp_ms)

    def _new_events(self, stream: LogStream) -> Iterator[LogEvent]:
        for _ in range(MAX_PAGES_PER_READ):
            token = self._tokens[stream.name]
            events, following = self._logs.events_after(stream, token)
            self._tokens[stream.name] = following
            yield from events
            if following is None or following == token:
                return


def _event(host: str, item: OutputLogEventTypeDef) -> LogEvent:
    return LogEvent(host, int(item.get("timestamp") or 0), str(item.get("message", "")))
