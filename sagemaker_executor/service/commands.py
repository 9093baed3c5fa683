"""Handling ``CMD_SUBMIT`` commands; ``cancel`` is the only one an executor answers (CONTRACT §5.2).

Called by ``service.attempts`` for records of ``CMD_SUBMIT_TOPIC``. The job is found by
:func:`find_action_job`, the one rule for an action's job (the ``logs`` client command uses it too):
by the name derived from the target action (the default name), else by the ``anubis-action-id`` tag
every job of ours carries -- so a job with a custom ``sagemaker_job_name`` is found too (the original
could not, §10.7). A job tagged with another client's id is treated as not found: a client cancels
only its own benchmarks. Untagged jobs (created by the original service) are found by name as before.

A command whose ``action_id`` or ``client_id`` is too long to answer under (``domain.limits``) is
raised as :class:`~sagemaker_executor.service.outcomes.Unroutable`, for the loop to dead-letter; a
``target_action_id`` that long is invalid args (no action has such an id).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from sagemaker_executor.domain.errors import JobNotFound, PermanentError
from sagemaker_executor.domain.events import CommandRequestEvent, Status, check_event_text
from sagemaker_executor.domain.limits import id_problem, unanswerable
from sagemaker_executor.domain.translation import TAG_ACTION_ID, TAG_CLIENT_ID, job_name_for, tag_value_for
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.outcomes import Unroutable, describe_validation_error

log = logging.getLogger(__name__)

RC_OK, RC_FAILED, RC_INVALID_ARGS = 0, 1, 2
MSG_CANCELLED = "Execution successfully cancelled..."
MSG_OK = "Cancel command processed successfully"


class ActionJobs(Protocol):
    def describe(self, job_name: str) -> dict[str, Any]: ...
    def tags(self, job_arn: str) -> dict[str, str]: ...
    def find_by_tag(self, key: str, value: str) -> list[str]: ...


class CancellableJobs(ActionJobs, Protocol):
    def stop(self, job_name: str) -> None: ...


def find_action_job(jobs: ActionJobs, target: str, client_id: str) -> dict[str, Any]:
    """The job of action ``target`` (its ``DescribeTrainingJob``); :class:`JobNotFound` if it has none
    that ``client_id`` may touch.

    Ids are compared as the executor's tags hold them (``translation.tag_value_for``: as is, or
    encoded when SageMaker would not take them as tag values).
    """
    action_tag, client_tag = tag_value_for(target), tag_value_for(client_id)
    try:
        job = jobs.describe(job_name_for(target))
        tags = jobs.tags(job["TrainingJobArn"])
        if (
            tags.get(TAG_ACTION_ID, action_tag) == action_tag
            and tags.get(TAG_CLIENT_ID, client_tag) == client_tag
        ):
            return job
    except JobNotFound:
        pass
    for name in jobs.find_by_tag(TAG_ACTION_ID, action_tag):
        job = jobs.describe(name)
        if jobs.tags(job["TrainingJobArn"]).get(TAG_CLIENT_ID) == client_tag:
            return job
    raise JobNotFound(target)


class CommandHandler:
    def __init__(self, jobs: CancellableJobs, emitter: StatusEmitter, cmd_return_topic: str) -> None:
        self._jobs = jobs
        self._emitter = emitter
        self._return_topic = cmd_return_topic

    def handle(self, raw: Mapping[str, Any]) -> str:
        """Handle one command; returns what happened, for logs and metrics.

        Raises :class:`Unroutable` for a cancel that cannot be answered (its ids are too long).
        """
        payload = raw.get("payload")
        command = payload.get("command") if isinstance(payload, Mapping) else None
        if command != "cancel":
            log.debug("ignoring command %r of action %s", command, raw.get("action_id"))
            return "ignored"
        problem = unanswerable(raw)
        if problem is not None:
            raise Unroutable(problem)
        try:
            event = CommandRequestEvent.model_validate(raw)
            check_event_text(raw)
            target = _cancel_target(event.payload.args)
        except (ValidationError, ValueError) as error:
            reason = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
            self._respond(raw, RC_INVALID_ARGS, f"Cancel command failed: Invalid args {reason}")
            return "invalid"
        return self._cancel(raw, target, event.client_id)

    def _cancel(self, raw: Mapping[str, Any], target: str, client_id: str) -> str:
        try:
            job = find_action_job(self._jobs, target, client_id)
        except JobNotFound:
            self._respond(raw, RC_FAILED, f"Cancel command failed: No resources found for '{target}'")
            return "not-found"
        except PermanentError as error:
            return self._failed(raw, target, error)
        name, status = job["TrainingJobName"], job["TrainingJobStatus"]
        if status == "InProgress":
            try:
                self._jobs.stop(name)
            except JobNotFound:
                self._respond(raw, RC_FAILED, f"Cancel command failed: No resources found for '{target}'")
                return "not-found"
            except PermanentError as error:
                return self._failed(raw, target, error)
            message = MSG_CANCELLED
        elif status == "Stopping":
            message = MSG_CANCELLED
        else:
            message = f"Nothing to cancel: training job {name} has already ended ({status})"
        log.info("cancel of action %s: job %s was %s", target, name, status)
        self._emitter.status(raw, Status.SUCCEEDED, message, target_action_id=target)
        self._respond(raw, RC_OK, MSG_OK)
        return "cancelled"

    def _failed(self, raw: Mapping[str, Any], target: str, error: Exception) -> str:
        log.warning("cancel of action %s failed: %s", target, error)
        self._emitter.status(
            raw,
            Status.FAILED,
            f"An error occurred when attempting to delete resources related to {target}. Please check "
            f"the status of the deletion command ({raw.get('action_id')} for additional information.",
            target_action_id=target,
        )
        self._respond(raw, RC_FAILED, f"Cancel command failed: {error}")
        return "failed"

    def _respond(self, raw: Mapping[str, Any], code: int, message: str) -> None:
        self._emitter.respond(raw, code, message, self._return_topic)


def _cancel_target(args: Any) -> str:
    """``target_action_id`` from object args (keywords) or array args (positional).

    ``cascade`` (``anubis --purge``: cancel a scheduled benchmark's runs too) is checked and has
    nothing to act on here: scheduled benchmarks are the Kubernetes executor's (CONTRACT §5.1)."""
    if isinstance(args, Mapping):
        unknown = set(args) - {"target_action_id", "cascade"}
        if unknown:
            raise ValueError(f"cancel() got unexpected arguments {sorted(unknown)}")
        target, cascade = args.get("target_action_id"), args.get("cascade", False)
    elif isinstance(args, list) and 1 <= len(args) <= 2:
        target, cascade = args[0], (args[1] if len(args) == 2 else False)
    else:
        raise ValueError("cancel() needs target_action_id")
    if not isinstance(target, str) or not target:
        raise ValueError("target_action_id must be a non-empty string")
    problem = id_problem("target_action_id", target)
    if problem is not None:
        raise ValueError(f"{problem}: no action has such an id")
    if not isinstance(cascade, bool):
        raise ValueError("cascade must be true or false")
    return target
