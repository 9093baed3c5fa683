"""Entry point and wiring: ``sagemaker-executor [run]``, ``submit`` and ``cancel``.

``run`` (the default, so an existing deployment's image swap needs no arguments) reads the
configuration, connects the adapters, creates missing topics and runs the consumer loop until SIGTERM
or SIGINT. ``submit`` and ``cancel`` are a small client for the same topics (``sagemaker_executor.client``)
that works against the embedded broker of ``make demo`` as well as a real cluster.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
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
from sagemaker_executor.logs import configure_logging

if TYPE_CHECKING:
    from sagemaker_executor.service.observability import Health, LoopObserver, ServiceMetrics

log = logging.getLogger("sagemaker_executor")
_T = TypeVar("_T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sagemaker-executor",
        description="Anubis executor: runs benchmark descriptors as Amazon SageMaker training jobs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")

    run = commands.add_parser("run", help="run the Kafka service (the default)")
    add_arguments(run)

    submit = commands.add_parser("submit", help="submit a descriptor, as the anubis client and fetcher would")
    submit.add_argument("descriptor", type=Path, help="benchmark descriptor (TOML)")
    submit.add_argument("--script", type=Path, help="a file or directory to ship as the benchmark's scripts")
    _client_arguments(submit)

    cancel = commands.add_parser("cancel", help="cancel a submitted benchmark by its action id")
    cancel.add_argument("action_id")
    _client_arguments(cancel)
    return parser


def _client_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow", action="store_true", help="print status events until the executor answers"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to --follow before giving up")
    parser.add_argument(
        "--until",
        choices=("created", "ended"),
        default="created",
        help="--follow until the executor answered (created) or until the job ended (ended)",
    )
    parser.add_argument("--client-id", help="client id (default: sha1 of user+host, as the anubis client)")
    add_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in ("run", "submit", "cancel", "-h", "--help", "--version"):
        words = ["run", *words]  # the service is the default: an image swap passes no arguments
    args = _parser().parse_args(words)
    command = args.command
    try:
        settings = load_settings(vars(args), client=command != "run")
    except ConfigError as error:
        print(f"sagemaker-executor: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.logging_level, settings.log_format)
    if command == "run":
        return run(settings)
    import sagemaker_executor.client as client

    if command == "submit":
        return client.submit(
            settings, args.descriptor, args.script, args.follow, args.timeout, args.client_id, args.until
        )
    return client.cancel(settings, args.action_id, args.follow, args.timeout, args.client_id, args.until)


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
    """Run the service until SIGTERM/SIGINT; 0 on a clean stop."""
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
    if settings.health_port is not None:
        server = HealthServer(health, metrics, port=settings.health_port)
        server.start()
        log.info("health and metrics on port %d: /healthz /readyz /metrics", server.port)
    observer = LoopObserver(metrics, health)
    try:
        return _run_service(settings, stop, metrics, health, observer)
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
    from sagemaker_executor.adapters.kafka import (
        BrokerCheck,
        KafkaOptions,
        Publisher,
        Subscriber,
        ensure_topics,
        partition_count,
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

    def connect_aws() -> tuple[str, SageMakerJobs, ScriptStore]:
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
        return role, jobs, scripts

    try:
        connected = _wait_for_aws(connect_aws, stop, observer, settings)
    except ExecutorError as error:
        log.error("%s", error)
        return 2
    if stop.received or connected is None:
        log.info("stopped during start-up")
        return 0
    role_arn, jobs, scripts = connected

    options = KafkaOptions(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"{SERVICE_NAME}-{settings.service_node}",
        group_id=settings.consumer_group_id,
        auto_offset_reset=settings.consumer_auto_offset_reset,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        max_request_bytes=settings.kafka_max_request_bytes,
    )
    topics = [
        settings.consumer_topic,
        settings.producer_topic,
        settings.status_topic,
        settings.cmd_submit_topic,
        settings.cmd_return_topic,
        settings.dead_letter_topic,
    ]
    created = ensure_topics(options, topics, settings.num_partitions, settings.replication_factor)
    if settings.watch_jobs:
        # One tracking partition per input partition: tracking follows partition ownership.
        input_partitions = partition_count(options, settings.consumer_topic)
        created += ensure_topics(
            options,
            [settings.tracking_topic, settings.metrics_topic],
            settings.num_partitions,
            settings.replication_factor,
            compacted=[settings.tracking_topic],
            partitions_of={settings.tracking_topic: input_partitions},
        )
        if partition_count(options, settings.tracking_topic) < input_partitions:
            log.error("%s has fewer partitions than %s", settings.tracking_topic, settings.consumer_topic)
            return 2
    if created:
        log.info("created topics %s", created)
    if stop.received:
        log.info("stopped during start-up")
        return 0
    publisher = Publisher(options)
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
