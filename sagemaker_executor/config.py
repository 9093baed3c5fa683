"""Service configuration: the original's environment variables (CONTRACT §6), the same as CLI flags.

``cli`` builds a :class:`Settings` with :func:`load_settings` at start-up; everything else receives the
typed object. Each setting is an environment variable (``KAFKA_BOOTSTRAP_SERVERS``) and a flag
(``--kafka-bootstrap-servers``); a flag wins. Anything missing or malformed stops start-up with one
message listing every problem, so a misconfigured pod fails fast and says why.

An existing deployment swaps images with only the original variables plus the standard AWS ones;
every setting this project added has a default.

Secrets (``KAFKA_SSL_KEY_PASSWORD``, ``KAFKA_SASL_PASSWORD``) come from the variable or from the file
its ``*_FILE`` setting names (a mounted Kubernetes Secret); :class:`Settings` holds them as pydantic
``SecretStr``, so neither its repr nor :meth:`Settings.redacted` (the start-up log line) shows them.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

from sagemaker_executor.domain.limits import DEFAULT_MAX_REQUEST_BYTES, MIN_REQUEST_BYTES

if TYPE_CHECKING:
    from sagemaker_executor.adapters.kafka import KafkaOptions

# Kafka security (kafka-python's names): the protocols and the SASL mechanisms accepted.
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM")

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
RequestBuilderName = Literal["boto3", "sdk"]
MAX_CREATE_RATE = 1000.0


class ConfigError(Exception):
    """Configuration that cannot work; the message lists every problem found."""


@dataclass(frozen=True)
class Option:
    name: str  # attribute name; the env var is NAME.upper(), the flag --name-with-dashes
    help: str
    default: str | None = None  # None: required
    legacy: bool = False  # one of the original's variables (CONTRACT §6)


OPTIONS: tuple[Option, ...] = (
    Option("kafka_bootstrap_servers", "Kafka brokers, comma-separated host:port", "localhost:9092", True),
    Option(
        "consumer_group_id", "consumer group; the deployed original used sm-executor", "sm-executor", True
    ),
    Option("consumer_topic", "topic of FetcherBenchmarkEvents to execute", "BAI_APP_FETCHER", True),
    Option("producer_topic", "topic for ExecutorBenchmarkEvents", "BAI_APP_EXECUTOR", True),
    Option("status_topic", "topic for status events; empty drops them", "BAI_APP_STATUS", True),
    Option("cmd_submit_topic", "topic of commands (cancel)", "CMD_SUBMIT", True),
    Option("cmd_return_topic", "topic for command responses", "CMD_RETURN", True),
    Option("num_partitions", "partitions of topics created at start-up", "3", True),
    Option(
        "replication_factor", "replication of topics created at start-up (capped at broker count)", "3", True
    ),
    Option("logging_level", "DEBUG, INFO, WARNING or ERROR", "INFO", True),
    Option(
        "sagemaker_output_bucket", "bucket for job outputs and sources: s3://BUCKET/<job>/...", None, True
    ),
    Option(
        "sagemaker_nodataset", "S3 URI of the input channel used when a benchmark has no data", None, True
    ),
    Option("sagemaker_role", "IAM role name or ARN that the training jobs assume", None, True),
    Option("sagemaker_subnets", "VPC subnets for the jobs, comma-separated", "", True),
    Option("sagemaker_security_group_ids", "VPC security groups for the jobs, comma-separated", "", True),
    Option(
        "tmp_sources_dir", "where job source dirs are assembled (removed after each submission)", "", True
    ),
    Option(
        "dead_letter_topic",
        "where records that cannot be parsed go, with the reason",
        "SM_EXECUTOR_DEAD_LETTER",
    ),
    Option(
        "consumer_auto_offset_reset", "latest or earliest, for a group with no committed offset", "latest"
    ),
    Option("kafka_session_timeout_ms", "consumer group session timeout", "10000"),
    Option("kafka_heartbeat_interval_ms", "consumer group heartbeat interval", "3000"),
    Option("kafka_max_poll_interval_ms", "longest time between polls before the group evicts us", "300000"),
    Option(
        "kafka_max_request_bytes",
        "largest record sent (the producer's max.request.size); a submission whose executor event "
        f"would be larger is refused with ERROR (at least {MIN_REQUEST_BYTES})",
        str(DEFAULT_MAX_REQUEST_BYTES),
    ),
    Option(
        "kafka_connect_timeout_seconds",
        "how long start-up waits for the brokers to answer before it exits (code 3)",
        "30",
    ),
    Option("kafka_security_protocol", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", "PLAINTEXT"),
    Option(
        "kafka_ssl_cafile", "PEM file of the CAs that sign the brokers' certificates (default: system)", ""
    ),
    Option("kafka_ssl_certfile", "PEM client certificate, for brokers that require one", ""),
    Option("kafka_ssl_keyfile", "PEM private key of the client certificate", ""),
    Option("kafka_ssl_key_password", "password of the private key (prefer KAFKA_SSL_KEY_PASSWORD_FILE)", ""),
    Option("kafka_ssl_key_password_file", "file holding the private key's password", ""),
    Option(
        "kafka_ssl_check_hostname", "check that the broker certificate names the host (true/false)", "true"
    ),
    Option("kafka_sasl_mechanism", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM", ""),
    Option("kafka_sasl_username", "SASL user name (PLAIN and SCRAM)", ""),
    Option("kafka_sasl_password", "SASL password (prefer KAFKA_SASL_PASSWORD_FILE)", ""),
    Option("kafka_sasl_password_file", "file holding the SASL password", ""),
    Option("max_script_bytes", "largest total unpacked size of a benchmark's script tarballs", str(1024**3)),
    Option("aws_retry_attempts", "attempts per AWS call on throttling, 5xx and connection errors", "8"),
    Option(
        "sagemaker_create_rate",
        "most CreateTrainingJob attempts per second from this process, 'off' for no limit "
        "(SageMaker documents 1 per second per account and Region)",
        "1",
    ),
    Option(
        "request_builder",
        "boto3 (the executor builds CreateTrainingJob itself) or sdk (a SageMaker SDK 2.x Estimator; "
        "needs the sdk extra)",
        "boto3",
    ),
    Option("service_node", "this replica's name in events' visited list (default: hostname)", ""),
    Option("max_in_flight", "records handled at once; at the limit, fetching pauses", "16"),
    Option("shutdown_grace_seconds", "on SIGTERM, how long in-flight records may take to finish", "30"),
    Option(
        "retry_backoff_seconds", "first wait before retrying a transient failure (doubles, with jitter)", "1"
    ),
    Option("retry_backoff_max_seconds", "longest wait between retries of a transient failure", "60"),
    Option(
        "retry_give_up_seconds", "after this long failing transiently, a submission ends as ERROR", "3600"
    ),
    Option("health_port", "port of /healthz, /readyz and /metrics; 'off' disables", "8080"),
    Option("log_format", "text, or json for one JSON object per line", "text"),
    Option("watch_jobs", "track created jobs, publish their status changes and final metrics", "true"),
    Option("watch_interval_seconds", "how often job tracking asks SageMaker what changed", "10"),
    Option("tracking_topic", "compacted topic holding the tracked jobs' state", "SM_EXECUTOR_JOBS"),
    Option("metrics_topic", "topic for the final metrics of finished jobs", "BAI_METRICS"),
    Option(
        "scripts_exchange_s3_bucket_name",
        "submit --script: bucket for script tarballs (default: output bucket)",
        "",
    ),
)

# Read by the original but never used by it; accepted so old manifests still start.
IGNORED_LEGACY = ("VALID_EXECUTION_ENGINES", "TRANSPILER_VALID_STRATEGIES", "TRANSPILER_VALID_FRAMEWORKS")


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: tuple[str, ...]
    consumer_group_id: str
    consumer_topic: str
    producer_topic: str
    status_topic: str
    cmd_submit_topic: str
    cmd_return_topic: str
    num_partitions: int
    replication_factor: int
    logging_level: str
    sagemaker_output_bucket: str
    sagemaker_nodataset: str
    sagemaker_role: str
    sagemaker_subnets: tuple[str, ...]
    sagemaker_security_group_ids: tuple[str, ...]
    tmp_sources_dir: str
    dead_letter_topic: str
    consumer_auto_offset_reset: str
    kafka_session_timeout_ms: int
    kafka_heartbeat_interval_ms: int
    kafka_max_poll_interval_ms: int
    kafka_max_request_bytes: int
    kafka_connect_timeout_seconds: float
    kafka_security_protocol: str
    kafka_ssl_cafile: str
    kafka_ssl_certfile: str
    kafka_ssl_keyfile: str
    kafka_ssl_key_password: SecretStr | None
    kafka_ssl_check_hostname: bool
    kafka_sasl_mechanism: str
    kafka_sasl_username: str
    kafka_sasl_password: SecretStr | None
    max_script_bytes: int
    aws_retry_attempts: int
    sagemaker_create_rate: float | None
    request_builder: RequestBuilderName
    service_node: str
    scripts_exchange_s3_bucket_name: str
    max_in_flight: int
    shutdown_grace_seconds: float
    retry_backoff_seconds: float
    retry_backoff_max_seconds: float
    retry_give_up_seconds: float
    health_port: int | None
    log_format: str
    watch_jobs: bool
    watch_interval_seconds: float
    tracking_topic: str
    metrics_topic: str
    aws_region: str

    def redacted(self) -> dict[str, Any]:
        """For the start-up log line: every setting, a secret as ``"***"`` (or None when unset).

        AWS credentials never enter Settings; the Kafka passwords are ``SecretStr``.
        """
        return {
            f.name: "***" if isinstance(value, SecretStr) else value
            for f in fields(self)
            for value in (getattr(self, f.name),)
        }

    def secrets(self) -> list[str]:
        """The secret values set (to mask in logs: ``logs.add_secret``)."""
        return [
            value.get_secret_value()
            for f in fields(self)
            for value in (getattr(self, f.name),)
            if isinstance(value, SecretStr)
        ]

    def kafka_options(self, client_id: str, group_id: str = "") -> KafkaOptions:
        """The Kafka client options of these settings (brokers, security, timeouts, sizes).

        ``group_id`` "" is for clients outside the consumer group (the CLI's ``submit``).
        """
        from sagemaker_executor.adapters.kafka import KafkaOptions, KafkaSecurity

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        return KafkaOptions(
            bootstrap_servers=self.kafka_bootstrap_servers,
            client_id=client_id,
            group_id=group_id,
            auto_offset_reset=self.consumer_auto_offset_reset,
            session_timeout_ms=self.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.kafka_heartbeat_interval_ms,
            max_poll_interval_ms=self.kafka_max_poll_interval_ms,
            max_request_bytes=self.kafka_max_request_bytes,
            bootstrap_timeout_ms=int(self.kafka_connect_timeout_seconds * 1000),
            security=KafkaSecurity(
                protocol=self.kafka_security_protocol,
                ssl_cafile=self.kafka_ssl_cafile or None,
                ssl_certfile=self.kafka_ssl_certfile or None,
                ssl_keyfile=self.kafka_ssl_keyfile or None,
                ssl_key_password=secret(self.kafka_ssl_key_password),
                ssl_check_hostname=self.kafka_ssl_check_hostname,
                sasl_mechanism=self.kafka_sasl_mechanism or None,
                sasl_username=self.kafka_sasl_username or None,
                sasl_password=secret(self.kafka_sasl_password),
            ),
        )


def env_name(option: Option) -> str:
    return option.name.upper()


# The settings the client commands (``submit``, ``cancel``, ``status``) take as flags: where the
# brokers, topics and script bucket are. The others are still read from the environment, as for the
# service. Kafka security settings, whatever their names, connect the client like the service.
CLIENT_OPTIONS = (
    "kafka_bootstrap_servers",
    "consumer_topic",
    "status_topic",
    "cmd_submit_topic",
    "cmd_return_topic",
    "scripts_exchange_s3_bucket_name",
)
CLIENT_OPTION_PREFIXES = ("kafka_security_", "kafka_ssl_", "kafka_sasl_")


def is_client_option(option: Option) -> bool:
    return option.name in CLIENT_OPTIONS or option.name.startswith(CLIENT_OPTION_PREFIXES)


def add_arguments(
    parser: argparse.ArgumentParser,
    *,
    client: bool = False,
    title: str = "service configuration (flag or environment variable)",
) -> None:
    """One flag per option, defaulting to None so that the environment decides when it is absent.

    ``client``: only the options of :data:`CLIENT_OPTIONS` (and Kafka security), for the client commands.
    """
    group = parser.add_argument_group(title)
    for option in OPTIONS:
        if client and not is_client_option(option):
            continue
        default = "required" if option.default is None else repr(option.default)
        group.add_argument(
            "--" + option.name.replace("_", "-"),
            dest=option.name,
            default=None,
            help=f"{option.help} [env {env_name(option)}; default {default}]",
        )


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def load_settings(
    flags: Mapping[str, Any], environ: Mapping[str, str] | None = None, *, client: bool = False
) -> Settings:
    """Settings from flags (winning) and the environment; raises :class:`ConfigError` listing all problems.

    ``client``: for ``submit``/``cancel``, which only talk to Kafka (and S3 for scripts), the
    SageMaker settings are optional.
    """
    env = os.environ if environ is None else environ
    raw: dict[str, str] = {}
    problems: list[str] = []
    for option in OPTIONS:
        value = flags.get(option.name)
        if value is None:
            value = env.get(env_name(option))
        if value is None or (value == "" and option.default is None):
            if option.default is None and client:
                raw[option.name] = ""
                continue
            if option.default is None:
                flag = "--" + option.name.replace("_", "-")
                problems.append(f"{env_name(option)} (or {flag}) is required: {option.help}")
                continue
            value = option.default
        raw[option.name] = value.strip()

    def label(name: str) -> str:
        return f"{name.upper()} (--{name.replace('_', '-')})"

    def integer(name: str, minimum: int) -> int:
        text = raw.get(name, "")
        try:
            number = int(text)
        except ValueError:
            problems.append(f"{label(name)} must be an integer, got {text!r}")
            return minimum
        if number < minimum:
            problems.append(f"{label(name)} must be at least {minimum}, got {number}")
        return number

    def topic(name: str, *, optional: bool = False) -> str:
        value = raw.get(name, "")
        if value == "" and optional:
            return ""
        if not _TOPIC_RE.match(value):
            problems.append(
                f"{label(name)} must be a Kafka topic name ([A-Za-z0-9._-], 1-249), got {value!r}"
            )
        return value

    servers = _split(raw.get("kafka_bootstrap_servers", ""))
    if not servers or any(not re.match(r"^[^\s:]+:\d{1,5}$", s) for s in servers):
        problems.append(
            f"{label('kafka_bootstrap_servers')} must be host:port[,host:port...], "
            f"got {raw.get('kafka_bootstrap_servers')!r}"
        )
    bucket = raw.get("sagemaker_output_bucket", "")
    if bucket.startswith("s3://"):
        bucket = bucket[len("s3://") :].rstrip("/")
    if bucket and not re.match(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", bucket):
        problems.append(
            f"{label('sagemaker_output_bucket')} must be an S3 bucket name, "
            f"got {raw['sagemaker_output_bucket']!r}"
        )
    nodata = raw.get("sagemaker_nodataset", "")
    if nodata and not re.match(r"^s3://[^/]+(/.*)?$", nodata):
        problems.append(f"{label('sagemaker_nodataset')} must be an s3:// URI, got {nodata!r}")
    level = raw.get("logging_level", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        problems.append(
            f"{label('logging_level')} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, "
            f"got {raw.get('logging_level')!r}"
        )
    reset = raw.get("consumer_auto_offset_reset", "latest")
    if reset not in ("latest", "earliest"):
        problems.append(f"{label('consumer_auto_offset_reset')} must be latest or earliest, got {reset!r}")

    def seconds(name: str, low: float, high: float) -> float:
        text = raw.get(name, "")
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            problems.append(f"{label(name)} must be seconds between {low:g} and {high:g}, got {text!r}")
            return low
        return value

    health_text = raw.get("health_port", "8080").lower()
    health_port: int | None = None
    if health_text not in ("off", "none", ""):
        health_port = integer("health_port", 0)
        if health_port > 65535:
            problems.append(f"{label('health_port')} must be a port number or 'off', got {health_text!r}")
    log_format = raw.get("log_format", "text").lower()
    if log_format not in ("text", "json"):
        problems.append(f"{label('log_format')} must be text or json, got {raw.get('log_format')!r}")
    watch = raw.get("watch_jobs", "true").lower()
    if watch not in ("true", "false", "1", "0", "yes", "no"):
        problems.append(f"{label('watch_jobs')} must be true or false, got {raw.get('watch_jobs')!r}")
    interval_text = raw.get("watch_interval_seconds", "10")
    try:
        interval = float(interval_text)
        if not 0.1 <= interval <= 3600:
            raise ValueError(interval_text)
    except ValueError:
        problems.append(
            f"{label('watch_interval_seconds')} must be seconds between 0.1 and 3600, got {interval_text!r}"
        )
        interval = 10.0
    create_rate = _rate(raw.get("sagemaker_create_rate", "1"), label("sagemaker_create_rate"), problems)
    builder_text = raw.get("request_builder", "boto3").lower()
    builder: RequestBuilderName = "sdk" if builder_text == "sdk" else "boto3"
    if builder_text not in ("boto3", "sdk"):
        problems.append(
            f"{label('request_builder')} must be boto3 or sdk, got {raw.get('request_builder')!r}"
        )
    if bool(_split(raw.get("sagemaker_subnets", ""))) != bool(
        _split(raw.get("sagemaker_security_group_ids", ""))
    ):
        problems.append(
            f"{label('sagemaker_subnets')} and {label('sagemaker_security_group_ids')} must be set together "
            "(a job in a VPC needs both; SageMaker and the SDK refuse one without the other)"
        )
    security = _kafka_security(raw, label, problems)
    node = raw.get("service_node", "") or socket.gethostname()
    if len(node) > 253:  # a DNS name at most (RFC 1035): it goes into every event's visited list
        problems.append(f"{label('service_node')} must be at most 253 characters, got {len(node)}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    if not region and not client:
        problems.append("AWS_DEFAULT_REGION (or AWS_REGION) is required: the region the jobs run in")

    settings = Settings(
        kafka_bootstrap_servers=servers,
        consumer_group_id=raw.get("consumer_group_id", "") or "sm-executor",
        consumer_topic=topic("consumer_topic"),
        producer_topic=topic("producer_topic"),
        status_topic=topic("status_topic", optional=True),
        cmd_submit_topic=topic("cmd_submit_topic"),
        cmd_return_topic=topic("cmd_return_topic"),
        num_partitions=integer("num_partitions", 1),
        replication_factor=integer("replication_factor", 1),
        logging_level=level,
        sagemaker_output_bucket=bucket,
        sagemaker_nodataset=nodata,
        sagemaker_role=raw.get("sagemaker_role", ""),
        sagemaker_subnets=_split(raw.get("sagemaker_subnets", "")),
        sagemaker_security_group_ids=_split(raw.get("sagemaker_security_group_ids", "")),
        tmp_sources_dir=raw.get("tmp_sources_dir", "") or tempfile.gettempdir(),
        dead_letter_topic=topic("dead_letter_topic"),
        consumer_auto_offset_reset=reset,
        kafka_session_timeout_ms=integer("kafka_session_timeout_ms", 1000),
        kafka_heartbeat_interval_ms=integer("kafka_heartbeat_interval_ms", 100),
        kafka_max_poll_interval_ms=integer("kafka_max_poll_interval_ms", 1000),
        # Every status the BFF can store must be sendable (domain.limits.MIN_REQUEST_BYTES).
        kafka_max_request_bytes=integer("kafka_max_request_bytes", MIN_REQUEST_BYTES),
        kafka_connect_timeout_seconds=seconds("kafka_connect_timeout_seconds", 1, 3600),
        **security,
        max_script_bytes=integer("max_script_bytes", 1),
        aws_retry_attempts=integer("aws_retry_attempts", 1),
        sagemaker_create_rate=create_rate,
        request_builder=builder,
        service_node=node,
        scripts_exchange_s3_bucket_name=raw.get("scripts_exchange_s3_bucket_name", "") or bucket,
        max_in_flight=integer("max_in_flight", 1),
        shutdown_grace_seconds=seconds("shutdown_grace_seconds", 0, 3600),
        retry_backoff_seconds=seconds("retry_backoff_seconds", 0.01, 3600),
        retry_backoff_max_seconds=seconds("retry_backoff_max_seconds", 0.01, 3600),
        retry_give_up_seconds=seconds("retry_give_up_seconds", 1, 7 * 24 * 3600),
        health_port=health_port,
        log_format=log_format,
        watch_jobs=watch in ("true", "1", "yes"),
        watch_interval_seconds=interval,
        tracking_topic=topic("tracking_topic"),
        metrics_topic=topic("metrics_topic"),
        aws_region=region,
    )
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return settings


def _rate(text: str, label: str, problems: list[str]) -> float | None:
    """A rate per second in (0, MAX_CREATE_RATE], or None for 'off' (also '0' and empty)."""
    if text.lower() in ("off", "none", "0", ""):
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not 0 < rate <= MAX_CREATE_RATE:
        problems.append(f"{label} must be 'off' or a rate per second up to {MAX_CREATE_RATE:g}, got {text!r}")
        return None
    return rate


def _kafka_security(
    raw: Mapping[str, str], label: Callable[[str], str], problems: list[str]
) -> dict[str, Any]:
    """The ``kafka_*`` security fields of :class:`Settings`, checked together; appends to ``problems``.

    Files must be readable now (a typo fails start-up, not the first connection); each secret comes
    from its variable or its ``*_FILE``, not both.
    """
    protocol = raw.get("kafka_security_protocol", "PLAINTEXT").upper()
    if protocol not in SECURITY_PROTOCOLS:
        problems.append(
            f"{label('kafka_security_protocol')} must be one of {', '.join(SECURITY_PROTOCOLS)}, "
            f"got {raw.get('kafka_security_protocol')!r}"
        )
    tls, sasl = protocol in ("SSL", "SASL_SSL"), protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def readable(name: str) -> str:
        path = raw.get(name, "")
        if path and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            problems.append(f"{label(name)} must be a readable file, got {path!r}")
        return path

    def secret(name: str) -> SecretStr | None:
        value, file_name = raw.get(name, ""), name + "_file"
        path = readable(file_name)
        if value and path:
            problems.append(f"{label(name)} and {label(file_name)} are both set: give one")
        if path and os.path.isfile(path) and os.access(path, os.R_OK):
            with open(path, encoding="utf-8") as file:
                value = file.read().rstrip("\r\n")  # a Secret file written with echo ends in one
        return SecretStr(value) if value else None

    def needs(name: str, condition: bool, why: str) -> None:
        if raw.get(name) and not condition:
            problems.append(f"{label(name)} is set but {why}")

    cafile, certfile, keyfile = (
        readable(n) for n in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    )
    key_password = secret("kafka_ssl_key_password")
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        needs(name, tls, "KAFKA_SECURITY_PROTOCOL is not SSL or SASL_SSL")
    needs("kafka_ssl_keyfile", bool(certfile), "KAFKA_SSL_CERTFILE is not")
    if key_password is not None and not certfile:
        problems.append(f"{label('kafka_ssl_key_password')} is set but KAFKA_SSL_CERTFILE is not")
    check_text = raw.get("kafka_ssl_check_hostname", "true").lower()
    if check_text not in _BOOLEANS:
        problems.append(f"{label('kafka_ssl_check_hostname')} must be true or false, got {check_text!r}")

    mechanism = raw.get("kafka_sasl_mechanism", "").upper()
    username = raw.get("kafka_sasl_username", "")
    password = secret("kafka_sasl_password")
    if mechanism and mechanism not in SASL_MECHANISMS:
        problems.append(
            f"{label('kafka_sasl_mechanism')} must be one of {', '.join(SASL_MECHANISMS)}, "
            f"got {raw.get('kafka_sasl_mechanism')!r}"
        )
    if sasl and not mechanism:
        problems.append(
            f"{label('kafka_sasl_mechanism')} is required with KAFKA_SECURITY_PROTOCOL={protocol}"
        )
    needs("kafka_sasl_mechanism", sasl, "KAFKA_SECURITY_PROTOCOL is not SASL_PLAINTEXT or SASL_SSL")
    if mechanism == "AWS_MSK_IAM":
        if protocol != "SASL_SSL":
            problems.append(
                f"{label('kafka_sasl_mechanism')} AWS_MSK_IAM needs KAFKA_SECURITY_PROTOCOL=SASL_SSL"
            )
        if username or password is not None:
            problems.append(
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD are not used with AWS_MSK_IAM: it signs with "
                "the executor's AWS identity"
            )
    elif sasl and mechanism in SASL_MECHANISMS:
        if not username:
            problems.append(
                f"{label('kafka_sasl_username')} is required with KAFKA_SASL_MECHANISM={mechanism}"
            )
        if password is None:
            problems.append(
                f"{label('kafka_sasl_password')} (or KAFKA_SASL_PASSWORD_FILE) is required with "
                f"KAFKA_SASL_MECHANISM={mechanism}"
            )
    return {
        "kafka_security_protocol": protocol,
        "kafka_ssl_cafile": cafile,
        "kafka_ssl_certfile": certfile,
        "kafka_ssl_keyfile": keyfile,
        "kafka_ssl_key_password": key_password,
        "kafka_ssl_check_hostname": check_text in _TRUE,
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": username,
        "kafka_sasl_password": password,
    }


_TRUE = ("true", "1", "yes")
_BOOLEANS = (*_TRUE, "false", "0", "no")


def ignored_legacy_variables(environ: Mapping[str, str] | None = None) -> Sequence[str]:
    env = os.environ if environ is None else environ
    return [name for name in IGNORED_LEGACY if name in env]
