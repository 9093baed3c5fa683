"""``submit``, ``cancel`` and ``status``: what each client command does, step by step.

Called by ``cli`` with the settings and the parsed options; each returns an
:class:`~sagemaker_executor.client.errors.ExitCode` or raises ``ClientError``. The order is the point:

* ``submit`` reads and checks everything local first (the file, TOML, routing, the service's own
  validation and :func:`~sagemaker_executor.client.checks._preflight`, the ``--script`` path, AWS
  credentials), then asks the brokers (reachable? topics there?), and only then uploads the script and
  publishes. With ``--follow`` it reads the status topic from before the publish, so nothing is missed,
  and follows to the job's end and metrics (``--until created`` stops at the job's creation).
* ``cancel`` publishes the command and waits for the executors' answers: one that stopped the job wins;
  if every answer says "No resources found" the action has no job to stop (``NOT_FOUND``).
* ``status`` reads the action's history from the start of the status topic, says where it stands
  (and what SageMaker says, when the job exists), and with ``--follow`` goes on to the end.

Ctrl-C while following leaves the benchmark running and prints how to re-attach (exit 130).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sagemaker_executor.client.checks import check_routing, check_submission, read_descriptor, read_scripts
from sagemaker_executor.client.errors import ClientError, ExitCode
from sagemaker_executor.client.events import cancel_event, default_client_id, fetcher_event
from sagemaker_executor.client.timeline import End, Timeline, Until
from sagemaker_executor.client.topics import Brokers
from sagemaker_executor.client.upload import PREFIX, scripts_session, upload_scripts
from sagemaker_executor.client.view import View
from sagemaker_executor.config import Settings

POLL_MS = 500
CANCEL_ANSWER_TIMEOUT_S = 60.0  # cancel without --timeout: how long to wait for any executor's answer
CANCEL_SETTLE_S = 3.0  # after a "No resources found", how long another executor may take to say it stopped it
QUIET_HINT_S = 30.0  # no answer this long after a submit: say what may be wrong (once)
_ENDED_OK = {End.CREATED, End.FINISHED, End.ALREADY_ENDED}


@dataclass(frozen=True)
class ClientOptions:
    """What every client command takes besides the settings."""

    client_id: str | None
    timeout_s: float | None  # None: no limit while the action is alive
    connect_timeout_s: float

    @property
    def client(self) -> str:
        return self.client_id or default_client_id()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _reattach(action_id: str) -> str:
    return (
        f"the benchmark goes on. Re-attach with: sagemaker-executor status {action_id} --follow "
        f"(stop it with: sagemaker-executor cancel {action_id})"
    )


def submit(
    settings: Settings,
    options: ClientOptions,
    descriptor_path: Path,
    script: Path | None,
    *,
    follow: bool,
    until: Until,
    check: bool,
    view: View,
) -> ExitCode:
    """Check, upload ``script``, publish ``descriptor_path``; with ``follow``, follow it to ``until``."""
    descriptor = read_descriptor(descriptor_path)
    if check:
        check_routing(descriptor)
    scripts = read_scripts(script) if script is not None else None
    session = scripts_session(settings) if scripts is not None else None
    script_uri = f"s3://{settings.scripts_exchange_s3_bucket_name}/{PREFIX}/{scripts[0]}" if scripts else None
    event = fetcher_event(descriptor, options.client, settings.consumer_topic, script_uri)
    if check:
        check_submission(descriptor, event, settings)
    if follow and not settings.status_topic:
        raise ClientError(ExitCode.USAGE, "--follow needs STATUS_TOPIC (--status-topic), which is empty")

    brokers = Brokers(settings, options.connect_timeout_s)
    try:
        brokers.require({"CONSUMER_TOPIC": settings.consumer_topic})
        if follow:
            brokers.require({"STATUS_TOPIC": settings.status_topic})
            brokers.read([settings.status_topic], from_start=False)
        try:
            if scripts is not None and session is not None:  # one is None only when the other is
                upload_scripts(session, settings, *scripts)
            brokers.publish(settings.consumer_topic, event)
        except KeyboardInterrupt:
            raise ClientError(ExitCode.INTERRUPTED, "interrupted: nothing was submitted") from None
        action_id = str(event["action_id"])
        view.action(action_id)
        if not follow:
            if view.live:
                view.note(f"follow it with: sagemaker-executor status {action_id} --follow")
            return ExitCode.OK
        return _follow_submission(brokers, settings, options, action_id, until, view)
    finally:
        brokers.close()


def _follow_submission(
    brokers: Brokers, settings: Settings, options: ClientOptions, action_id: str, until: Until, view: View
) -> ExitCode:
    """``submit --follow``: the benchmark's changes until ``until``, with a hint if nothing answers."""
    hint = (
        f"no answer from the executor after {QUIET_HINT_S:.0f}s: is it running and reading "
        f"{settings.consumer_topic} (CONSUMER_TOPIC)? Still waiting"
    )
    end = _follow(brokers, Timeline(action_id), view, until, options.timeout_s, quiet_hint=hint)
    return _exit_for(end, action_id, options.timeout_s)


def cancel(settings: Settings, options: ClientOptions, target: str, *, follow: bool, view: View) -> ExitCode:
    """Ask the executors to cancel ``target`` and wait for their answers; with ``follow``, go on until
    the job has stopped."""
    brokers = Brokers(settings, options.connect_timeout_s)
    try:
        brokers.require(
            {"CMD_SUBMIT_TOPIC": settings.cmd_submit_topic, "CMD_RETURN_TOPIC": settings.cmd_return_topic}
        )
        topics = [settings.cmd_return_topic]
        if settings.status_topic:
            brokers.require({"STATUS_TOPIC": settings.status_topic})
            topics.append(settings.status_topic)
        brokers.read(topics, from_start=False)
        event = cancel_event(target, options.client, settings.cmd_submit_topic)
        brokers.publish(settings.cmd_submit_topic, event)
        command_id = str(event["action_id"])
        view.action(command_id, "cancel command")
        timeline = Timeline(target, command_id=command_id)
        wait = options.timeout_s if options.timeout_s is not None else CANCEL_ANSWER_TIMEOUT_S
        code = _wait_for_answers(brokers, timeline, view, settings.cmd_return_topic, wait, options.client)
        if code is not ExitCode.OK or not follow:
            return code
        end = _follow(
            brokers, timeline, view, "ended", options.timeout_s, responses=settings.cmd_return_topic
        )
        if end is None:
            raise ClientError(
                ExitCode.TIMED_OUT, f"the job of {target} had not stopped within {options.timeout_s:g}s"
            )
        return ExitCode.FAILED if timeline.cancel_failed else ExitCode.OK
    finally:
        brokers.close()


def status(
    settings: Settings, options: ClientOptions, action_id: str, *, follow: bool, view: View
) -> ExitCode:
    """Show ``action_id``'s history and state; with ``follow``, follow it to its end."""
    if not settings.status_topic:
        raise ClientError(ExitCode.USAGE, "status needs STATUS_TOPIC (--status-topic), which is empty")
    brokers = Brokers(settings, options.connect_timeout_s)
    try:
        brokers.require({"STATUS_TOPIC": settings.status_topic})
        topics = [settings.status_topic]
        try:
            brokers.require({"CMD_RETURN_TOPIC": settings.cmd_return_topic})
            topics.append(settings.cmd_return_topic)
        except ClientError:
            pass  # cancel answers are a detail of the history; the statuses are the history
        brokers.read(topics, from_start=True)
        timeline = Timeline(action_id)
        view.start_waiting("reading the history")
        try:
            while not brokers.caught_up():
                _feed(brokers, timeline, view, settings.cmd_return_topic)
        finally:
            view.stop_waiting()
        if timeline.statuses == 0 or timeline.last is None:
            raise ClientError(
                ExitCode.NOT_FOUND,
                f"no status event for action {action_id} on {settings.status_topic}: check the id (submit "
                "prints it) and STATUS_TOPIC (--status-topic); events older than the topic's retention "
                "are gone",
            )
        _summary(settings, timeline, view)
        if not follow:
            return ExitCode.OK
        end = timeline.end("ended", _now_ms()) or _follow(
            brokers, timeline, view, "ended", options.timeout_s, responses=settings.cmd_return_topic
        )
        return _exit_for(end, action_id, options.timeout_s)
    finally:
        brokers.close()


# ----------------------------------------------------------------------------------------------------


def _feed(brokers: Brokers, timeline: Timeline, view: View, responses: str | None) -> None:
    for topic, event in brokers.poll(POLL_MS):
        change = timeline.feed(event, response=topic == responses, now_ms=_now_ms())
        if change is not None:
            view.change(change)


def _follow(
    brokers: Brokers,
    timeline: Timeline,
    view: View,
    until: Until,
    timeout_s: float | None,
    *,
    responses: str | None = None,
    quiet_hint: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> End | None:
    """Show changes until ``timeline`` ends (``until``); None when ``timeout_s`` passed first.

    Ctrl-C raises ``ClientError(INTERRUPTED)`` saying how to re-attach.
    """
    started = clock()
    view.start_waiting(timeline.last.event if timeline.last else "waiting for the executor")
    try:
        while True:
            _feed(brokers, timeline, view, responses)
            end = timeline.end(until, _now_ms())
            if end is not None:
                return end
            if timeout_s is not None and clock() - started > timeout_s:
                return None
            if quiet_hint and timeline.last is None and clock() - started > QUIET_HINT_S:
                view.note(quiet_hint)
                quiet_hint = None
            view.tick()
    except KeyboardInterrupt:
        raise ClientError(ExitCode.INTERRUPTED, f"interrupted; {_reattach(timeline.action_id)}") from None
    finally:
        view.stop_waiting()


def _exit_for(end: End | None, action_id: str, timeout_s: float | None) -> ExitCode:
    if end is None:
        raise ClientError(
            ExitCode.TIMED_OUT, f"no end within --timeout {timeout_s:g}s; {_reattach(action_id)}"
        )
    return ExitCode.OK if end in _ENDED_OK else ExitCode.FAILED


def _wait_for_answers(
    brokers: Brokers, timeline: Timeline, view: View, responses: str, wait_s: float, client_id: str
) -> ExitCode:
    """The cancel's outcome from the ``CMD_RETURN`` answers (every executor and the fetcher answer)."""
    started = time.monotonic()
    first_answer: float | None = None
    view.start_waiting("waiting for the executors to answer")
    try:
        while True:
            _feed(brokers, timeline, view, responses)
            if any(answer.code == 0 for answer in timeline.answers):
                return ExitCode.OK
            now = time.monotonic()
            if timeline.answers and first_answer is None:
                first_answer = now
            if first_answer is not None and now - first_answer >= CANCEL_SETTLE_S:
                break
            if now - started > wait_s:
                if timeline.answers:
                    break
                raise ClientError(
                    ExitCode.TIMED_OUT,
                    f"no executor answered the cancel within {wait_s:g}s: is the executor running and "
                    "reading CMD_SUBMIT_TOPIC? The command stays on the topic and is handled when it runs",
                )
            view.tick()
    except KeyboardInterrupt:
        raise ClientError(
            ExitCode.INTERRUPTED, "interrupted; the cancel command was sent and will still be handled"
        ) from None
    finally:
        view.stop_waiting()
    if all(answer.not_found for answer in timeline.answers):
        raise ClientError(
            ExitCode.NOT_FOUND,
            f"no training job to cancel for action {timeline.action_id}: check the id; only the client "
            f"that submitted it can cancel it (this one is {client_id}; see --client-id)",
        )
    failed = next(answer for answer in timeline.answers if not answer.not_found)
    view.note(f"the cancel failed: {failed.service}: {failed.message}")
    return ExitCode.FAILED


def _summary(settings: Settings, timeline: Timeline, view: View) -> None:
    """Where the action stands, and what SageMaker says of its job when it can be asked."""
    last = timeline.last
    assert last is not None
    state = timeline.ended.value if timeline.ended else last.event
    view.line(f"state: {state}" + (f"; training job {timeline.job_name}" if timeline.job_name else ""))
    if timeline.job_name is None:
        return
    if not settings.aws_region:
        view.note("SageMaker not asked: set AWS_DEFAULT_REGION to see the job as SageMaker has it")
        return
    from sagemaker_executor.adapters.aws import make_session
    from sagemaker_executor.adapters.sagemaker import SageMakerJobs
    from sagemaker_executor.domain.errors import ExecutorError, JobNotFound

    try:
        jobs = SageMakerJobs(make_session(settings.aws_region), default_bucket="", retry_attempts=2)
        job = jobs.describe(timeline.job_name)
    except JobNotFound:
        view.line(f"SageMaker: no training job {timeline.job_name}")
        return
    except ExecutorError as error:
        view.note(f"SageMaker not asked: {error}")
        return
    secondary = job.get("SecondaryStatus")
    line = f"SageMaker: {job.get('TrainingJobStatus')}" + (f"/{secondary}" if secondary else "")
    if job.get("FailureReason"):
        line += f"; {job['FailureReason']}"
    metrics = ", ".join(f"{m['MetricName']}={m['Value']:g}" for m in job.get("FinalMetricDataList") or [])
    view.line(line + (f"; final metrics: {metrics}" if metrics else ""))
