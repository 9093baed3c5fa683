"""The few error kinds the executor distinguishes, and nothing else.

* :class:`PermanentError` -- retrying cannot help: a bad descriptor, a name clash, access denied. The
  message is written for the user and ends up in an ERROR status.
* :class:`TransientError` -- throttling, 5xx: worth retrying with backoff, for a while;
  :class:`CapacityError` is the kind that waits for a quota and says so to the user.
* :class:`OutageError` -- the executor's own set-up fails (its credentials, its bucket or role, AWS or
  the broker unreachable): nothing is wrong with the benchmark, so it is never answered with ERROR.
  Retried without giving up while fetching pauses and ``/readyz`` says why.
  :class:`KafkaOutage` is the brokers' kind; :class:`PublishError` and :class:`CommitError` say
  which of the loop's steps was not acknowledged.
* :class:`JobAlreadyExists` / :class:`JobNotFound` -- answers from SageMaker that the service turns
  into outcomes of their own (an earlier attempt succeeded; there is nothing to cancel).

Adapters raise these (mapping botocore's errors in one place each); ``service.outcomes`` maps them to
statuses. :class:`DescriptorError` is the :class:`PermanentError` that names a descriptor field: the
descriptor model, translation, the entry files and the bootstrap all raise it.
"""

from __future__ import annotations


class ExecutorError(Exception):
    """Base of every error the service expects and handles."""


class PermanentError(ExecutorError):
    """Retrying will not help; the message is shown to the user."""


class DescriptorError(PermanentError, ValueError):
    """A descriptor the executor will not run, naming the field. Permanent: report it, never retry."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"descriptor field '{field}': {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[DescriptorError], tuple[str, str]]:
        return (DescriptorError, (self.field, self.reason))


class ScriptRejected(PermanentError):
    """A benchmark's script archive was refused (unsafe, too large, not a readable tar)."""


class TransientError(ExecutorError):
    """A temporary failure of a dependency (throttling, 5xx, connection): retried with backoff."""


class CapacityError(TransientError):
    """An account quota is used up (``ResourceLimitExceeded``): wait for capacity, and tell the user."""


class OutageError(TransientError):
    """The executor's own identity or set-up fails; the record waits for the operators' fix.

    ``dependency`` names what is out (``"aws"``, ``"kafka"``, ``"disk"``): it labels the readiness
    reason and the ``sm_executor_outage`` metric. ``fix`` says what an operator should do about it.
    """

    def __init__(self, dependency: str, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.dependency = dependency
        self.fix = fix


FIX_BROKER = "check that the brokers in KAFKA_BOOTSTRAP_SERVERS are up and reachable from the pod"


class KafkaOutage(OutageError):
    """The broker does not answer: an outage of the executor's own set-up (``dependency="kafka"``)."""

    def __init__(self, message: str) -> None:
        super().__init__("kafka", message, FIX_BROKER)


class PublishError(KafkaOutage):
    """A record could not be acknowledged by the broker; the input must not be committed."""


class CommitError(KafkaOutage):
    """An offset commit was not acknowledged; the offsets are committed again later."""


class JobAlreadyExists(ExecutorError):
    """SageMaker answered ``ResourceInUse``: a training job with this name exists already."""

    def __init__(self, job_name: str, message: str = "") -> None:
        super().__init__(message or f"training job {job_name!r} already exists")
        self.job_name = job_name


class JobNotFound(ExecutorError):
    """SageMaker knows no training job by this name."""

    def __init__(self, job_name: str) -> None:
        super().__init__(f"training job {job_name!r} not found")
        self.job_name = job_name
