"""The Anubis benchmark descriptor: its typed model, its validation, and the SageMaker support check.

Owns the shape of `payload.toml.contents` (the descriptor TOML parsed to a table) and every rule a
descriptor must satisfy, as one frozen pydantic model per TOML table. The service calls
`parse_descriptor` on each `BAI_APP_FETCHER` event and then `check_sagemaker_support`; translation
reads the returned `Descriptor`. Every problem surfaces as a `DescriptorError` that names the first
offending field in document order, whatever JSON-like value comes in; a value with no strict JSON
form (NaN, an infinity, text with a lone surrogate) is one of those problems (see `parse_descriptor`).

Rules follow CONTRACT.md §8 with the original's bugs fixed (§10): unknown keys are a
`DescriptorError`, single-node jobs may have one instance, and `info.task_name` is accepted.
SageMaker's own limits on a value that reaches the training job as it is (the job name, a tag, a
channel name) are `domain.constraints`' (botocore's SageMaker model), asked here so the user hears
early; every other SageMaker limit, and everything that depends on what the executor adds, is checked
on the final request by `domain.preflight`. No limit of SageMaker's is written down here.
Pure: no I/O, no clock.
"""

import re
import reprlib
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from enum import StrEnum
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from sagemaker_executor.domain import constraints, instances
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.requirements import requirement_line_problem
from sagemaker_executor.domain.s3location import parse_s3_uri
from sagemaker_executor.domain.shell import NAME_RULE, is_environment_variable_name
from sagemaker_executor.domain.strictjson import first_unfit

ROOT = "<root>"
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


class _Invalid(ValueError):
    """Raised by validators; `at` continues the path below the value being validated."""

    def __init__(self, reason: str, *at: str | int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.at = at


_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = 4


def _show(value: object) -> str:
    """Short `repr (type)` of a user value; huge or deeply nested values are abbreviated."""
    try:
        text = _REPR.repr(value)
    except Exception:  # e.g. an int past Python's digit limit refuses repr()
        text = "<unprintable>"
    return f"{text} ({type(value).__name__})"


def _enum(enum_cls: type[StrEnum], value: object) -> Any:
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        try:
            return enum_cls(value)
        except ValueError:
            pass
    allowed = ", ".join(repr(member.value) for member in enum_cls)
    raise _Invalid(f"must be one of {allowed}, got {_show(value)}")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise _Invalid("must not be empty")
    return value


# ---------------------------------------------------------------- the model, one class per table

_LABEL = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_MD5 = re.compile(r"[^:]+:[a-fA-F0-9]+|[a-fA-F0-9]{32}|")
_SCRIPT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.tar")
_RESERVED_TAG_PREFIXES = ("aws:", "anubis-")
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
            raise _Invalid(f"must be one of {', '.join(map(repr, EXECUTION_ENGINES))}, got {_show(value)}")
        return value

    @field_validator("scheduling")
    @classmethod
    def _single_run(cls, value: str) -> str:
        # The service routes scheduled benchmarks away before parsing (translation.routing); one that
        # reaches this far was sent here by mistake.
        if value != SINGLE_RUN:
            owner = "a scheduled benchmark is the Kubernetes executor's"
            raise _Invalid(f"must be {SINGLE_RUN!r}: {owner}, got {_show(value)}")
        return value

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > MAX_LABELS:
            raise _Invalid(f"at most {MAX_LABELS} labels are allowed, got {len(labels)}")
        for key, value in labels.items():
            if not _LABEL.fullmatch(key):
                raise _Invalid(f"label name {_show(key)} must be {_LABEL_RULE}", key)
            if value and not _LABEL.fullmatch(value):
                raise _Invalid(f"label value {_show(value)} must be empty or {_LABEL_RULE}", key)
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
            raise _Invalid(f"must be 'gpus' or a positive integer as a string, got {_show(value)}")
        return value


class Hardware(_Table):
    instance_type: str
    strategy: Strategy = Strategy.SINGLE_NODE
    distributed: Distributed | None = None
    aws_zone_id: str | None = None
    availability_zone: str | None = None

    _instance_type_not_blank = field_validator("instance_type")(_not_blank)

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, value: object) -> Any:
        return _enum(Strategy, value)

    @property
    def instance_count(self) -> int:
        """Number of instances; one unless `[hardware.distributed]` says otherwise (fixes §10.4)."""
        return self.distributed.num_instances if self.distributed else 1


def _check_env_vars(variables: dict[str, str]) -> dict[str, str]:
    for name, value in variables.items():
        if not is_environment_variable_name(name):
            raise _Invalid(f"variable name {_show(name)} must be {NAME_RULE}", name)
        if "\0" in value:
            raise _Invalid("must not contain a NUL character", name)
    return variables


class Env(_Table):
    docker_image: str
    vars: dict[str, str] = Field(default_factory=dict)
    privileged: bool = False
    extended_shm: bool = True

    _docker_image_not_blank = field_validator("docker_image")(_not_blank)
    _vars_are_names = field_validator("vars")(_check_env_vars)


class Script(_Table):
    script: str = Field(description="Name of the tar file the client uploaded with --script, '<sha1>.tar'.")

    @field_validator("script")
    @classmethod
    def _tar_file_name(cls, value: str) -> str:
        if not _SCRIPT.fullmatch(value):
            raise _Invalid(f"must be a plain file name ending in '.tar' (no directories), got {_show(value)}")
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
        return _enum(Framework, value)

    @model_validator(mode="after")
    def _version_needs_framework(self) -> "Ml":
        if self.framework_version is not None and self.framework is Framework.NONE:
            raise _Invalid(
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
            raise _Invalid(f"must be 32 hex digits, '<algorithm>:<hex digest>' or empty, got {_show(value)}")
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
            raise _Invalid(f"must be a regular expression, {_show(value)} is not: {exc}") from None
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
            raise _Invalid(f"must be 'http' or 'https', got {_show(value)}")
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

    _vars_are_names = field_validator("vars")(_check_env_vars)

    @field_validator("ports")
    @classmethod
    def _tcp_ports(cls, ports: list[int]) -> list[int]:
        for index, port in enumerate(ports):
            if not 1 <= port <= 65535:
                raise _Invalid(f"must be a port number from 1 to 65535, got {port}", index)
        return ports


class Server(_Table):
    """The inference server; only meaningful with `hardware.strategy = "inference"`."""

    hardware: ServerHardware
    env: ServerEnv
    models: list[DataSource] = Field(default_factory=list)
    output: Output | None = None


def _check_tag(key: str, value: str) -> None:
    """SageMaker's ``TagKey`` and ``TagValue`` (``domain.constraints``), and the reserved prefixes."""
    for what, shape, text in (("key", constraints.TAG_KEY, key), ("value", constraints.TAG_VALUE, value)):
        found = constraints.violations(shape, text)
        if found:
            raise _Invalid(f"tag {what}: {found[0].limit_text()}", key)
    if key.lower().startswith(_RESERVED_TAG_PREFIXES):
        raise _Invalid(f"tag key {_show(key)} uses a reserved prefix ('aws:' or 'anubis-')", key)


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
            raise _Invalid(f"must be a single line without control characters, got {_show(value)}")
        return value

    @field_validator("sagemaker_job_name")
    @classmethod
    def _job_name(cls, value: str | None) -> str | None:
        """SageMaker's ``TrainingJobName`` (``domain.constraints``): 1-63 letters, digits and '-'."""
        found = constraints.violations(constraints.TRAINING_JOB_NAME, value) if value is not None else []
        if found:
            raise _Invalid(found[0].limit_text())
        return value

    @field_validator("requirements")
    @classmethod
    def _plain_requirements(cls, lines: list[str]) -> list[str]:
        for index, line in enumerate(lines):
            problem = requirement_line_problem(line)
            if problem is not None:
                raise _Invalid(f"{problem}, got {_show(line)}", index)
        return lines

    @field_validator("checkpoint_s3_uri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_s3_uri(value)
            except ValueError as error:
                raise _Invalid(f"{error}, got {_show(value)}") from None
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        # How many: with the executor's own, domain.preflight counts them against SageMaker's TagList.
        for key, value in tags.items():
            _check_tag(key, value)
        return tags

    @model_validator(mode="after")
    def _spot_wait(self) -> "CustomParams":
        wait, run = self.max_wait_seconds, self.max_run_seconds
        if wait is not None and not self.use_spot_instances:
            raise _Invalid("is only allowed with use_spot_instances = true", "max_wait_seconds")
        if wait is not None and run is not None and wait < run:
            raise _Invalid(f"must be >= max_run_seconds ({run}), got {wait}", "max_wait_seconds")
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
            raise _Invalid("is required when hardware.strategy is 'inference'", "server")
        if not inference and self.server is not None:
            raise _Invalid(
                "is only allowed when hardware.strategy is 'inference', "
                f"not {self.hardware.strategy.value!r}",
                "server",
            )
        mpi_options = self.custom_params.custom_mpi_options if self.custom_params else None
        if mpi_options is not None and self.hardware.strategy is not Strategy.HOROVOD:
            raise _Invalid(
                "is only used with hardware.strategy = 'horovod'", "custom_params", "custom_mpi_options"
            )
        return self


# ---------------------------------------------------------------- pydantic errors -> DescriptorError

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "a boolean (true or false)",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _strip_optional(annotation: object) -> object:
    if get_origin(annotation) in (Union, UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _field_at(loc: Sequence[str | int]) -> tuple[object, FieldInfo | None]:
    """The annotation at `loc` inside Descriptor and the FieldInfo of the model field it ends on."""
    annotation: object = Descriptor
    info: FieldInfo | None = None
    for part in loc:
        annotation = _strip_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            info = annotation.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None, None
            annotation = info.annotation
        elif get_origin(annotation) in (list, dict):
            annotation, info = get_args(annotation)[-1], None
        else:
            return None, None
    return _strip_optional(annotation), info


def _bounds(loc: Sequence[str | int]) -> str:
    _, info = _field_at(loc)
    words = []
    for limit in info.metadata if info else ():
        for attr, symbol in (("ge", ">="), ("le", "<=")):
            if getattr(limit, attr, None) is not None:
                words.append(f"{symbol} {getattr(limit, attr)}")
    return (" " + " and ".join(words)) if words else ""


def _reason(error: Mapping[str, Any]) -> tuple[tuple[str | int, ...], str]:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), _Invalid):
        return loc + ctx["error"].at, ctx["error"].reason
    if kind == "invalid_key":
        return loc, f"keys must be strings, got {_show(value)}"
    if loc and loc[-1] == "[key]":
        return loc[:-1], f"key must be a string, got {_show(loc[-2] if len(loc) > 1 else value)}"
    if kind == "missing":
        return loc, "is required"
    if kind == "extra_forbidden":
        model, _ = _field_at(loc[:-1])
        allowed = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
        return loc, f"unknown key {_REPR.repr(loc[-1])} (allowed: {', '.join(allowed)})"
    if kind in _EXPECTED:
        return (
            loc,
            f"must be {_EXPECTED[kind]}{_bounds(loc) if kind == 'int_type' else ''}, got {_show(value)}",
        )
    for key, symbol in (("ge", ">="), ("le", "<=")):
        if key in ctx:
            return loc, f"must be {symbol} {ctx[key]}, got {_show(value)}"
    return loc, f"{error.get('msg', 'is invalid')}, got {_show(value)}"


def _document_position(data: object, loc: Sequence[str | int]) -> tuple[int, ...]:
    """Where `loc` sits in the input, in key order; a missing key sorts at the end of its table."""
    position = []
    node: object = data
    for part in loc:
        if isinstance(node, Mapping):
            keys = list(node)
            if part in node:
                position.append(keys.index(part))
                node = node[part]
                continue
            position.append(len(keys))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            position.append(part)
            node = node[part]
            continue
        break
    return tuple(position)


def field_path(loc: Sequence[str | int]) -> str:
    """Dotted path for a location, e.g. ("data", "sources", 0, "src") -> "data.sources[0].src"."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f"[{_REPR.repr(part)}]"
    return path or ROOT


def _first_problem(
    error: ValidationError, data: object, unfit: tuple[tuple[str | int, ...], str] | None
) -> DescriptorError:
    problems = [_reason(e) for e in error.errors(include_url=False)]
    if unfit is not None:
        problems.append(unfit)  # after pydantic's: at the same place, its "must be an integer" says more
    loc, reason = min(problems, key=lambda problem: _document_position(data, problem[0]))
    return DescriptorError(field_path(loc), reason)


# ---------------------------------------------------------------- public entry points


def parse_descriptor(contents: Mapping[str, Any]) -> Descriptor:
    """Validate descriptor contents (TOML parsed to a table); raise DescriptorError, nothing else.

    Every value is first checked to have a strict JSON form (``domain.strictjson.first_unfit``): no
    NaN or infinity (valid TOML 1.0, but no JSON has them, and they would reach SageMaker and the
    executor event), no string or key that is not Unicode text (a lone surrogate from a ``\\u``
    escape, which nothing downstream can encode). Such a value is refused wherever it sits, even in
    the free-form ``custom_params.hyper_params``; the first problem in document order is reported,
    whichever check found it.
    """
    data: object = contents
    if isinstance(contents, Mapping) and not isinstance(contents, dict):
        data = dict(contents)
    unfit = first_unfit(data)
    try:
        descriptor = Descriptor.model_validate(data)
    except ValidationError as error:
        raise _first_problem(error, data, unfit) from None
    if unfit is not None:
        raise DescriptorError(field_path(unfit[0]), unfit[1])
    return descriptor


def parse_descriptor_toml(text: str) -> Descriptor:
    """Parse descriptor TOML text and validate it like `parse_descriptor`."""
    try:
        contents = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        raise DescriptorError(ROOT, f"not valid TOML: {error or 'nested too deeply'}") from None
    return parse_descriptor(contents)


def check_sagemaker_support(d: Descriptor) -> None:
    """Raise DescriptorError for a valid descriptor the SageMaker engine cannot run."""
    if d.info.execution_engine != SAGEMAKER_ENGINE:
        raise DescriptorError(
            "info.execution_engine",
            f"must be {SAGEMAKER_ENGINE!r} for the SageMaker executor, got {d.info.execution_engine!r}",
        )
    if d.hardware.strategy is Strategy.INFERENCE:
        raise DescriptorError(
            "hardware.strategy",
            "'inference' is not supported by the SageMaker executor (use single_node or horovod)",
        )
    instances.check_sagemaker_instance_type(d.hardware.instance_type)
    distributed = d.hardware.distributed
    if (
        distributed
        and distributed.processes_per_instance == "gpus"
        and instances.gpus_per_instance(d.hardware.instance_type) == 0
    ):
        note = instances.accelerator_note(d.hardware.instance_type)
        raise DescriptorError(
            "hardware.distributed.processes_per_instance",
            f"'gpus' needs a GPU instance, but {d.hardware.instance_type} has no GPUs"
            + (f" ({note})" if note else "")
            + "; give the number of processes as a string instead",
        )
    _check_channels(d)


def channel_name(index: int, source_id: str | None) -> str:
    """The input channel data source ``index`` becomes (CONTRACT §7): its ``id``, or ``src<index>``."""
    return source_id if source_id is not None else f"src{index}"


def _check_channels(d: Descriptor) -> None:
    """Each data source becomes the input channel `id`, or `src<index>` without one (CONTRACT §7): a
    SageMaker ``ChannelName`` (``domain.constraints``), distinct from the others."""
    seen: set[str] = set()
    for index, source in enumerate(d.data.sources if d.data else []):
        channel = channel_name(index, source.id)
        found = constraints.violations("ChannelName", channel)
        if found:
            raise DescriptorError(
                f"data.sources[{index}].id", f"becomes a SageMaker channel name: {found[0].limit_text()}"
            )
        if channel in seen:
            raise DescriptorError(f"data.sources[{index}].id", f"channel name {channel!r} is used twice")
        seen.add(channel)
