"""What the events of one action mean to the person who submitted it: a lifecycle read from the wire.

Pure: events in, :class:`Change` lines and an :class:`End` out; the clock is a parameter. The commands
in ``client.commands`` feed every status event (and command response) they read; ``client.view``
prints the changes.

The status topic says ``SUCCEEDED`` for three different things (the job was created, the job
finished, a cancel was accepted) and ``FAILED`` for two (the job failed, a cancel failed); job
tracking says ``RUNNING`` while a job is stopping. The printed lifecycle names what happened instead:
``received``, ``job created``, ``starting``, ``training``, ``job finished``, ``metrics``;
``cancel requested``, ``stopping``, ``job cancelled``. The raw status stays beside it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Literal

from sagemaker_executor import SERVICE_NAME
from sagemaker_executor.domain.events import Status
from sagemaker_executor.service.attempts import MSG_WAITING_FOR_CAPACITY
from sagemaker_executor.service.commands import MSG_CANCELLED
from sagemaker_executor.service.submission import MSG_PENDING

Until = Literal["created", "ended"]
# After a job's end, how long to wait for its METRICS AVAILABLE (tracking sends it right after the end,
# and only when the job reported metrics).
METRICS_GRACE_MS = 3000
NOT_FOUND_PREFIX = "Cancel command failed: No resources found"
_FINISHED_PREFIX = "Benchmark finished"
_NOTHING_TO_CANCEL_PREFIX = "Nothing to cancel"
_WAITING_PREFIX = MSG_WAITING_FOR_CAPACITY.split("(")[0].strip()
_METRICS_PREFIX = "Metrics available: "
# Job tracking's messages end with "(training job NAME: Status/SecondaryStatus)" (domain.lifecycle).
_TRACKED = re.compile(
    r"\(training job (?P<job>[^\s:]+): (?P<status>[A-Za-z]+)(?:/(?P<secondary>[A-Za-z]*))?\)"
)
_STEPS = {
    "Starting": "starting",
    "Pending": "waiting for capacity",
    "LaunchingMLInstances": "launching instances",
    "PreparingTrainingStack": "preparing",
    "Downloading": "downloading data",
    "DownloadingTrainingImage": "downloading image",
    "Training": "training",
    "Uploading": "uploading output",
    "Stopping": "stopping",
    "Restarting": "restarting",
    "Updating": "updating",
}


class Tone(StrEnum):
    """How a change reads: the terminal view colours by it."""

    INFO = "info"
    GOOD = "good"
    WARN = "warn"
    BAD = "bad"


class End(Enum):
    """How following an action ended."""

    CREATED = "job created"
    REFUSED = "refused"
    FINISHED = "job finished"
    FAILED = "job failed"
    CANCELLED = "job cancelled"
    ALREADY_ENDED = "already ended"


@dataclass(frozen=True)
class Change:
    """One line of the lifecycle: ``event`` names what happened, ``status`` is what the wire said."""

    action_id: str
    time_ms: int | None
    event: str
    detail: str
    status: str
    tone: Tone
    lines: tuple[str, ...] = ()  # what the message says below its first line (a failed job's log)


# How a status line becomes a Change: the event's name, its detail, its tone.
_MakeChange = Callable[[str, str, Tone], Change]
# The statuses that end a job, with how it ended and how that reads.
_ENDS: dict[str, tuple[End, str, Tone]] = {
    Status.FAILED: (End.FAILED, "job failed", Tone.BAD),
    Status.CANCELED: (End.CANCELLED, "job cancelled", Tone.WARN),
}


@dataclass(frozen=True)
class Answer:
    """A ``CMD_RETURN``: which service answered the cancel, with what code and message."""

    service: str
    code: int
    message: str

    @property
    def not_found(self) -> bool:
        return self.code != 0 and self.message.startswith(NOT_FOUND_PREFIX)


@dataclass
class Timeline:
    """The state of ``action_id`` (and of the cancel command ``command_id``) from the events fed in."""

    action_id: str
    command_id: str | None = None
    job_name: str | None = None
    created: bool = False
    refused: bool = False
    ended: End | None = None
    ended_ms: int | None = None
    metrics: bool = False
    cancel_failed: bool = False
    statuses: int = 0  # status events about the action (command responses aside)
    answers: list[Answer] = field(default_factory=list)
    last: Change | None = None
    _seen: set[tuple[str, str, str]] = field(default_factory=set)

    def feed(self, event: Mapping[str, Any], *, response: bool, now_ms: int) -> Change | None:
        """The change ``event`` brings, or None (another action's, a repeat, unreadable).

        ``response``: the event came from the command-response topic (``CMD_RETURN``).
        """
        if not isinstance(event, Mapping) or not isinstance(event.get("payload"), Mapping):
            return None
        change = self._response(event) if response else self._status(event, now_ms)
        if change is None:
            return None
        key = (change.action_id, change.status, change.detail)
        if key in self._seen:  # a redelivered record publishes its status again
            return None
        self._seen.add(key)
        if not response:
            self.statuses += 1
        self.last = change
        return change

    def end(self, until: Until, now_ms: int) -> End | None:
        """How following ends now, or None to go on: at the job's creation (``until="created"``) or
        once the job ended and its metrics came (or :data:`METRICS_GRACE_MS` passed without them)."""
        if self.refused:
            return End.REFUSED
        if until == "created":
            return End.CREATED if self.created or self.ended is not None else None
        if self.ended is None:
            return None
        if self.metrics or self.ended is End.ALREADY_ENDED:
            return self.ended
        ended_ms = self.ended_ms if self.ended_ms is not None else now_ms
        return self.ended if now_ms - ended_ms >= METRICS_GRACE_MS else None

    # ------------------------------------------------------------------------------------------------

    def _response(self, event: Mapping[str, Any]) -> Change | None:
        payload = event["payload"]
        command = payload.get("cmd_submit") if isinstance(payload.get("cmd_submit"), Mapping) else {}
        args = (
            (command.get("payload") or {}).get("args") if isinstance(command.get("payload"), Mapping) else {}
        )
        target = args.get("target_action_id") if isinstance(args, Mapping) else None
        mine = self.command_id is not None and event.get("action_id") == self.command_id
        if not mine and target != self.action_id:
            return None
        code = payload.get("return_code")
        code = code if isinstance(code, int) else -1
        answer = Answer(_service(event), code, str(payload.get("message")))
        if mine:
            self.answers.append(answer)
        tone = Tone.GOOD if code == 0 else Tone.WARN if answer.not_found else Tone.BAD
        return Change(
            self.action_id,
            _time(event),
            "cancel answered",
            f"{answer.service}: {answer.message}",
            f"CMD_RETURN {code}",
            tone,
        )

    def _status(self, event: Mapping[str, Any], now_ms: int) -> Change | None:
        if event.get("action_id") != self.action_id:
            return None
        payload = event["payload"]
        # The first line is the status; a FAILED job's message goes on with the end of its log.
        status, (message, *more) = str(payload.get("status")), str(payload.get("message")).split("\n")
        service = _service(event)
        src = payload.get("src_event") if isinstance(payload.get("src_event"), Mapping) else {}
        about_cancel = isinstance(src.get("payload"), Mapping) and "command" in src["payload"]
        tracked = _TRACKED.search(message)
        if tracked and self.job_name is None:
            self.job_name = tracked["job"]

        def change(name: str, detail: str, tone: Tone) -> Change:
            return Change(self.action_id, _time(event), name, detail, status, tone, tuple(more))

        if service not in (SERVICE_NAME, "?"):  # the BFF's, the fetcher's: their words, as they are
            return change(status.lower(), f"{service}: {message}", Tone.INFO)
        if about_cancel and status in (Status.SUCCEEDED, Status.FAILED):
            return self._cancel_status(status, message, event, now_ms, change)
        return self._job_status(status, message, src, tracked, event, now_ms, change)

    def _cancel_status(
        self, status: str, message: str, event: Mapping[str, Any], now_ms: int, change: _MakeChange
    ) -> Change:
        """An executor's status about a cancel command (SUCCEEDED or FAILED)."""
        if status == Status.FAILED:
            self.cancel_failed = True
            return change("cancel failed", message, Tone.BAD)
        if message.startswith(_NOTHING_TO_CANCEL_PREFIX):
            self._ended(End.ALREADY_ENDED, event, now_ms)
            return change("nothing to cancel", message, Tone.INFO)
        return change(
            "cancel requested",
            message if message != MSG_CANCELLED else "the job is being stopped",
            Tone.WARN,
        )

    def _job_status(
        self,
        status: str,
        message: str,
        src: Mapping[str, Any],
        tracked: re.Match[str] | None,
        event: Mapping[str, Any],
        now_ms: int,
        change: _MakeChange,
    ) -> Change:
        """An executor's status about the submission and its training job."""
        if status == Status.SUCCEEDED and message.startswith(_FINISHED_PREFIX):
            self._ended(End.FINISHED, event, now_ms)
            return change("job finished", message.removeprefix(_FINISHED_PREFIX).lstrip(": "), Tone.GOOD)
        if status == Status.SUCCEEDED:
            self.created = True
            job = _job_id(src)
            self.job_name = job or self.job_name
            return change("job created", f"training job {job}" if job else message, Tone.GOOD)
        if status == Status.ERROR:
            self.refused = True
            return change("refused", message, Tone.BAD)
        if status in _ENDS:
            self._ended(_ENDS[status][0], event, now_ms)
            return change(_ENDS[status][1], message, _ENDS[status][2])
        if status == Status.METRICS_AVAILABLE:
            self.metrics = True
            return change("metrics", message.removeprefix(_METRICS_PREFIX), Tone.GOOD)
        if status == Status.PENDING and message == MSG_PENDING:
            return change("received", "the executor is preparing the training job", Tone.INFO)
        if status == Status.PENDING and message.startswith(_WAITING_PREFIX):
            return change("waiting for capacity", message, Tone.WARN)
        if tracked:
            secondary = tracked["secondary"] or tracked["status"]
            return change(_STEPS.get(secondary, _words(secondary)), message, Tone.INFO)
        return change(status.lower(), message, Tone.INFO)

    def _ended(self, how: End, event: Mapping[str, Any], now_ms: int) -> None:
        if self.ended is None:
            self.ended = how
            self.ended_ms = _time(event) or now_ms


def _service(event: Mapping[str, Any]) -> str:
    visited = event.get("visited")
    last = visited[-1] if isinstance(visited, list) and visited else None
    return str(last.get("svc")) if isinstance(last, Mapping) and last.get("svc") else "?"


def _time(event: Mapping[str, Any]) -> int | None:
    stamp = event.get("tstamp")
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None


def _job_id(src: Mapping[str, Any]) -> str | None:
    payload = src.get("payload")
    job = payload.get("job") if isinstance(payload, Mapping) else None
    name = job.get("id") if isinstance(job, Mapping) else None
    return name if isinstance(name, str) else None


def _words(camel: str) -> str:
    """``LaunchingMLInstances`` -> ``launching ml instances``: a status SageMaker adds later, readable."""
    return " ".join(re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", camel)).lower() or camel.lower()
