"""The service's settings as one pydantic-settings model: names, defaults, help, parsing, combinations.

Each field is one setting: the environment variable is its name in capitals (``KAFKA_BOOTSTRAP_SERVERS``,
the contract with deployments: CONTRACT §6, ``docs/OPERATIONS.md``, ``deploy/``), the flag its name
with dashes (``--kafka-bootstrap-servers``, added by ``config.load.add_arguments``). Every default is
written as the text a deployment would set and goes through the same parser (``config.values``), so a
default and a variable cannot disagree. The rules that involve several settings (a VPC needs subnets
and security groups; TLS and SASL files and secrets) are checked once each value is valid on its own.

``config.load.load_settings`` builds a :class:`Settings` (the service) or a :class:`ClientSettings`
(``submit``/``cancel``/``status``/``logs``, for which the SageMaker settings and the region are
optional); everything else receives the typed, frozen object.
"""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import (
    AliasChoices,
    AliasGenerator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from sagemaker_executor.config import values as v
from sagemaker_executor.config.kafka import kafka_security_problems
from sagemaker_executor.domain.limits import DEFAULT_MAX_REQUEST_BYTES, MIN_REQUEST_BYTES

if TYPE_CHECKING:
    from sagemaker_executor.adapters.kafka import KafkaOptions

RequestBuilderName = Literal["boto3", "sdk"]


def parsed(parse: Any) -> BeforeValidator:
    """The field's text goes through ``parse`` (``config.values``) before pydantic checks the type."""
    return BeforeValidator(parse)


Topic = Annotated[str, parsed(v.topic)]


def setting(default: str, help: str, *, legacy: bool = False, required: bool = False) -> Any:
    """A field: ``default`` is the text of the default (parsed like a variable), ``help`` its flag's help.

    ``legacy``: one of the original's variables (CONTRACT §6). ``required``: the service needs a value
    (empty counts as missing); the client commands do not.
    """
    return Field(default, description=help, json_schema_extra={"legacy": legacy, "required": required})


# The environment to read instead of os.environ, for one load_settings call (tests pass a mapping).
ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("ENVIRON", default=None)


class _MappingEnv(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ`` (its
    ``env_vars``, which the stock source fills from ``os.environ`` when it is made)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = dict(environ)


def _revealed(secret_value: SecretStr | None) -> str | None:
    """The secret's text, for the Kafka client only."""
    return secret_value.get_secret_value() if secret_value is not None else None


class Settings(BaseSettings):
    """The service's settings, validated; secrets as ``SecretStr`` (not in the repr or the logs)."""

    model_config = SettingsConfigDict(
        frozen=True,
        # The variables' names are a contract, in capitals: KAFKA_BOOTSTRAP_SERVERS, never kafka_...
        case_sensitive=True,
        alias_generator=AliasGenerator(validation_alias=str.upper),  # flags arrive by variable too
        extra="ignore",
        validate_default=True,
        env_ignore_empty=False,  # STATUS_TOPIC="" means "no status events", not "the default"
        enable_decoding=False,  # lists are comma-separated, not JSON
    )
    client: ClassVar[bool] = False

    kafka_bootstrap_servers: Annotated[tuple[str, ...], parsed(v.bootstrap_servers)] = setting(
        "localhost:9092", "Kafka brokers, comma-separated host:port", legacy=True
    )
    consumer_group_id: Annotated[str, parsed(lambda t: v.text_of(t) or "sm-executor")] = setting(
        "sm-executor", "consumer group; the deployed original used sm-executor", legacy=True
    )
    consumer_topic: Topic = setting(
        "BAI_APP_FETCHER", "topic of FetcherBenchmarkEvents to execute", legacy=True
    )
    producer_topic: Topic = setting("BAI_APP_EXECUTOR", "topic for ExecutorBenchmarkEvents", legacy=True)
    status_topic: Annotated[str, parsed(v.optional_topic)] = setting(
        "BAI_APP_STATUS", "topic for status events; empty drops them", legacy=True
    )
    cmd_submit_topic: Topic = setting("CMD_SUBMIT", "topic of commands (cancel)", legacy=True)
    cmd_return_topic: Topic = setting("CMD_RETURN", "topic for command responses", legacy=True)
    num_partitions: Annotated[int, parsed(v.integer(1))] = setting(
        "3", "partitions of topics created at start-up", legacy=True
    )
    replication_factor: Annotated[int, parsed(v.integer(1))] = setting(
        "3", "replication of topics created at start-up (capped at broker count)", legacy=True
    )
    logging_level: Annotated[str, parsed(v.one_of(v.LOG_LEVELS, upper=True))] = setting(
        "INFO", "DEBUG, INFO, WARNING or ERROR", legacy=True
    )
    sagemaker_output_bucket: Annotated[str, parsed(v.bucket_name)] = setting(
        "", "bucket for job outputs and sources: s3://BUCKET/<job>/...", legacy=True, required=True
    )
    sagemaker_nodataset: Annotated[str, parsed(v.s3_uri)] = setting(
        "", "S3 URI of the input channel used when a benchmark has no data", legacy=True, required=True
    )
    sagemaker_role: str = setting(
        "", "IAM role name or ARN that the training jobs assume", legacy=True, required=True
    )
    sagemaker_subnets: Annotated[tuple[str, ...], parsed(v.comma_list)] = setting(
        "", "VPC subnets for the jobs, comma-separated", legacy=True
    )
    sagemaker_security_group_ids: Annotated[tuple[str, ...], parsed(v.comma_list)] = setting(
        "", "VPC security groups for the jobs, comma-separated", legacy=True
    )
    tmp_sources_dir: Annotated[str, parsed(lambda t: v.text_of(t) or tempfile.gettempdir())] = setting(
        "", "where job source dirs are assembled (removed after each submission)", legacy=True
    )
    dead_letter_topic: Topic = setting(
        "SM_EXECUTOR_DEAD_LETTER", "where records that cannot be parsed go, with the reason"
    )
    consumer_auto_offset_reset: Annotated[str, parsed(v.one_of(("latest", "earliest")))] = setting(
        "latest", "latest or earliest, for a group with no committed offset"
    )
    kafka_session_timeout_ms: Annotated[int, parsed(v.integer(1000))] = setting(
        "10000", "consumer group session timeout"
    )
    kafka_heartbeat_interval_ms: Annotated[int, parsed(v.integer(100))] = setting(
        "3000", "consumer group heartbeat interval"
    )
    kafka_max_poll_interval_ms: Annotated[int, parsed(v.integer(1000))] = setting(
        "300000", "longest time between polls before the group evicts us"
    )
    # Every status the BFF can store must be sendable (domain.limits.MIN_REQUEST_BYTES).
    kafka_max_request_bytes: Annotated[int, parsed(v.integer(MIN_REQUEST_BYTES))] = setting(
        str(DEFAULT_MAX_REQUEST_BYTES),
        "largest record sent (the producer's max.request.size); a submission whose executor event "
        f"would be larger is refused with ERROR (at least {MIN_REQUEST_BYTES})",
    )
    kafka_connect_timeout_seconds: Annotated[float, parsed(v.seconds(1, 3600))] = setting(
        "30", "how long start-up waits for the brokers to answer before it exits (code 3)"
    )
    kafka_security_protocol: Annotated[
        str,
        parsed(
            v.one_of(v.SECURITY_PROTOCOLS, upper=True, listed="one of " + ", ".join(v.SECURITY_PROTOCOLS))
        ),
    ] = setting("PLAINTEXT", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_ssl_cafile: Annotated[str, parsed(v.readable_file)] = setting(
        "", "PEM file of the CAs that sign the brokers' certificates (default: system)"
    )
    kafka_ssl_certfile: Annotated[str, parsed(v.readable_file)] = setting(
        "", "PEM client certificate, for brokers that require one"
    )
    kafka_ssl_keyfile: Annotated[str, parsed(v.readable_file)] = setting(
        "", "PEM private key of the client certificate"
    )
    # Each *_FILE before its secret: the secret's validator reads the file.
    kafka_ssl_key_password_file: Annotated[str, parsed(v.readable_file)] = setting(
        "", "file holding the private key's password"
    )
    kafka_ssl_key_password: Annotated[SecretStr | None, parsed(v.secret)] = setting(
        "", "password of the private key (prefer KAFKA_SSL_KEY_PASSWORD_FILE)"
    )
    kafka_ssl_check_hostname: Annotated[bool, parsed(v.boolean)] = setting(
        "true", "check that the broker certificate names the host (true/false)"
    )
    kafka_sasl_mechanism: Annotated[str, parsed(lambda t: v.text_of(t).upper())] = setting(
        "", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM"
    )
    kafka_sasl_username: str = setting("", "SASL user name (PLAIN and SCRAM)")
    kafka_sasl_password_file: Annotated[str, parsed(v.readable_file)] = setting(
        "", "file holding the SASL password"
    )
    kafka_sasl_password: Annotated[SecretStr | None, parsed(v.secret)] = setting(
        "", "SASL password (prefer KAFKA_SASL_PASSWORD_FILE)"
    )
    max_script_bytes: Annotated[int, parsed(v.integer(1))] = setting(
        str(1024**3), "largest total unpacked size of a benchmark's script tarballs"
    )
    aws_retry_attempts: Annotated[int, parsed(v.integer(1))] = setting(
        "8", "attempts per AWS call on throttling, 5xx and connection errors"
    )
    sagemaker_create_rate: Annotated[float | None, parsed(v.rate_or_off)] = setting(
        "1",
        "most CreateTrainingJob attempts per second from this process, 'off' for no limit "
        "(SageMaker documents 1 per second per account and Region)",
    )
    request_builder: Annotated[RequestBuilderName, parsed(v.one_of(("boto3", "sdk"), lower=True))] = setting(
        "boto3",
        "boto3 (the executor builds CreateTrainingJob itself) or sdk (a SageMaker SDK 2.x Estimator; "
        "needs the sdk extra)",
    )
    service_node: Annotated[str, parsed(lambda t: v.text_of(t) or socket.gethostname())] = setting(
        "", "this replica's name in events' visited list (default: hostname)"
    )
    max_in_flight: Annotated[int, parsed(v.integer(1))] = setting(
        "16", "records handled at once; at the limit, fetching pauses"
    )
    shutdown_grace_seconds: Annotated[float, parsed(v.seconds(0, 3600))] = setting(
        "30", "on SIGTERM, how long in-flight records may take to finish"
    )
    retry_backoff_seconds: Annotated[float, parsed(v.seconds(0.01, 3600))] = setting(
        "1", "first wait before retrying a transient failure (doubles, with jitter)"
    )
    retry_backoff_max_seconds: Annotated[float, parsed(v.seconds(0.01, 3600))] = setting(
        "60", "longest wait between retries of a transient failure"
    )
    retry_give_up_seconds: Annotated[float, parsed(v.seconds(1, 7 * 24 * 3600))] = setting(
        "3600", "after this long failing transiently, a submission ends as ERROR"
    )
    health_port: Annotated[int | None, parsed(v.port_or_off)] = setting(
        "8080", "port of /healthz, /readyz and /metrics; 'off' disables"
    )
    log_format: Annotated[str, parsed(v.one_of(("text", "json"), lower=True))] = setting(
        "text", "text, or json for one JSON object per line"
    )
    watch_jobs: Annotated[bool, parsed(v.boolean)] = setting(
        "true", "track created jobs, publish their status changes and final metrics"
    )
    watch_interval_seconds: Annotated[float, parsed(v.seconds(0.1, 3600))] = setting(
        "10", "how often job tracking asks SageMaker what changed"
    )
    tracking_topic: Topic = setting("SM_EXECUTOR_JOBS", "compacted topic holding the tracked jobs' state")
    metrics_topic: Topic = setting("BAI_METRICS", "topic for the final metrics of finished jobs")
    scripts_exchange_s3_bucket_name: str = setting(
        "", "submit --script: bucket for script tarballs (default: output bucket)"
    )
    # AWS's own variables, not a flag: the region the jobs run in.
    aws_region: str = Field(
        "",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        json_schema_extra={"flag": False, "required": True},
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (the init arguments) win over the environment; no .env file, no secrets directory."""
        environ = ENVIRON.get()
        return (init_settings, env_settings if environ is None else _MappingEnv(settings_cls, environ))

    @model_validator(mode="before")
    @classmethod
    def _strip(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {key: value.strip() if isinstance(value, str) else value for key, value in data.items()}

    @field_validator(
        "sagemaker_output_bucket", "sagemaker_nodataset", "sagemaker_role", "aws_region", mode="before"
    )
    @classmethod
    def _required(cls, value: Any, info: ValidationInfo) -> Any:
        if value in ("", None) and not cls.client:
            raise PydanticCustomError("required", "{name}", {"name": info.field_name})
        return "" if value is None else value

    @field_validator("service_node")
    @classmethod
    def _dns_name(cls, node: str) -> str:
        if len(node) > 253:  # a DNS name at most (RFC 1035): it goes into every event's visited list
            raise v.problem(f"must be at most 253 characters, got {len(node)}")
        return node

    @field_validator("scripts_exchange_s3_bucket_name")
    @classmethod
    def _scripts_bucket(cls, bucket: str, info: ValidationInfo) -> str:
        return bucket or str(info.data.get("sagemaker_output_bucket", ""))

    @field_validator("kafka_ssl_key_password", "kafka_sasl_password")
    @classmethod
    def _secret_from_file(cls, secret_value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """A secret comes from its variable or from the file its ``*_FILE`` names, not both."""
        path = info.data.get(f"{info.field_name}_file", "")
        if not path:
            return secret_value
        if secret_value is not None:
            name = str(info.field_name)
            raise v.problem(
                f"and {name.upper()}_FILE (--{name.replace('_', '-')}-file) are both set: give one"
            )
        return v.secret(v.secret_file_text(path))

    @model_validator(mode="after")
    def _combinations(self) -> Settings:
        problems = kafka_security_problems(self)
        if bool(self.sagemaker_subnets) != bool(self.sagemaker_security_group_ids):
            problems.append(
                "SAGEMAKER_SUBNETS (--sagemaker-subnets) and SAGEMAKER_SECURITY_GROUP_IDS "
                "(--sagemaker-security-group-ids) must be set together "
                "(a job in a VPC needs both; SageMaker and the SDK refuse one without the other)"
            )
        if problems:
            raise PydanticCustomError("combination", "{problems}", {"problems": problems})
        return self

    def redacted(self) -> dict[str, Any]:
        """For the start-up log line: every setting, a secret as ``"***"`` (or None when unset).

        AWS credentials never enter Settings; the Kafka passwords are ``SecretStr``.
        """
        return {
            name: "***" if isinstance(value, SecretStr) else value
            for name in type(self).model_fields
            for value in (getattr(self, name),)
        }

    def secrets(self) -> list[str]:
        """The secret values set (to mask in logs: ``logs.add_secret``)."""
        return [
            value.get_secret_value()
            for name in type(self).model_fields
            for value in (getattr(self, name),)
            if isinstance(value, SecretStr)
        ]

    def kafka_options(self, client_id: str, group_id: str = "") -> KafkaOptions:
        """The Kafka client options of these settings (brokers, security, timeouts, sizes).

        ``group_id`` "" is for clients outside the consumer group (the CLI's ``submit``).
        """
        from sagemaker_executor.adapters.kafka import KafkaOptions, KafkaSecurity

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
                ssl_key_password=_revealed(self.kafka_ssl_key_password),
                ssl_check_hostname=self.kafka_ssl_check_hostname,
                sasl_mechanism=self.kafka_sasl_mechanism or None,
                sasl_username=self.kafka_sasl_username or None,
                sasl_password=_revealed(self.kafka_sasl_password),
            ),
        )


class ClientSettings(Settings):
    """The client commands' settings: the SageMaker settings and the region may be empty."""

    client: ClassVar[bool] = True
