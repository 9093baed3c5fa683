"""Entry point and wiring: ``sagemaker-executor [run]``, ``submit``, ``cancel``, ``status`` and ``logs``.

``run`` (the default, so an existing deployment's image swap needs no arguments) reads the
configuration, connects the adapters, creates missing topics and runs the consumer loop until SIGTERM
or SIGINT. ``submit``, ``cancel`` and ``status`` are a small client for the same topics
(``sagemaker_executor.client``) that works against the embedded broker of ``make demo`` as well as a
real cluster; they take only the settings that say where the topics are. ``logs`` asks AWS only
(SageMaker and CloudWatch Logs, with the user's own identity). All four turn every error into one
line and an exit code (``client.errors``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

from sagemaker_executor import SERVICE_NAME, __version__
from sagemaker_executor.config import (
    ConfigError,
    Settings,
    add_arguments,
    ignored_legacy_variables,
    load_settings,
)
from sagemaker_executor.logs import add_secret, configure_logging
from sagemaker_executor.startup import (
    ExitCode,
    StartupFailure,
    create_topics,
    report,
    topic_setting,
    unreachable,
)

if TYPE_CHECKING:
    from sagemaker_executor.service.observability import Health, LoopObserver, ServiceMetrics

log = logging.getLogger("sagemaker_executor")
_T = TypeVar("_T")
LOG_CALL_TIMEOUT_S = 5.0  # each CloudWatch Logs call of job tracking (a failed job's last lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagemaker-executor",
        description="Anubis executor: runs benchmark descriptors as Amazon SageMaker training jobs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")

    run = commands.add_parser("run", help="run the Kafka service (the default)")
    add_arguments(run)

    submit = _client_command(
        commands,
        "submit",
        "submit a descriptor, as the anubis client and fetcher would",
        "Check a benchmark descriptor here, as the executor would, then ship --script and publish it. "
        "Prints the action id; --follow shows the benchmark until its job has finished.",
    )
    submit.add_argument("descriptor", type=Path, help="the benchmark descriptor (TOML) to run on SageMaker")
    submit.add_argument(
        "--script",
        type=Path,
        metavar="PATH",
        help="a file or directory to ship as the benchmark's scripts (tarred as the anubis client does, "
        "uploaded to the scripts bucket)",
    )
    submit.add_argument(
        "--follow",
        action="store_true",
        help="show each change until the job has ended and its metrics are in (see --until)",
    )
    submit.add_argument(
        "--until",
        choices=("created", "ended"),
        default="ended",
        help="with --follow: stop once the job is created, or once it has ended (the default)",
    )
    submit.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="publish without the local checks (the executor still checks and answers ERROR)",
    )
    _client_arguments(submit)

    cancel = _client_command(
        commands,
        "cancel",
        "cancel a submitted benchmark by its action id",
        "Ask the executors to stop the training job of an action, and wait for their answer.",
    )
    cancel.add_argument("action_id", help="the action id that submit printed")
    cancel.add_argument(
        "--follow", action="store_true", help="after the answer, show the job until it has stopped"
    )
    _client_arguments(cancel)

    status = _client_command(
        commands,
        "status",
        "show a benchmark's state and history by its action id",
        "Read an action's status events from the start of the status topic, say where it stands and "
        "what SageMaker says of its job; --follow re-attaches until the job has ended.",
    )
    status.add_argument("action_id", help="the action id that submit printed")
    status.add_argument("--follow", action="store_true", help="go on showing changes until the job has ended")
    _client_arguments(status)

    logs = _client_command(
        commands,
        "logs",
        "print a benchmark's training job log by its action id",
        "Find the action's training job as cancel does and print its log from CloudWatch Logs (log group "
        "/aws/sagemaker/TrainingJobs), every host's stream interleaved by time, each line prefixed with "
        "its host when there are several; --follow goes on until the job has ended. Needs "
        "AWS_DEFAULT_REGION and AWS credentials allowed sagemaker:DescribeTrainingJob, ListTags and "
        "Search, and logs:DescribeLogStreams and GetLogEvents.",
    )
    logs.add_argument("action_id", help="the action id that submit printed")
    logs.add_argument(
        "--follow",
        action="store_true",
        help="keep reading until the job has ended and its last lines are printed (exit 1 if it failed)",
    )
    _common_client_arguments(logs)
    return parser


KAFKA_COMMANDS = ("submit", "cancel", "status")  # clients of the topics
CLIENT_COMMANDS = (*KAFKA_COMMANDS, "logs")


def _client_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str
) -> argparse.ArgumentParser:
    from sagemaker_executor.client.errors import exit_codes_help

    return commands.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 100),
        epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _client_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the clients of the topics (``submit``, ``cancel``, ``status``)."""
    _common_client_arguments(parser)
    parser.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to wait for the Kafka brokers to answer (default: 10)",
    )
    add_arguments(parser, client=True, title="where the topics are (flag or environment variable)")


def _common_client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up after SECONDS (exit 14); by default wait as long as the job is alive "
        "(cancel: 60 s for an answer)",
    )
    parser.add_argument("--client-id", help="client id (default: sha1 of user+host, as the anubis client)")
    parser.add_argument("--debug", action="store_true", help="on an error, show the traceback too")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in ("run", *CLIENT_COMMANDS, "-h", "--help", "--version"):
        words = ["run", *words]  # the service is the default: an image swap passes no arguments
    args = _parser().parse_args(words)
    command = args.command
    if command in CLIENT_COMMANDS:
        return _client_main(command, args)
    try:
        settings = load_settings(vars(args))
    except ConfigError as error:
        if _wants_json(args):  # one JSON line, as every other line of a json deployment
            head, *problems = str(error).splitlines()
            problems = [problem.strip().removeprefix("- ") for problem in problems]
            configure_logging("INFO", "json")
            log.critical(
                "sagemaker-executor: %s %s",
                head,
                "; ".join(problems),
                extra={
                    "exit_code": int(ExitCode.CONFIG),
                    "failure": ExitCode.CONFIG.name,
                    "settings": [problem.split(" ", 1)[0] for problem in problems],
                },
            )
        else:
            print(f"sagemaker-executor: {error}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    configure_logging(settings.logging_level, settings.log_format)
    for secret in settings.secrets():
        add_secret(secret)
    return run(settings)


def _client_main(command: str, args: argparse.Namespace) -> int:
    """A client command: one line and its exit code for every error (the traceback with ``--debug``)."""
    import traceback

    from sagemaker_executor.client import commands
    from sagemaker_executor.client.errors import ClientError, ExitCode
    from sagemaker_executor.client.view import View

    prog = f"sagemaker-executor {command}"
    try:
        settings = load_settings(vars(args), client=True)
    except ConfigError as error:  # one line: "invalid configuration: A; B"
        head, *problems = str(error).splitlines()
        listed = "; ".join(problem.strip().removeprefix("- ") for problem in problems)
        print(f"{prog}: {head} {listed}".rstrip(), file=sys.stderr)
        return int(ExitCode.USAGE)
    configure_logging("DEBUG" if args.debug else "WARNING")
    if not args.debug:  # kafka-python's per-attempt connection errors: the client says it once, plainly
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    options = commands.ClientOptions(args.client_id, args.timeout, getattr(args, "connect_timeout", 0.0))
    view = View()
    try:
        if command == "logs":
            from sagemaker_executor.client.joblogs import logs

            code = logs(
                settings,
                args.action_id,
                options.client,
                follow=args.follow,
                timeout_s=options.timeout_s,
                view=view,
            )
        elif command == "submit":
            code = commands.submit(
                settings,
                options,
                args.descriptor,
                args.script,
                follow=args.follow,
                until=args.until,
                check=args.check,
                view=view,
            )
        elif command == "cancel":
            code = commands.cancel(settings, options, args.action_id, follow=args.follow, view=view)
        else:
            code = commands.status(settings, options, args.action_id, follow=args.follow, view=view)
        return int(code)
    except ClientError as error:
        if args.debug:
            traceback.print_exception(error)
        print(f"{prog}: {error.message}", file=sys.stderr)
        return int(error.code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except Exception as error:
        if args.debug:
            traceback.print_exception(error)
        print(
            f"{prog}: internal error: {type(error).__name__}: {error}; run again with --debug for the "
            "traceback, and report it",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)


def _wants_json(args: argparse.Namespace) -> bool:
    """Whether LOG_FORMAT (flag or environment) asks for JSON, read even when the rest is invalid."""
    value = getattr(args, "log_format", None) or os.environ.get("LOG_FORMAT", "")
    return str(value).strip().lower() == "json"


class _StopSignal:
    """SIGTERM/SIGINT, caught from the first moment of ``run``.

    A pod can be stopped while it is still starting (a rollout that moves on, a scale-down). Until the
    loop exists the signal is only recorded and start-up gives up at its next step; afterwards it stops
    the loop, which drains within the grace period. Either way the process exits 0, not by the signal.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._action: Callable[[], None] | None = None
        self._event = threading.Event()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        self._event.set()
        log.info("received %s", self.received)
        if self._action is not None:
            self._action()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the signal has come."""
        return self._event.wait(seconds)

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the signal from now on (at once if it already came)."""
        self._action = action
        if self.received is not None:
            action()


def run(settings: Settings) -> int:
    """Run the service until SIGTERM/SIGINT; 0 on a clean stop, a start-up failure's
    :class:`ExitCode` (after one log line naming the setting to fix) when it cannot start."""
    stop = _StopSignal()
    from sagemaker_executor.adapters.http import HealthServer
    from sagemaker_executor.service.observability import Health, LoopObserver, ServiceMetrics

    log.info("starting %s %s with %s", SERVICE_NAME, __version__, settings.redacted())
    for name in ignored_legacy_variables():
        log.info("%s is set but unused (the original ignored it too)", name)

    # Health first: while start-up waits for AWS, /healthz is live and /readyz says why it waits.
    metrics = ServiceMetrics()
    health = Health(
        stale_after_s=max(120.0, settings.shutdown_grace_seconds * 2), dependencies=("aws", "kafka")
    )
    server = None
    try:
        if settings.health_port is not None:
            server = HealthServer(health, metrics, port=settings.health_port)
            try:
                server.start()
            except OSError as error:
                raise StartupFailure(
                    ExitCode.HEALTH_PORT,
                    "HEALTH_PORT",
                    f"cannot listen on port {settings.health_port}: {error.strerror or error}",
                    "choose a port that is free in the pod (the probes and the scrape config follow it), "
                    "or 'off'",
                ) from error
            log.info("health and metrics on port %d: /healthz /readyz /metrics", server.port)
        observer = LoopObserver(metrics, health, consumer_group=settings.consumer_group_id)
        return _run_service(settings, stop, metrics, health, observer)
    except StartupFailure as failure:
        return report(failure)
    finally:
        if server is not None:
            server.stop()


def _wait_for_aws(
    resolve: Callable[[], _T], stop: _StopSignal, observer: LoopObserver, settings: Settings
) -> _T | None:
    """``resolve()`` retried through an outage (no credentials, AWS unreachable) with capped backoff;
    None if stopped meanwhile. One WARNING says what is wrong and how to fix it."""
    from sagemaker_executor.domain.errors import OutageError

    delay, warned = settings.retry_backoff_seconds, False
    while True:
        try:
            value = resolve()
        except OutageError as error:
            observer.outage(error)
            if not warned:
                log.warning("start-up waits for AWS: %s. Fix: %s", error, error.fix)
                warned = True
        else:
            observer.outage(None)
            return value
        if stop.wait(delay):
            return None
        delay = min(delay * 2, settings.retry_backoff_max_seconds)


def _run_service(
    settings: Settings, stop: _StopSignal, metrics: ServiceMetrics, health: Health, observer: LoopObserver
) -> int:
    from sagemaker_executor.adapters.aws import make_session
    from sagemaker_executor.adapters.cloudwatch import CloudWatchPublisher
    from sagemaker_executor.adapters.joblogs import JobLogs
    from sagemaker_executor.adapters.kafka import (
        BrokerCheck,
        BrokersUnreachable,
        Publisher,
        Subscriber,
        TopicSetupError,
        bootstrapping,
        read_compacted,
    )
    from sagemaker_executor.adapters.s3 import ScriptStore
    from sagemaker_executor.adapters.sagemaker import SageMakerJobs, resolve_role_arn
    from sagemaker_executor.domain.errors import ExecutorError
    from sagemaker_executor.domain.translation import ExecutorSite
    from sagemaker_executor.service.commands import CommandHandler
    from sagemaker_executor.service.emitter import StatusEmitter
    from sagemaker_executor.service.loop import ExecutorLoop, LoopSettings, RetryPolicy
    from sagemaker_executor.service.observability import DependencyProbe
    from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings
    from sagemaker_executor.service.tracker import (
        CloudWatchForwarder,
        JobTracker,
        KafkaStateStore,
        TrackerSettings,
    )

    session = make_session(settings.aws_region)

    def connect_aws() -> tuple[str, SageMakerJobs, ScriptStore, JobLogs]:
        role = resolve_role_arn(session, settings.sagemaker_role, settings.aws_retry_attempts)
        jobs = SageMakerJobs(
            session,
            default_bucket=settings.sagemaker_output_bucket,
            retry_attempts=settings.aws_retry_attempts,
            request_builder=settings.request_builder,
            create_rate=settings.sagemaker_create_rate,
        )
        scripts = ScriptStore(
            session,
            settings.aws_retry_attempts,
            own_buckets=(settings.scripts_exchange_s3_bucket_name, settings.sagemaker_output_bucket),
        )
        # One retry and short waits: the tracker reads a failed job's log on the loop's thread.
        logs = JobLogs(session, retry_attempts=2, call_timeout_s=LOG_CALL_TIMEOUT_S)
        return role, jobs, scripts, logs

    try:
        connected = _wait_for_aws(connect_aws, stop, observer, settings)
    except ExecutorError as error:
        raise StartupFailure(
            ExitCode.AWS_REFUSED,
            "SAGEMAKER_ROLE",
            str(error),
            "give the role's ARN, or let the executor's identity call iam:GetRole on it (or "
            "sts:GetCallerIdentity)",
        ) from error
    if stop.received or connected is None:
        log.info("stopped during start-up")
        return 0
    role_arn, jobs, scripts, job_logs = connected

    options = settings.kafka_options(f"{SERVICE_NAME}-{settings.service_node}", settings.consumer_group_id)
    try:
        with bootstrapping():
            created = create_topics(settings, options)
            publisher = Publisher(options)
    except TopicSetupError as error:
        raise StartupFailure(
            ExitCode.TOPICS,
            topic_setting(settings, error.topic),
            str(error),
            "create the topic beforehand, or fit NUM_PARTITIONS and REPLICATION_FACTOR to the "
            "cluster and allow the executor's principal to create topics",
        ) from error
    except BrokersUnreachable as error:
        raise unreachable(settings, error.cause) from error
    if created:
        log.info("created topics %s", created)
    if stop.received:
        log.info("stopped during start-up")
        publisher.close()
        return 0
    emitter = StatusEmitter(publisher, status_topic=settings.status_topic, node=settings.service_node)
    tracker = None
    cloudwatch = None
    if settings.watch_jobs:
        cloudwatch = CloudWatchPublisher(session, settings.aws_region, settings.aws_retry_attempts)
        tracker = JobTracker(
            jobs,
            publisher,
            emitter,
            KafkaStateStore(lambda partitions: read_compacted(options, settings.tracking_topic, partitions)),
            TrackerSettings(
                consumer_topic=settings.consumer_topic,
                tracking_topic=settings.tracking_topic,
                metrics_topic=settings.metrics_topic,
                region=settings.aws_region,
                interval_s=settings.watch_interval_seconds,
            ),
            cloudwatch=CloudWatchForwarder(cloudwatch, settings.aws_region),
            logs=job_logs,
        )
    subscriber = Subscriber(options, [settings.consumer_topic, settings.cmd_submit_topic])
    site = ExecutorSite(
        output_bucket=settings.sagemaker_output_bucket,
        nodata_uri=settings.sagemaker_nodataset,
        role_arn=role_arn,
        region=settings.aws_region,
        subnets=settings.sagemaker_subnets,
        security_group_ids=settings.sagemaker_security_group_ids,
    )
    loop = ExecutorLoop(
        subscriber,
        publisher,
        emitter,
        SubmissionHandler(
            jobs,
            scripts,
            emitter,
            SubmissionSettings(
                site,
                settings.producer_topic,
                settings.tmp_sources_dir,
                settings.max_script_bytes,
                settings.kafka_max_request_bytes,
                tracking=settings.watch_jobs,
            ),
        ),
        CommandHandler(jobs, emitter, settings.cmd_return_topic),
        LoopSettings(
            settings.consumer_topic,
            settings.cmd_submit_topic,
            settings.dead_letter_topic,
            max_in_flight=settings.max_in_flight,
            shutdown_grace_s=settings.shutdown_grace_seconds,
            max_request_bytes=settings.kafka_max_request_bytes,
            retry=RetryPolicy(
                base_s=settings.retry_backoff_seconds,
                cap_s=settings.retry_backoff_max_seconds,
                give_up_s=settings.retry_give_up_seconds,
            ),
        ),
        tracker=tracker,
        observer=observer,
    )
    subscriber.listen(loop.on_assigned, loop.on_revoked)
    session_s = settings.kafka_session_timeout_ms / 1000
    probes = [
        DependencyProbe(health, jobs.ping, name="aws", metrics=metrics),
        # Every half session timeout, each check bounded by one: a lost broker shows within two.
        DependencyProbe(
            health,
            BrokerCheck(options, timeout_ms=settings.kafka_session_timeout_ms),
            session_s / 2,
            name="kafka",
            metrics=metrics,
        ),
    ]
    for probe in probes:
        probe.start()

    def on_stop() -> None:
        log.info("no new records; in-flight ones get %.0fs to finish", settings.shutdown_grace_seconds)
        loop.stop()

    stop.then(on_stop)
    log.info(
        "consuming %s and %s as group %s",
        settings.consumer_topic,
        settings.cmd_submit_topic,
        settings.consumer_group_id,
    )
    try:
        loop.run()
    finally:
        health.set_joined(False)
        publisher.flush()
        subscriber.close()
        publisher.close()
        for probe in probes:
            probe.stop()
        if cloudwatch is not None:
            cloudwatch.close()
    log.info("stopped; handled %s", loop.counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
