"""The descriptor's model: one frozen pydantic model per TOML table, :class:`Descriptor` at the root.

The shape of ``payload.toml.contents`` (the descriptor TOML parsed to a table) and the rules each
table's own fields must satisfy, as CONTRACT.md §8 states them with the original's bugs fixed (§10):
unknown keys are refused (``extra="forbid"``), values are not coerced (``strict``), single-node jobs
may have one instance, and ``info.task_name`` is accepted. Validators raise
``domain.fieldrules.Invalid``; ``domain.descriptor.parse_descriptor`` builds the model and turns what
pydantic reports into a :class:`~sagemaker_executor.domain.errors.DescriptorError`, and translation
reads the result. SageMaker's own limits on a value that reaches the training job as it is (the job
name, a tag) are ``domain.constraints``'; none is written down here. Pure.
"""

import re
import unicodedata
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sagemaker_executor.domain import constraints
from sagemaker_executor.domain.fieldrules import (
    Invalid,
    check_env_vars,
    check_tag,
    enum_value,
    not_blank,
    show,
)
from sagemaker_executor.domain.requirements import requirement_line_problem
from sagemaker_executor.domain.s3location import parse_s3_uri

SAGEMAKER_ENGINE = "aws.sagemaker"
EXECUTION_ENGINES = ("default", SAGEMAKER_ENGINE)
SINGLE_RUN = "single_run"
MAX_LABELS = 10  # maxProperties of labels_structure in the BFF schema


class Strategy(StrEnum):
    SINGLE_NODE = "single_node"
    HOROVOD = "horovod"
    INFERENCE = "inference"


class Framework(StrEnum):
    NONE = ""
    TENSORFLOW = "tensorflow"
    MXNET = "mxnet"
    PYTORCH = "pytorch"


# ---------------------------------------------------------------- the model, one class per table

_LABEL = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_MD5 = re.compile(r"[^:]+:[a-fA-F0-9]+|[a-fA-F0-9]{32}|")
_SCRIPT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.tar")
_LABEL_RULE = "1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Info(_Table):
    description: str
    task_name: str | None = None
    execution_engine: str = "default"
    scheduling: str = SINGLE_RUN
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("execution_engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in EXECUTION_ENGINES:
            raise Invalid(f"must be one of {', '.join(map(repr, EXECUTION_ENGINES))}, got {show(value)}")
        return value

    @field_validator("scheduling")
    @classmethod
    def _single_run(cls, value: str) -> str:
        # The service routes scheduled benchmarks away before parsing (translation.routing); one that
        # reaches this far was sent here by mistake.
        if value != SINGLE_RUN:
            owner = "a scheduled benchmark is the Kubernetes executor's"
            raise Invalid(f"must be {SINGLE_RUN!r}: {owner}, got {show(value)}")
        return value

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > MAX_LABELS:
            raise Invalid(f"at most {MAX_LABELS} labels are allowed, got {len(labels)}")
        for key, value in labels.items():
            if not _LABEL.fullmatch(key):
                raise Invalid(f"label name {show(key)} must be {_LABEL_RULE}", key)
            if value and not _LABEL.fullmatch(value):
                raise Invalid(f"label value {show(value)} must be empty or {_LABEL_RULE}", key)
        return labels


class Distributed(_Table):
    num_instances: int = Field(1, ge=1)
    processes_per_instance: str = Field(
        "1", description='"gpus" (one process per GPU) or a positive integer written as a string.'
    )

    @field_validator("processes_per_instance")
    @classmethod
    def _gpus_or_count(cls, value: str) -> str:
        if value != "gpus" and not re.fullmatch(r"[1-9][0-9]{0,5}", value):
            raise Invalid(f"must be 'gpus' or a positive integer as a string, got {show(value)}")
        return value


class Hardware(_Table):
    instance_type: str
    strategy: Strategy = Strategy.SINGLE_NODE
    distributed: Distributed | None = None
    aws_zone_id: str | None = None
    availability_zone: str | None = None

    _instance_type_not_blank = field_validator("instance_type")(not_blank)

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, value: object) -> Any:
        return enum_value(Strategy, value)

    @property
    def instance_count(self) -> int:
        """Number of instances; one unless `[hardware.distributed]` says otherwise (fixes §10.4)."""
        return self.distributed.num_instances if self.distributed else 1


class Env(_Table):
    docker_image: str
    vars: dict[str, str] = Field(default_factory=dict)
    privileged: bool = False
    extended_shm: bool = True

    _docker_image_not_blank = field_validator("docker_image")(not_blank)
    _vars_are_names = field_validator("vars")(check_env_vars)


class Script(_Table):
    script: str = Field(description="Name of the tar file the client uploaded with --script, '<sha1>.tar'.")

    @field_validator("script")
    @classmethod
    def _tar_file_name(cls, value: str) -> str:
        if not _SCRIPT.fullmatch(value):
            raise Invalid(f"must be a plain file name ending in '.tar' (no directories), got {show(value)}")
        return value


class Ml(_Table):
    benchmark_code: str | None = None
    framework: Framework = Framework.NONE
    framework_version: str | None = None
    args: str | None = None
    script: Script | None = None

    @field_validator("framework", mode="before")
    @classmethod
    def _framework(cls, value: object) -> Any:
        return enum_value(Framework, value)

    @model_validator(mode="after")
    def _version_needs_framework(self) -> "Ml":
        if self.framework_version is not None and self.framework is Framework.NONE:
            raise Invalid(
                "is set but ml.framework is not; name the framework it is a version of", "framework_version"
            )
        return self


class DataSource(_Table):
    src: str
    path: str
    id: str | None = None
    md5: str | None = None

    @field_validator("md5")
    @classmethod
    def _md5(cls, value: str | None) -> str | None:
        if value is not None and not _MD5.fullmatch(value):
            raise Invalid(f"must be 32 hex digits, '<algorithm>:<hex digest>' or empty, got {show(value)}")
        return value


class Data(_Table):
    sources: list[DataSource] = Field(default_factory=list)


class Metric(_Table):
    name: str
    units: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except Exception as exc:  # re.error, or RecursionError for absurdly nested groups
            raise Invalid(f"must be a regular expression, {show(value)} is not: {exc}") from None
        return value


class Output(_Table):
    metrics: list[Metric]


class HttpProbe(_Table):
    path: str
    scheme: str = "http"
    port: int | None = Field(None, ge=1, le=65535)
    initial_delay_seconds: int | None = Field(None, ge=1)
    period_seconds: int | None = Field(None, ge=1)
    timeout_seconds: int | None = Field(None, ge=1)
    success_threshold: int | None = Field(None, ge=1)
    failure_threshold: int | None = Field(None, ge=1)

    @field_validator("scheme")
    @classmethod
    def _http_or_https(cls, value: str) -> str:
        if value not in ("http", "https"):
            raise Invalid(f"must be 'http' or 'https', got {show(value)}")
        return value


class ServerHardware(_Table):
    instance_type: str


class ServerEnv(_Table):
    docker_image: str
    ports: list[int]
    start_command: str
    start_command_args: str | None = None
    privileged: bool = False
    extended_shm: bool = True
    readiness_probe: HttpProbe | None = None
    vars: dict[str, str] = Field(default_factory=dict)

    _vars_are_names = field_validator("vars")(check_env_vars)

    @field_validator("ports")
    @classmethod
    def _tcp_ports(cls, ports: list[int]) -> list[int]:
        for index, port in enumerate(ports):
            if not 1 <= port <= 65535:
                raise Invalid(f"must be a port number from 1 to 65535, got {port}", index)
        return ports


class Server(_Table):
    """The inference server; only meaningful with `hardware.strategy = "inference"`."""

    hardware: ServerHardware
    env: ServerEnv
    models: list[DataSource] = Field(default_factory=list)
    output: Output | None = None


class CustomParams(_Table):
    python_version: str = "py3"
    sagemaker_job_name: str | None = None
    merge: bool = False
    dashboard: str | None = None
    region: str | None = None
    hyper_params: dict[str, Any] = Field(default_factory=dict)
    requirements: list[str] = Field(
        default_factory=list,
        description="SageMaker only. Extra pip requirement lines installed before the benchmark runs. Each "
        "line must start with a letter or digit and hold no whitespace-separated token starting with '-', "
        "so no pip options (--index-url, -r, --extra-index-url ...) can be injected; no control characters.",
    )
    max_run_seconds: int | None = Field(
        None, ge=1, description="SageMaker only. StoppingCondition.MaxRuntimeInSeconds; >= 1."
    )
    use_spot_instances: bool = Field(False, description="SageMaker only. Run on managed spot training.")
    max_wait_seconds: int | None = Field(
        None,
        ge=1,
        description="SageMaker only. StoppingCondition.MaxWaitTimeInSeconds: how long to wait for spot "
        "capacity plus run time. Only with use_spot_instances; >= max_run_seconds when both are given.",
    )
    checkpoint_s3_uri: str | None = Field(
        None, description="SageMaker only. CheckpointConfig.S3Uri, 's3://<bucket>[/<prefix>]'."
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="SageMaker only. Extra tags on the training job: with the executor's own anubis-* tags, "
        "at most SageMaker's TagList maximum (50); keys and values as SageMaker's TagKey (1-128) and "
        "TagValue (0-256 characters of letters, digits, spaces and '_.:/=+-@'); keys starting with 'aws:' "
        "or 'anubis-' are reserved (the executor sets anubis-* tags itself).",
    )

    custom_mpi_options: str | None = Field(
        None,
        description="SageMaker only, horovod only. Options for mpirun that replace the executor's default "
        "('-x HOROVOD_HIERARCHICAL_ALLREDUCE=1 ...'); one line, no control characters.",
    )

    @field_validator("custom_mpi_options")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(unicodedata.category(c) == "Cc" for c in value):
            raise Invalid(f"must be a single line without control characters, got {show(value)}")
        return value

    @field_validator("sagemaker_job_name")
    @classmethod
    def _job_name(cls, value: str | None) -> str | None:
        """SageMaker's ``TrainingJobName`` (``domain.constraints``): 1-63 letters, digits and '-'."""
        found = constraints.violations(constraints.TRAINING_JOB_NAME, value) if value is not None else []
        if found:
            raise Invalid(found[0].limit_text())
        return value

    @field_validator("requirements")
    @classmethod
    def _plain_requirements(cls, lines: list[str]) -> list[str]:
        for index, line in enumerate(lines):
            problem = requirement_line_problem(line)
            if problem is not None:
                raise Invalid(f"{problem}, got {show(line)}", index)
        return lines

    @field_validator("checkpoint_s3_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_s3_uri(value)
            except ValueError as error:
                raise Invalid(f"{error}, got {show(value)}") from None
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        # How many: with the executor's own, domain.preflight counts them against SageMaker's TagList.
        for key, value in tags.items():
            check_tag(key, value)
        return tags

    @model_validator(mode="after")
    def _spot_wait(self) -> "CustomParams":
        wait, run = self.max_wait_seconds, self.max_run_seconds
        if wait is not None and not self.use_spot_instances:
            raise Invalid("is only allowed with use_spot_instances = true", "max_wait_seconds")
        if wait is not None and run is not None and wait < run:
            raise Invalid(f"must be >= max_run_seconds ({run}), got {wait}", "max_wait_seconds")
        return self


class Descriptor(_Table):
    spec_version: str
    info: Info
    hardware: Hardware
    env: Env
    ml: Ml | None = None
    data: Data | None = None
    server: Server | None = None
    output: Output | None = None
    custom_params: CustomParams | None = None

    @model_validator(mode="after")
    def _server_iff_inference(self) -> "Descriptor":
        inference = self.hardware.strategy is Strategy.INFERENCE
        if inference and self.server is None:
            raise Invalid("is required when hardware.strategy is 'inference'", "server")
        if not inference and self.server is not None:
            raise Invalid(
                "is only allowed when hardware.strategy is 'inference', "
                f"not {self.hardware.strategy.value!r}",
                "server",
            )
        mpi_options = self.custom_params.custom_mpi_options if self.custom_params else None
        if mpi_options is not None and self.hardware.strategy is not Strategy.HOROVOD:
            raise Invalid(
                "is only used with hardware.strategy = 'horovod'", "custom_params", "custom_mpi_options"
            )
        return self
