"""Start-up failures: what stops the service before it consumes, the exit code of each kind, and the
one log line that names the setting to fix.

``app.run`` raises :class:`StartupFailure` where start-up cannot go on and turns it into
:func:`report`'s single line (a JSON object under ``LOG_FORMAT=json``) and the kind's
:class:`ExitCode`. No traceback: the cause is known, and the operator needs the setting, not the
stack. A crash-looping pod's last exit code alone says which kind it was (the README lists them).

Also here: the start-up steps whose failures need the settings' names (creating the topics, the
message for brokers that do not answer).
"""

from __future__ import annotations

import logging
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sagemaker_executor.adapters.kafka import KafkaOptions
    from sagemaker_executor.config import Settings

log = logging.getLogger("sagemaker_executor")


class ExitCode(IntEnum):
    """The process's exit status. 1 stays Python's own (an unexpected exception, with its traceback)."""

    OK = 0
    CONFIG = 2  # a setting missing or malformed; every one is listed
    KAFKA_UNREACHABLE = 3  # no broker answered within KAFKA_CONNECT_TIMEOUT_SECONDS (address, TLS, SASL)
    HEALTH_PORT = 4  # HEALTH_PORT cannot be listened on (in use, not permitted)
    TOPICS = 5  # a topic cannot be created, or the tracking topic has too few partitions
    AWS_REFUSED = 6  # AWS refused the executor's set-up for good (SAGEMAKER_ROLE cannot be resolved)


class StartupFailure(Exception):
    """Start-up cannot go on: ``message`` says what failed, ``setting`` which variable to look at
    (``KAFKA_BOOTSTRAP_SERVERS``), ``fix`` what to do; ``code`` is the process's exit status."""

    def __init__(self, code: ExitCode, setting: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.code = code
        self.setting = setting
        self.message = message
        self.fix = fix


def report(failure: StartupFailure) -> int:
    """Log ``failure`` as one CRITICAL line, with ``setting``, ``exit_code`` and ``failure`` (the kind's
    name) as fields of its JSON object; returns the exit code."""
    log.critical(
        "start-up failed (exit %d): %s. Fix %s: %s",
        failure.code,
        failure.message,
        failure.setting,
        failure.fix,
        extra={"setting": failure.setting, "exit_code": int(failure.code), "failure": failure.code.name},
    )
    return int(failure.code)


def create_topics(settings: Settings, options: KafkaOptions) -> list[str]:
    """Create the service's missing topics (the tracking and metrics topics too with ``WATCH_JOBS``);
    returns the names of those created.

    Raises :class:`StartupFailure` (``TRACKING_TOPIC``) when the tracking topic has fewer partitions
    than the input topic; the adapter's ``TopicSetupError`` (a topic refused) and kafka-python's
    errors (no broker answering) pass through for the caller to name.
    """
    from sagemaker_executor.adapters.kafka import ensure_topics, partition_count

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
        tracking_partitions = partition_count(options, settings.tracking_topic)
        if tracking_partitions < input_partitions:
            raise StartupFailure(
                ExitCode.TOPICS,
                "TRACKING_TOPIC",
                f"{settings.tracking_topic} has {tracking_partitions} partitions, fewer than the "
                f"{input_partitions} of {settings.consumer_topic}",
                f"add partitions to {settings.tracking_topic} (one per partition of "
                f"{settings.consumer_topic}) or name a new topic",
            )
    return created


def topic_setting(settings: Settings, topic: str) -> str:
    """The variable that names ``topic`` (``CONSUMER_TOPIC``), or NUM_PARTITIONS if none does."""
    for name in (
        "consumer_topic",
        "producer_topic",
        "status_topic",
        "cmd_submit_topic",
        "cmd_return_topic",
        "dead_letter_topic",
        "tracking_topic",
        "metrics_topic",
    ):
        if getattr(settings, name) == topic:
            return name.upper()
    return "NUM_PARTITIONS"


def unreachable(settings: Settings, cause: str) -> StartupFailure:
    """The failure for brokers that did not answer within KAFKA_CONNECT_TIMEOUT_SECONDS."""
    fix = "check that these brokers are up and reachable from the pod"
    if settings.kafka_security_protocol != "PLAINTEXT":
        fix += (
            f", and that KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} and the "
            "KAFKA_SSL_* / KAFKA_SASL_* settings match their listener"
        )
    return StartupFailure(
        ExitCode.KAFKA_UNREACHABLE,
        "KAFKA_BOOTSTRAP_SERVERS",
        f"no Kafka broker of {','.join(settings.kafka_bootstrap_servers)} answered within "
        f"{settings.kafka_connect_timeout_seconds:g}s (KAFKA_CONNECT_TIMEOUT_SECONDS): {cause}",
        fix,
    )
