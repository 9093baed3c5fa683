"""What a CreateTrainingJob request asks the local job runner to do, and what SageMaker derives from it.

Owns the pure half of the local SageMaker's run mode (``local.runner`` and its modules): reading
the request into a ``JobSpec``, refusing with a ``FailureReason`` what the runner cannot do on this
machine (``Unsupported``); the three files SageMaker writes under ``/opt/ml/input/config`` of each
host; where each S3 object of a channel lands under ``/opt/ml/input/data/<channel>/`` and which
host gets it; SageMaker's answer to a channel with no object; the ``FailureReason`` of an algorithm
that exits non-zero; and ``MetricDefinitions`` applied to log lines. No I/O, no clock: times come in
as arguments.

Sources for the shapes, since none is in botocore's model: resourceconfig.json and
inputdataconfig.json as training jobs print them (the SageMaker training toolkit logs both, and the
SageMaker developer guide "How Amazon SageMaker Provides Training Information"); the channel layout
as the SageMaker Python SDK's local mode downloads a prefix (``sagemaker.utils.download_folder``:
the key minus the prefix, a prefix that is itself an object lands under its base name, "folder"
keys ending in ``/`` are skipped); ``/opt/ml/output/failure`` as the developer guide's "How Amazon
SageMaker Processes Training Output" (its first 1,024 characters become ``FailureReason``), in the
wording jobs of custom containers report: ``AlgorithmError: <failure file>, exit code: <n>``
(``AlgorithmError: , exit code: 127`` for a missing entrypoint, in public error reports); the
"No S3 objects found under S3 URL" ``ValidationException`` as CreateTrainingJob answers it in public
error reports.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sagemaker_executor.domain.s3location import parse_s3_uri

INSTANCE_GROUP = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"
MAX_HOSTS = 16  # more processes than this on one shared machine is a mistake, not a benchmark
FAILURE_REASON_LIMIT = 1024  # botocore's model: FailureReason is at most 1,024 characters
CHANNEL_ROOT = "/opt/ml/input/data"


class Unsupported(Exception):
    """The request asks for something the local runner cannot do; ``reason`` is the job's FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _refuse(what: str) -> Unsupported:
    return Unsupported(f"ClientError: local SageMaker: {what}")


@dataclass(frozen=True)
class Channel:
    name: str
    uri: str
    bucket: str
    prefix: str
    distribution: str
    input_mode: str
    content_type: str | None = None
    record_wrapper: str | None = None

    def input_data_config(self) -> dict[str, str]:
        """This channel's entry in inputdataconfig.json."""
        entry = {} if self.content_type is None else {"ContentType": self.content_type}
        entry |= {
            "TrainingInputMode": self.input_mode,
            "S3DistributionType": self.distribution,
            "RecordWrapperType": self.record_wrapper or "None",
        }
        return entry


@dataclass(frozen=True)
class MetricDefinition:
    name: str
    regex: re.Pattern[str]


@dataclass(frozen=True)
class JobSpec:
    """A training job as the local runner executes it."""

    name: str
    arn: str
    role_arn: str
    image: str
    command: tuple[str, ...]
    environment: Mapping[str, str]
    hyperparameters: Mapping[str, str]
    channels: tuple[Channel, ...]
    instance_type: str
    instance_count: int
    output_bucket: str
    output_prefix: str
    max_runtime_seconds: float | None
    metric_definitions: tuple[MetricDefinition, ...] = ()
    notes: tuple[str, ...] = field(default=())  # said in every host's log after its first line

    @property
    def hosts(self) -> list[str]:
        return [f"algo-{index}" for index in range(1, self.instance_count + 1)]

    def output_key(self, file_name: str) -> str:
        """The key of ``<S3OutputPath>/<job>/output/<file_name>`` in ``output_bucket``."""
        return "/".join(part for part in (self.output_prefix, self.name, "output", file_name) if part)

    def output_uri(self, file_name: str) -> str:
        return f"s3://{self.output_bucket}/{self.output_key(file_name)}"

    @classmethod
    def from_request(cls, request: Mapping[str, Any], arn: str) -> JobSpec:
        """The spec of a CreateTrainingJob request (already valid against SageMaker's model);
        ``Unsupported`` for what this runner cannot do."""
        algorithm = request.get("AlgorithmSpecification") or {}
        image = algorithm.get("TrainingImage")
        if not image:
            raise _refuse("only jobs with a TrainingImage run here (AlgorithmName is not supported)")
        entrypoint = list(algorithm.get("ContainerEntrypoint") or [])
        if not entrypoint:
            raise _refuse(
                f"the job has no AlgorithmSpecification.ContainerEntrypoint, and image {image} is not "
                "pulled here (there is no container engine), so its own ENTRYPOINT is unknown"
            )
        resources = request.get("ResourceConfig") or {}
        if resources.get("InstanceGroups"):
            raise _refuse("ResourceConfig.InstanceGroups (heterogeneous clusters) are not supported")
        count = int(resources.get("InstanceCount", 1))
        if count > MAX_HOSTS:
            raise _refuse(f"InstanceCount {count}: at most {MAX_HOSTS} hosts run on this machine")
        output_path = (request.get("OutputDataConfig") or {}).get("S3OutputPath", "")
        if (request.get("OutputDataConfig") or {}).get("CompressionType", "GZIP") != "GZIP":
            raise _refuse("OutputDataConfig.CompressionType NONE is not supported")
        output_bucket, output_prefix = _split_s3_uri(output_path, "OutputDataConfig.S3OutputPath")
        default_mode = str(algorithm.get("TrainingInputMode") or "File")
        definitions, notes = _metric_definitions(algorithm.get("MetricDefinitions") or [])
        stopping = request.get("StoppingCondition") or {}
        max_runtime = stopping.get("MaxRuntimeInSeconds")
        return cls(
            name=str(request["TrainingJobName"]),
            arn=arn,
            role_arn=str(request.get("RoleArn", "")),
            image=str(image),
            command=tuple(str(part) for part in entrypoint + list(algorithm.get("ContainerArguments") or [])),
            environment={str(k): str(v) for k, v in (request.get("Environment") or {}).items()},
            hyperparameters={str(k): str(v) for k, v in (request.get("HyperParameters") or {}).items()},
            channels=tuple(_channel(entry, default_mode) for entry in request.get("InputDataConfig") or []),
            instance_type=str(resources.get("InstanceType", "")),
            instance_count=count,
            output_bucket=output_bucket,
            output_prefix=output_prefix.strip("/"),
            max_runtime_seconds=float(max_runtime) if max_runtime is not None else None,
            metric_definitions=definitions,
            notes=notes,
        )


def _split_s3_uri(uri: str, where: str) -> tuple[str, str]:
    try:
        location = parse_s3_uri(uri)
    except ValueError as error:
        raise _refuse(f"{where} {uri!r}: {error}") from None
    return location.bucket, location.key


def _channel(entry: Mapping[str, Any], default_mode: str) -> Channel:
    name = str(entry.get("ChannelName", ""))
    source = (entry.get("DataSource") or {}).get("S3DataSource")
    if source is None:
        raise _refuse(f"channel {name}: only S3DataSource is supported")
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise _refuse(f"channel {name}: S3DataType {source.get('S3DataType')} is not supported (S3Prefix is)")
    mode = str(entry.get("InputMode") or default_mode)
    if mode not in ("File", "FastFile"):
        raise _refuse(f"channel {name}: input mode {mode} is not supported (File and FastFile are)")
    uri = str(source.get("S3Uri", ""))
    bucket, prefix = _split_s3_uri(uri, f"channel {name} S3Uri")
    return Channel(
        name=name,
        uri=uri,
        bucket=bucket,
        prefix=prefix,
        distribution=str(source.get("S3DataDistributionType") or "FullyReplicated"),
        input_mode=mode,
        content_type=entry.get("ContentType"),
        record_wrapper=entry.get("RecordWrapperType"),
    )


def _metric_definitions(
    raw: Sequence[Mapping[str, str]],
) -> tuple[tuple[MetricDefinition, ...], tuple[str, ...]]:
    definitions, notes = [], []
    for entry in raw:
        try:
            definitions.append(MetricDefinition(entry["Name"], re.compile(entry["Regex"])))
        except re.error as error:
            notes.append(
                f"local SageMaker: metric {entry['Name']} is not collected: Python's re cannot read its "
                f"regex {entry['Regex']!r} ({error})"
            )
    return tuple(definitions), tuple(notes)


def resource_config(spec: JobSpec, host: str) -> dict[str, Any]:
    """resourceconfig.json of ``host``, keys in the order SageMaker writes them."""
    return {
        "current_host": host,
        "current_instance_type": spec.instance_type,
        "current_group_name": INSTANCE_GROUP,
        "hosts": spec.hosts,
        "instance_groups": [
            {"instance_group_name": INSTANCE_GROUP, "instance_type": spec.instance_type, "hosts": spec.hosts}
        ],
        "network_interface_name": NETWORK_INTERFACE,
    }


def input_data_config(spec: JobSpec) -> dict[str, dict[str, str]]:
    return {channel.name: channel.input_data_config() for channel in spec.channels}


def channel_file(channel: Channel, key: str) -> str | None:
    """Where the object ``key`` lands, relative to the channel's directory; None for a "folder" key.

    A key that would land outside the channel's directory (``..`` after the prefix) is refused."""
    if key.endswith("/"):
        return None
    exact = key == channel.prefix
    relative = posixpath.basename(key) if exact else key[len(channel.prefix) :].lstrip("/")
    normal = posixpath.normpath(relative)
    if not relative or normal.startswith("../") or normal in ("..", ".") or posixpath.isabs(normal):
        raise _refuse(f"channel {channel.name}: object s3://{channel.bucket}/{key} would land outside it")
    return normal


def objects_for_host(channel: Channel, keys: Sequence[str], host_index: int, host_count: int) -> list[str]:
    """The keys host ``host_index`` (0-based) receives: all of them (FullyReplicated), or every
    ``host_count``-th in key order (ShardedByS3Key; SageMaker documents a split, not its rule)."""
    ordered = sorted(keys)
    if channel.distribution != "ShardedByS3Key" or host_count == 1:
        return ordered
    return ordered[host_index::host_count]


def no_objects_message(channel: Channel, region: str, role_arn: str) -> str:
    """SageMaker's answer (a ``ValidationException`` of CreateTrainingJob) to a channel whose prefix
    matches no object."""
    return (
        f'No S3 objects found under S3 URL "{channel.uri}" given in input data source. Please ensure '
        f"that the bucket exists in the selected region ({region}), that objects exist under that S3 "
        f'prefix, and that the role "{role_arn}" has "s3:ListBucket" permissions on bucket '
        f'"{channel.bucket}".'
    )


def algorithm_error(exit_code: int, failure_file: str) -> str:
    """``FailureReason`` of an algorithm that exited with ``exit_code``, having written ``failure_file``
    (empty when it wrote none)."""
    text = failure_file[:FAILURE_REASON_LIMIT].rstrip()
    return f"AlgorithmError: {text}, exit code: {exit_code}"[:FAILURE_REASON_LIMIT]


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float
    timestamp: datetime


class MetricParser:
    """Applies ``MetricDefinitions`` to log lines; keeps the last value of each metric."""

    def __init__(self, definitions: Sequence[MetricDefinition]) -> None:
        self._definitions = tuple(definitions)
        self._last: dict[str, MetricValue] = {}

    def observe(self, line: str, when: datetime) -> None:
        for definition in self._definitions:
            match = definition.regex.search(line)
            if match is None:
                continue
            text = match.group(1) if definition.regex.groups else match.group(0)
            try:
                value = float(text)
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                self._last[definition.name] = MetricValue(definition.name, value, when)

    def final(self) -> list[MetricValue]:
        """``FinalMetricDataList``: the last value of each metric seen, in definition order."""
        return [self._last[d.name] for d in self._definitions if d.name in self._last]
