"""Handling one ``FetcherBenchmarkEvent``: PENDING, create the training job, SUCCEEDED, executor event.

Called by ``service.attempts`` for records of ``CONSUMER_TOPIC`` whose envelope names an action and a
client. The sequence follows CONTRACT §5.1; what differs from the original is that every expected
failure ends as an ERROR status with a reason (never an escaped exception), and that a job which
already exists *for this action* counts as the success of an earlier attempt (Kafka redelivers after
a crash), so its SUCCEEDED status and executor event are published again instead of an ERROR.

Everything sent fits (``domain.limits``). Before PENDING, the two records a job will need are built
as they would be sent, with the longest job name SageMaker allows: the executor event (stamped) and
the job's tracking record for ``service.tracker`` (the executor event again, plus labels, dashboard,
region and the longest state), whether or not tracking is on. If either record (value, key and
kafka-python's record overhead) would be over ``max_request_bytes`` (``KAFKA_MAX_REQUEST_BYTES``), the
only answer is an ERROR naming the largest field: no PENDING, no job, so never SUCCEEDED and then
silence. An event whose ids are too long to answer under is raised as :class:`Unroutable`.

Before the source dir is built and anything is uploaded, the request the job will be created with is
checked against everything SageMaker would refuse (``domain.preflight``): such a submission ends as an
ERROR naming the descriptor field, event field or setting at fault, with no AWS call.
:func:`preflight_errors` runs the same checks for the ``submit`` client, before it uploads anything.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol, cast

from sagemaker_executor.domain import constraints, preflight, strictjson
from sagemaker_executor.domain.descriptor import check_sagemaker_support, parse_descriptor
from sagemaker_executor.domain.errors import JobAlreadyExists, JobNotFound, PermanentError, TransientError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent, Status, check_event_text, executor_event
from sagemaker_executor.domain.lifecycle import JobState
from sagemaker_executor.domain.limits import (
    DEFAULT_MAX_REQUEST_BYTES,
    EventTooLarge,
    largest_field,
    record_size,
    unanswerable,
)
from sagemaker_executor.domain.tracking import tracked_job
from sagemaker_executor.domain.translation import (
    TAG_ACTION_ID,
    ExecutorSite,
    TrainingJobSpec,
    routing,
    tag_value_for,
    translate,
)
from sagemaker_executor.logs import log_context
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.outcomes import EXPECTED_ERRORS, Unroutable, user_message

log = logging.getLogger(__name__)

ENGINE = "aws.sagemaker"
MSG_PENDING = "Processing benchmark submission request..."
MSG_SUCCEEDED = "Benchmark successfully created..."

# For sizing records before the job name and the job's state are known: the longest of each (the
# longest job name is the model's TrainingJobName maximum, read when first needed).
_LONGEST_PARTITION = 2**31 - 1  # Kafka partition numbers are int32
_LONGEST_MS = 10**13 - 1  # epoch milliseconds have 13 digits until the year 2286
_LONGEST_STATUS = "x" * 64  # SageMaker's (secondary) status names: 24 characters at most so far


class SubmissionOutcome(Enum):
    IGNORED = "ignored"
    SUBMITTED = "submitted"
    ALREADY_SUBMITTED = "already-submitted"
    ERROR = "error"


@dataclass(frozen=True)
class SubmissionResult:
    outcome: SubmissionOutcome
    executor_event: dict[str, Any] | None = None  # set when a job exists for the action

    @property
    def value(self) -> str:
        return self.outcome.value


class TrainingJobs(Protocol):
    def create(self, spec: TrainingJobSpec, source_dir: Path | None) -> None: ...
    def describe(self, job_name: str) -> dict[str, Any]: ...
    def tags(self, job_arn: str) -> dict[str, str]: ...


class Scripts(Protocol):
    def fetch(self, uri: str, max_bytes: int) -> IO[bytes]: ...


class SourceDirs(Protocol):
    """Where a job's source directory is assembled on local disk from its untrusted script archives
    (the module ``adapters.sourcedir`` is one: ``sources=sourcedir``)."""

    def private_workdir(self, root: Path, prefix: str) -> AbstractContextManager[Path]: ...

    def build_source_dir(
        self,
        dest: Path,
        archives: Iterable[tuple[str, BinaryIO]],
        entry_files: Mapping[str, str],
        requirements: Sequence[str],
        max_total_bytes: int,
        scripts_dir: str = "",
    ) -> None: ...


@dataclass(frozen=True)
class SubmissionSettings:
    site: ExecutorSite
    producer_topic: str
    tmp_sources_dir: str
    max_script_bytes: int
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # the Kafka producer's max.request.size
    tracking: bool = True  # jobs are tracked (WATCH_JOBS): their tracking record must fit too


class SubmissionHandler:
    def __init__(
        self,
        jobs: TrainingJobs,
        scripts: Scripts,
        emitter: StatusEmitter,
        settings: SubmissionSettings,
        *,
        sources: SourceDirs,
    ) -> None:
        self._jobs = jobs
        self._scripts = scripts
        self._sources = sources
        self._emitter = emitter
        self._settings = settings

    def handle(self, raw: Mapping[str, Any], *, retry: bool = False) -> SubmissionResult:
        """Handle one event. ``retry``: an earlier attempt already said PENDING for this very record.

        Raises :class:`Unroutable` when the record carries no descriptor to route by or cannot be
        answered, and lets :class:`~sagemaker_executor.domain.errors.TransientError` through for the
        loop to retry.
        """
        contents = _descriptor_contents(raw)
        engine, scheduling = routing(contents)
        if scheduling != "single_run" or engine != ENGINE:
            log.debug(
                "ignoring action %s: engine %r, scheduling %r", raw.get("action_id"), engine, scheduling
            )
            return SubmissionResult(SubmissionOutcome.IGNORED)
        problem = unanswerable(raw)
        if problem is not None:
            raise Unroutable(problem)
        try:
            self._check_fits(raw)
        except EventTooLarge as error:
            return self._reject(raw, error)
        if not retry:
            self._emitter.status(raw, Status.PENDING, MSG_PENDING)
        try:
            spec = planned_job(raw, self._settings.site)
            outcome = self._create(spec)
        except EXPECTED_ERRORS as error:
            return self._reject(raw, error)
        outgoing = executor_event(raw, spec.job_name)
        self._emitter.status(raw, Status.SUCCEEDED, MSG_SUCCEEDED, src_event=outgoing)
        self._emitter.send(outgoing, self._settings.producer_topic)
        return SubmissionResult(outcome, outgoing)

    def _reject(self, raw: Mapping[str, Any], error: BaseException) -> SubmissionResult:
        message = user_message(error)
        log.warning("action %s rejected: %s", raw.get("action_id"), message)
        self._emitter.status(raw, Status.ERROR, message)
        return SubmissionResult(SubmissionOutcome.ERROR)

    def _check_fits(self, raw: Mapping[str, Any]) -> None:
        """Raises :class:`EventTooLarge`, naming ``raw``'s largest field, if the executor event or the
        tracking record of a job for ``raw`` would be a record over ``max_request_bytes``."""
        longest_name = "x" * (constraints.shape_limits(constraints.TRAINING_JOB_NAME)[1] or 0)
        outgoing = executor_event(raw, longest_name)
        sizes = {
            "executor event": record_size(
                str(raw["client_id"]), self._emitter.encoded(outgoing, self._settings.producer_topic)
            )
        }
        tracking = _tracking_record(outgoing) if self._settings.tracking else None
        if tracking is not None:
            sizes["tracking record"] = record_size(longest_name, tracking)
        what, size = max(sizes.items(), key=lambda item: item[1])
        limit = self._settings.max_request_bytes
        if size > limit:
            field, field_size = largest_field(outgoing)
            log.info("action %s: its %s would be %d bytes", raw.get("action_id"), what, size)
            raise EventTooLarge(size, limit, field, field_size)

    def _create(self, spec: TrainingJobSpec) -> SubmissionOutcome:
        with log_context(job_name=spec.job_name):
            return self._create_job(spec)

    def _create_job(self, spec: TrainingJobSpec) -> SubmissionOutcome:
        try:
            with self._source_dir(spec) as source_dir:
                self._jobs.create(spec, source_dir)
            log.info("created training job %s for action %s", spec.job_name, spec.action_id)
            return SubmissionOutcome.SUBMITTED
        except JobAlreadyExists:
            return self._adopt_existing(spec)

    def _adopt_existing(self, spec: TrainingJobSpec) -> SubmissionOutcome:
        """The name is taken: ours from an earlier attempt (redelivery), or somebody else's job."""
        try:
            job = self._jobs.describe(spec.job_name)
        except JobNotFound as error:  # SageMaker's reads may lag its writes: ask again later
            raise TransientError(
                f"training job {spec.job_name} exists but cannot be described yet"
            ) from error
        owner = self._jobs.tags(job["TrainingJobArn"]).get(TAG_ACTION_ID)
        if owner == tag_value_for(spec.action_id):
            log.info("training job %s already exists for action %s: earlier attempt", spec.job_name, owner)
            return SubmissionOutcome.ALREADY_SUBMITTED
        whose = f"benchmark {owner}" if owner else "a job this service did not create"
        raise PermanentError(
            f"Benchmark creation failed. A SageMaker training job named {spec.job_name!r} already exists "
            f"(it belongs to {whose}) and job names can never be reused: choose another "
            "custom_params.sagemaker_job_name, or leave it out to use the action id."
        )

    @contextlib.contextmanager
    def _source_dir(self, spec: TrainingJobSpec) -> Iterator[Path | None]:
        """The job's source directory, assembled in a private temporary directory and removed after."""
        if not spec.has_source:
            yield None
            return
        with self._sources.private_workdir(
            Path(self._settings.tmp_sources_dir), f"{spec.job_name}-"
        ) as workdir:
            source_dir = workdir / "source"
            with contextlib.ExitStack() as opened:

                def archives() -> Iterator[tuple[str, BinaryIO]]:
                    for uri in spec.script_uris:
                        fileobj = opened.enter_context(
                            self._scripts.fetch(uri, self._settings.max_script_bytes)
                        )
                        yield uri.rsplit("/", 1)[-1], cast(BinaryIO, fileobj)

                self._sources.build_source_dir(
                    source_dir,
                    archives(),
                    spec.entry_files,
                    spec.requirements,
                    max_total_bytes=self._settings.max_script_bytes,
                    scripts_dir=spec.scripts_dir,
                )
            yield source_dir


def planned_job(raw: Mapping[str, Any], site: ExecutorSite) -> TrainingJobSpec:
    """The training job a submission asks for, once everything about it has been checked: the event,
    its descriptor, SageMaker support, translation, and the final request (``domain.preflight``).

    Raises one of ``service.outcomes.EXPECTED_ERRORS`` (``PermanentError`` kinds, pydantic's
    ``ValidationError``), whose ``user_message`` is the ERROR status a user reads. No I/O.
    """
    contents = _descriptor_contents(raw)
    event = FetcherBenchmarkEvent.model_validate(raw)
    descriptor = parse_descriptor(contents)
    check_event_text(raw)
    check_sagemaker_support(descriptor)
    spec = translate(descriptor, event, site)
    preflight.check(spec, event, site.region)
    return spec


def preflight_errors(raw: Mapping[str, Any], site: ExecutorSite) -> list[str]:
    """What the executor would answer a ``FetcherBenchmarkEvent`` with, checked before anything is sent:
    the ERROR messages (``Cannot process the request: descriptor field '...': ...``), one per problem,
    or ``[]`` when the job can be created. The same checks as :meth:`SubmissionHandler.handle` makes
    before it builds the source dir (what only SageMaker knows, such as quotas or a job name already
    taken, is not known here). For ``sagemaker-executor submit``, before it uploads anything; ``site``
    is the executor's configuration (``role_arn`` an ARN). Raises :class:`Unroutable` when the event has
    no descriptor. No I/O.
    """
    try:
        planned_job(raw, site)
    except preflight.PreflightError as error:
        return [user_message(preflight.PreflightError([problem])) for problem in error.problems]
    except EXPECTED_ERRORS as error:
        return [user_message(error)]
    return []


def _tracking_record(outgoing: Mapping[str, Any]) -> bytes | None:
    """The job's largest tracking record (``service.tracker``) as the publisher would send it.

    None when the descriptor's ``info.labels`` or ``custom_params`` are not tables: validation rejects
    such a descriptor before any job exists, so no tracking record will be sent.
    """
    try:
        job = tracked_job(outgoing, _LONGEST_PARTITION, _LONGEST_MS)
    except (AttributeError, TypeError):
        return None
    job = job.with_reported(JobState(job.job_name, _LONGEST_STATUS, _LONGEST_STATUS))
    return strictjson.encode(job.to_json())


def _descriptor_contents(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    payload = raw.get("payload")
    toml = payload.get("toml") if isinstance(payload, Mapping) else None
    contents = toml.get("contents") if isinstance(toml, Mapping) else None
    if not isinstance(contents, Mapping):
        raise Unroutable("payload.toml.contents is missing or not an object: no descriptor to route by")
    return contents
