"""Composition root: the running service's object graph, assembled in one place.

``cli`` parses the arguments and the configuration, then calls :func:`run` with the typed
:class:`~sagemaker_executor.config.Settings`. Only this module knows every concrete class; each step
below is one layer of the architecture, in the order start-up meets them:

1. health and metrics (``service.observability`` served by ``adapters.http``), so that ``/healthz`` is
   live while start-up waits;
2. AWS (``adapters.aws``, ``adapters.sagemaker``, ``adapters.s3``, ``adapters.joblogs``), retried
   through an outage;
3. Kafka (``adapters.kafka``): the topics, then the publisher;
4. the service (``service.*``): status emitter, job tracker, submission and command handlers, and the
   consumer loop that drives them, which receive the adapters through their Protocols;
5. the dependency probes, then the loop until SIGTERM/SIGINT, and the closing in reverse order.

A start-up step that cannot go on raises :class:`~sagemaker_executor.startup.StartupFailure`;
:func:`run` turns it into one log line and its exit code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sagemaker_executor import SERVICE_NAME, __version__
from sagemaker_executor.config import Settings, ignored_legacy_variables
from sagemaker_executor.signals import StopSignal
from sagemaker_executor.startup import (
    ExitCode,
    StartupFailure,
    create_topics,
    report,
    topic_setting,
    unreachable,
)

if TYPE_CHECKING:
    import boto3

    from sagemaker_executor.adapters.cloudwatch import CloudWatchPublisher
    from sagemaker_executor.adapters.http import HealthServer
    from sagemaker_executor.adapters.joblogs import JobLogs
    from sagemaker_executor.adapters.kafka import KafkaOptions, Publisher, Subscriber
    from sagemaker_executor.adapters.s3 import ScriptStore
    from sagemaker_executor.adapters.sagemaker import SageMakerJobs
    from sagemaker_executor.service.emitter import StatusEmitter
    from sagemaker_executor.service.loop import ExecutorLoop
    from sagemaker_executor.service.loopconfig import LoopSettings
    from sagemaker_executor.service.observability import (
        DependencyProbe,
        Health,
        LoopObserver,
        ServiceMetrics,
    )
    from sagemaker_executor.service.tracker import JobTracker

log = logging.getLogger("sagemaker_executor")
_T = TypeVar("_T")
LOG_CALL_TIMEOUT_S = 5.0  # each CloudWatch Logs call of job tracking (a failed job's last lines)


@dataclass(frozen=True)
class Observability:
    """What operators see from the first moment: metrics, health, and the loop's reporter."""

    metrics: ServiceMetrics
    health: Health
    observer: LoopObserver


@dataclass(frozen=True)
class Aws:
    """The AWS side of the service, connected: the jobs' role ARN and one wrapper per service."""

    session: boto3.Session
    role_arn: str
    jobs: SageMakerJobs
    scripts: ScriptStore
    logs: JobLogs


@dataclass(frozen=True)
class Kafka:
    """The Kafka side of the service: its client options and the publisher (topics exist)."""

    options: KafkaOptions
    publisher: Publisher


def run(settings: Settings) -> int:
    """Run the service until SIGTERM/SIGINT; 0 on a clean stop, a start-up failure's
    :class:`ExitCode` (after one log line naming the setting to fix) when it cannot start."""
    stop = StopSignal()
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
            _listen(server, settings.health_port)
        observer = LoopObserver(metrics, health, consumer_group=settings.consumer_group_id)
        return _start(settings, stop, Observability(metrics, health, observer))
    except StartupFailure as failure:
        return report(failure)
    finally:
        if server is not None:
            server.stop()


def _listen(server: HealthServer, port: int) -> None:
    try:
        server.start()
    except OSError as error:
        raise StartupFailure(
            ExitCode.HEALTH_PORT,
            "HEALTH_PORT",
            f"cannot listen on port {port}: {error.strerror or error}",
            "choose a port that is free in the pod (the probes and the scrape config follow it), or 'off'",
        ) from error
    log.info("health and metrics on port %d: /healthz /readyz /metrics", server.port)


def _start(settings: Settings, stop: StopSignal, seen: Observability) -> int:
    """AWS, then Kafka, then the service; 0 if stopped on the way."""
    aws = connect_aws(settings, stop, seen.observer)
    if stop.received or aws is None:
        log.info("stopped during start-up")
        return 0
    kafka = connect_kafka(settings)
    if stop.received:
        log.info("stopped during start-up")
        kafka.publisher.close()
        return 0
    return serve(settings, stop, seen, aws, kafka)


def connect_aws(settings: Settings, stop: StopSignal, observer: LoopObserver) -> Aws | None:
    """The AWS wrappers, once the role resolves; None if stopped while AWS was unreachable."""
    from sagemaker_executor.adapters.aws import make_session
    from sagemaker_executor.adapters.joblogs import JobLogs
    from sagemaker_executor.adapters.s3 import ScriptStore
    from sagemaker_executor.adapters.sagemaker import SageMakerJobs, resolve_role_arn
    from sagemaker_executor.domain.errors import ExecutorError

    session = make_session(settings.aws_region)

    def connect() -> Aws:
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
        return Aws(session, role, jobs, scripts, logs)

    try:
        return _wait_for_aws(connect, stop, observer, settings)
    except ExecutorError as error:
        raise StartupFailure(
            ExitCode.AWS_REFUSED,
            "SAGEMAKER_ROLE",
            str(error),
            "give the role's ARN, or let the executor's identity call iam:GetRole on it (or "
            "sts:GetCallerIdentity)",
        ) from error


def _wait_for_aws(
    resolve: Callable[[], _T], stop: StopSignal, observer: LoopObserver, settings: Settings
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


def connect_kafka(settings: Settings) -> Kafka:
    """The service's topics (created when missing) and its publisher."""
    from sagemaker_executor.adapters.kafka import (
        BrokersUnreachable,
        Publisher,
        TopicSetupError,
        bootstrapping,
    )

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
    return Kafka(options, publisher)


def tracker_of(
    settings: Settings, aws: Aws, kafka: Kafka, emitter: StatusEmitter
) -> tuple[JobTracker | None, CloudWatchPublisher | None]:
    """Job tracking and its CloudWatch publisher, with ``WATCH_JOBS``; (None, None) without."""
    if not settings.watch_jobs:
        return None, None
    from sagemaker_executor.adapters.cloudwatch import CloudWatchPublisher
    from sagemaker_executor.adapters.kafka import read_compacted
    from sagemaker_executor.service.tracker import (
        CloudWatchForwarder,
        JobTracker,
        KafkaStateStore,
        TrackerSettings,
    )

    cloudwatch = CloudWatchPublisher(aws.session, settings.aws_region, settings.aws_retry_attempts)
    tracker = JobTracker(
        aws.jobs,
        kafka.publisher,
        emitter,
        KafkaStateStore(
            lambda partitions: read_compacted(kafka.options, settings.tracking_topic, partitions)
        ),
        TrackerSettings(
            consumer_topic=settings.consumer_topic,
            tracking_topic=settings.tracking_topic,
            metrics_topic=settings.metrics_topic,
            region=settings.aws_region,
            interval_s=settings.watch_interval_seconds,
        ),
        cloudwatch=CloudWatchForwarder(cloudwatch, settings.aws_region),
        logs=aws.logs,
    )
    return tracker, cloudwatch


def loop_of(
    settings: Settings,
    aws: Aws,
    kafka: Kafka,
    emitter: StatusEmitter,
    subscriber: Subscriber,
    tracker: JobTracker | None,
    observer: LoopObserver,
) -> ExecutorLoop:
    """The consumer loop over the submission and command handlers, the tracker and the observer."""
    from sagemaker_executor.adapters import sourcedir
    from sagemaker_executor.domain.translation import ExecutorSite
    from sagemaker_executor.service.commands import CommandHandler
    from sagemaker_executor.service.loop import ExecutorLoop
    from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings

    site = ExecutorSite(
        output_bucket=settings.sagemaker_output_bucket,
        nodata_uri=settings.sagemaker_nodataset,
        role_arn=aws.role_arn,
        region=settings.aws_region,
        subnets=settings.sagemaker_subnets,
        security_group_ids=settings.sagemaker_security_group_ids,
    )
    submission = SubmissionSettings(
        site,
        settings.producer_topic,
        settings.tmp_sources_dir,
        settings.max_script_bytes,
        settings.kafka_max_request_bytes,
        tracking=settings.watch_jobs,
    )
    return ExecutorLoop(
        subscriber,
        kafka.publisher,
        emitter,
        SubmissionHandler(aws.jobs, aws.scripts, emitter, submission, sources=sourcedir),
        CommandHandler(aws.jobs, emitter, settings.cmd_return_topic),
        _loop_settings(settings),
        tracker=tracker,
        observer=observer,
    )


def _loop_settings(settings: Settings) -> LoopSettings:
    from sagemaker_executor.service.loopconfig import LoopSettings, RetryPolicy

    return LoopSettings(
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
    )


def probes_of(settings: Settings, seen: Observability, aws: Aws, kafka: Kafka) -> list[DependencyProbe]:
    """The background checks that AWS and the brokers answer, for ``/readyz``."""
    from sagemaker_executor.adapters.kafka import BrokerCheck
    from sagemaker_executor.service.observability import DependencyProbe

    session_s = settings.kafka_session_timeout_ms / 1000
    return [
        DependencyProbe(seen.health, aws.jobs.ping, name="aws", metrics=seen.metrics),
        # Every half session timeout, each check bounded by one: a lost broker shows within two.
        DependencyProbe(
            seen.health,
            BrokerCheck(kafka.options, timeout_ms=settings.kafka_session_timeout_ms),
            session_s / 2,
            name="kafka",
            metrics=seen.metrics,
        ),
    ]


def serve(settings: Settings, stop: StopSignal, seen: Observability, aws: Aws, kafka: Kafka) -> int:
    """Assemble the service over the connected adapters and consume until stopped; 0."""
    from sagemaker_executor.adapters.kafka import Subscriber
    from sagemaker_executor.service.emitter import StatusEmitter

    emitter = StatusEmitter(kafka.publisher, status_topic=settings.status_topic, node=settings.service_node)
    tracker, cloudwatch = tracker_of(settings, aws, kafka, emitter)
    subscriber = Subscriber(kafka.options, [settings.consumer_topic, settings.cmd_submit_topic])
    loop = loop_of(settings, aws, kafka, emitter, subscriber, tracker, seen.observer)
    subscriber.listen(loop.on_assigned, loop.on_revoked)
    probes = probes_of(settings, seen, aws, kafka)
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
        seen.health.set_joined(False)
        kafka.publisher.flush()
        subscriber.close()
        kafka.publisher.close()
        for probe in probes:
            probe.stop()
        if cloudwatch is not None:
            cloudwatch.close()
    log.info("stopped; handled %s", loop.counts)
    return 0
