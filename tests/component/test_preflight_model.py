"""Issue 9, tested from the model rather than from a hand list of limits.

Every member of the CreateTrainingJob input that the executor's requests reach and that botocore's
SageMaker model constrains (length, pattern, list and map sizes, value ranges, integer widths; plus the
API reference's 28 days) is found by walking the model along three requests the executor builds, a
script-mode job with every option, a command-mode job and a bring-your-own-container job. For each of
its limits the test generates a value just inside and one just outside, from the model's own numbers
and patterns, and checks twice:

* in the request itself: ``domain.constraints`` finds a violation exactly at that member when the
  value is outside, none there when inside, and the local SageMaker (in-process, moto) answers the same
  request with the same ``ValidationException``, or accepts it;
* through the executor: the member's knob (the descriptor field, event field or setting it comes
  from, :data:`KNOBS`) is set so the request carries that value, and the submission is refused before
  any AWS call with an ERROR naming that knob when outside, and accepted when inside -- by the
  pre-flight check and by the local SageMaker alike.

:data:`KNOBS` says only how each member is reached; a member the model starts constraining, or one
the executor starts sending, has no knob and fails ``test_every_constrained_member_has_a_knob``.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from sagemaker_executor.domain import bootstrap, constraints, javaregex, violation
from sagemaker_executor.domain.descriptor import check_sagemaker_support, parse_descriptor
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.request import create_training_job_request, source_uri
from sagemaker_executor.domain.translation import ExecutorSite, translate
from sagemaker_executor.local.sagemaker import LocalSageMaker
from sagemaker_executor.service.outcomes import EXPECTED_ERRORS, user_message
from sagemaker_executor.service.submission import planned_job
from tests.builders import SITE, fetcher_event, minimal_contents

OPERATION = "CreateTrainingJob"
GIB = 1024**3
Path = tuple[str, ...]  # member names; "[]" a list's first item, "{}" a map's first value, "{key}" its key

# Characters tried against a pattern: appended to (or put before) a valid value, the first one the
# pattern refuses makes the "outside" value; all those it accepts together make the "inside" one.
CANDIDATES = [
    " ",
    "#",
    "\n",
    "é",
    "_",
    ":",
    "/",
    "=",
    "+",
    "-",
    "@",
    ".",
    "中",
    "\t",
    "!",
    ";",
    "~",
    "A",
    "0",
]
FILLERS = ["a", "0", "-", "_"]


@dataclass
class Inputs:
    """What a submission is made of: the descriptor, the fetcher's event and the executor's settings."""

    contents: dict[str, Any]
    event: dict[str, Any]
    site: ExecutorSite


def _baselines() -> dict[str, Inputs]:
    site = replace(SITE, subnets=("subnet-1",), security_group_ids=("sg-1",))
    script = minimal_contents(
        ml={"benchmark_code": "python b.py", "framework": "pytorch", "framework_version": "2.1"},
        output={"metrics": [{"name": "acc", "units": "%", "pattern": "acc=([0-9.]+)"}]},
        data={"sources": [{"src": "s3://data/d0", "path": "/d0", "id": "train"}]},
        custom_params={
            "hyper_params": {"lr": 0.1},
            "tags": {"team": "perf"},
            "use_spot_instances": True,
            "max_run_seconds": 3600,
            "max_wait_seconds": 7200,
            "checkpoint_s3_uri": "s3://ckpt/run",
        },
    )
    dataset = {
        "src": "s3://data/d0",
        "path": "/d0",
        "id": "train",
        "dst": "s3://fetched/d0",
        "size_info": {"total_size": 100 * GIB, "file_count": 1, "max_size": 1},
    }
    byoc = minimal_contents(
        ml={"args": "--epochs 3"},
        env={
            "docker_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/algo:1",
            "vars": {"MODE": "bench"},
        },
        custom_params={"hyper_params": {"epochs": "3"}},
    )
    command = minimal_contents(
        env={"docker_image": "python:3-alpine"},
        data={"sources": [{"src": "s3://data/d0", "path": "/d0", "id": "train"}]},
    )
    return {  # a member is tried on the first of these that sends it
        "script": Inputs(script, fetcher_event(script, datasets=[dataset]), site),
        "command": Inputs(command, fetcher_event(command, datasets=[dataset]), site),
        "byoc": Inputs(byoc, fetcher_event(byoc), site),
    }


BASELINES = _baselines()


def checked_request(inputs: Inputs) -> dict[str, Any] | str:
    """The request the executor would send, or the ERROR message it answers instead (pre-flight on)."""
    try:
        spec = planned_job(inputs.event, inputs.site)
    except EXPECTED_ERRORS as error:
        return user_message(error)
    return create_training_job_request(spec, source_uri(spec), inputs.site.region)


def unchecked_request(inputs: Inputs) -> dict[str, Any] | None:
    """The request as it would be built without the pre-flight check; None if refused before it."""
    try:
        event = FetcherBenchmarkEvent.model_validate(inputs.event)
        descriptor = parse_descriptor(inputs.contents)
        check_sagemaker_support(descriptor)
        spec = translate(descriptor, event, inputs.site)
        return create_training_job_request(spec, source_uri(spec), inputs.site.region)
    except EXPECTED_ERRORS:
        return None


REQUESTS = {name: checked_request(inputs) for name, inputs in BASELINES.items()}


# ---------------------------------------------------------------- the constrained members, from the model


def _constrained(shape: str) -> bool:
    kind = constraints.shape_type(shape)
    low, high, pattern = constraints.shape_limits(shape)
    return kind in constraints.INT_RANGES or (
        kind in ("string", "list", "map") and (bool(low) or high is not None or pattern is not None)
    )


def _walk(shape: str, value: Any, path: Path, found: dict[Path, str]) -> None:
    if _constrained(shape):
        found.setdefault(path, shape)
    kind = constraints.shape_type(shape)
    if kind == "structure":
        for member, item in value.items():
            _walk(constraints.member_shape(shape, member), item, (*path, member), found)
    elif kind == "list":
        for item in value:
            _walk(constraints.member_shape(shape, "member"), item, (*path, "[]"), found)
    elif kind == "map":
        for key, item in value.items():
            _walk(constraints.member_shape(shape, "key"), key, (*path, "{key}"), found)
            _walk(constraints.member_shape(shape, "value"), item, (*path, "{}"), found)


def reachable_members() -> dict[Path, tuple[str, str]]:
    """``{member: (shape, baseline)}`` for every constrained member of the executor's requests."""
    found: dict[Path, tuple[str, str]] = {}
    for name, request in REQUESTS.items():
        assert isinstance(request, dict), request
        members: dict[Path, str] = {}
        _walk(constraints.input_shape(OPERATION) or "", request, (), members)
        for path, shape in members.items():
            found.setdefault(path, (shape, name))
    return found


def concrete(request: dict[str, Any], member: Path) -> tuple[str | int, ...]:
    """The path of the member's first instance in ``request`` (``[]`` -> 0, ``{}``/``{key}`` -> the key)."""
    path: list[str | int] = []
    node: Any = request
    for part in member:
        if part == "[]":
            path.append(0)
            node = node[0]
        elif part in ("{}", "{key}"):
            key = next(iter(node))
            path.append(key)
            node = node[key]
        else:
            path.append(part)
            node = node[part]
    return tuple(path)


def value_at(request: dict[str, Any], member: Path) -> Any:
    node: Any = request
    for part, step in zip(member, concrete(request, member), strict=True):
        node = node[step] if part != "{key}" else step
    return node


# ---------------------------------------------------------------- values just inside and just outside


@dataclass(frozen=True)
class Case:
    member: Path
    limit: str
    value: Any  # a string, an integer, or the number of entries of a list or map
    inside: bool

    @property
    def id(self) -> str:
        shown = self.value if not isinstance(self.value, str) else f"{len(self.value)} chars"
        where = ".".join(self.member).replace("[]", "*")
        return f"{where} {self.limit} {'inside' if self.inside else 'outside'} ({shown})"


def _matches(pattern: str | None, text: str) -> bool:
    return pattern is None or javaregex.java_regex(pattern).fullmatch(text) is not None


def _of_length(base: str, length: int, pattern: str | None) -> str | None:
    """A text of ``length`` characters made from ``base`` that the pattern accepts, if there is one."""
    tries = [base[:length]] if length <= len(base) else [base + f * (length - len(base)) for f in FILLERS]
    tries += [f * length for f in FILLERS]
    return next((text for text in tries if _matches(pattern, text)), None)


def _string_cases(member: Path, shape: str, base: str) -> Iterator[Case]:
    low, high, pattern = constraints.shape_limits(shape)
    if high is not None:
        for length, inside in ((high, True), (high + 1, False)):
            text = _of_length(base, length, pattern) or (
                None if inside else base + "a" * (length - len(base))
            )
            if text is not None:
                yield Case(member, f"length<={high}", text, inside)
    if low:
        inner = _of_length(base, low, pattern)
        if inner is not None:
            yield Case(member, f"length>={low}", inner, True)
        yield Case(member, f"length>={low}", base[: low - 1], False)
    if pattern is not None:
        room = (high or 10**6) - len(base)
        refused = [base + c for c in CANDIDATES if not _matches(pattern, base + c)]
        refused += [c + base for c in CANDIDATES if not _matches(pattern, c + base)]
        if refused and room >= 1:
            yield Case(member, "pattern", refused[0], False)
        accepted = base + "".join(c for c in CANDIDATES if _matches(pattern, base + c))[:room]
        if accepted != base and _matches(pattern, accepted):
            yield Case(member, "pattern", accepted, True)


def _count_cases(member: Path, shape: str) -> Iterator[Case]:
    low, high, _ = constraints.shape_limits(shape)
    if high is not None:
        yield Case(member, f"entries<={high}", high, True)
        yield Case(member, f"entries<={high}", high + 1, False)
    if low:
        yield Case(member, f"entries>={low}", low, True)
        yield Case(member, f"entries>={low}", low - 1, False)


# Rules of the API reference that bound a member beyond its shape (``domain.constraints``).
DOCUMENTED_MAX: dict[Path, int] = {
    ("StoppingCondition", "MaxRuntimeInSeconds"): constraints.MAX_RUNTIME_SECONDS
}


def _integer_cases(member: Path, shape: str) -> Iterator[Case]:
    low, high, _ = constraints.shape_limits(shape)
    type_low, type_high = constraints.INT_RANGES[constraints.shape_type(shape)]
    documented = DOCUMENTED_MAX.get(member)
    lowest = max(b for b in (low, type_low) if b is not None)
    highest = min(b for b in (high, type_high, documented) if b is not None)
    for name, bound, step in (
        ("min", low, -1),
        ("max", high, 1),
        ("width-min", type_low, -1),
        ("width-max", type_high, 1),
        ("documented-max", documented, 1),
    ):
        if bound is None:
            continue
        if lowest <= bound <= highest:
            yield Case(member, name, bound, True)
        yield Case(member, name, bound + step, False)


def generate_cases() -> list[Case]:
    cases: list[Case] = []
    for member, (shape, baseline) in reachable_members().items():
        kind = constraints.shape_type(shape)
        if kind == "string":
            base = value_at(copy.deepcopy(REQUESTS[baseline]), member)  # type: ignore[arg-type]
            cases += _string_cases(member, shape, base)
        elif kind in ("list", "map"):
            cases += _count_cases(member, shape)
        else:
            cases += _integer_cases(member, shape)
    return cases


CASES = generate_cases()


# ---------------------------------------------------------------- setting a member in a request


def _distinct(item: Any, index: int) -> Any:
    """A copy of a list or map entry made distinct by ``index`` where SageMaker wants names unique."""
    copied = copy.deepcopy(item)
    if isinstance(copied, dict):
        for name in ("ChannelName", "Key", "Name"):
            if name in copied:
                copied[name] = f"{copied[name]}{index}"
                return copied
    if isinstance(copied, str):
        return f"{copied}{index}"
    return copied


def resized(container: Any, count: int) -> Any:
    if isinstance(container, dict):
        items = list(container.items())
        return {
            (key if i < len(items) else f"{key}{i}"): value
            for i, (key, value) in ((i, items[i % len(items)]) for i in range(count))
        }
    return [
        container[i] if i < len(container) else _distinct(container[i % len(container)], i)
        for i in range(count)
    ]


def with_value(request: dict[str, Any], case: Case) -> dict[str, Any]:
    """A copy of ``request`` whose member ``case.member`` is ``case.value`` (a count resizes it)."""
    changed = copy.deepcopy(request)
    path = concrete(changed, case.member)
    node: Any = changed
    for step in path[:-1]:
        node = node[step]
    last, kind = path[-1], case.member[-1]
    shape = reachable_members()[case.member][0]
    if constraints.shape_type(shape) in ("list", "map"):
        node[last] = resized(node[last], case.value)
    elif kind == "{key}":  # renamed in place: the first key stays the first
        node_items = list(node.items())
        node.clear()
        node.update({(case.value if key == last else key): value for key, value in node_items})
    else:
        node[last] = case.value
    return changed


# ---------------------------------------------------------------- the local SageMaker


@pytest.fixture(scope="module")
def sagemaker() -> Iterator[Any]:
    with mock_aws(), LocalSageMaker():
        # botocore's own checks (required, min) would answer before the service does.
        yield boto3.client("sagemaker", region_name="us-east-1", config=Config(parameter_validation=False))


_names = iter(range(10**6))


def local_answer(sagemaker: Any, request: dict[str, Any], member: Path) -> str | None:
    """The local SageMaker's ValidationException message for ``request``, None if it takes it."""
    sent = copy.deepcopy(request)
    if member != ("TrainingJobName",):
        sent["TrainingJobName"] = f"case-{next(_names)}"  # every accepted request creates a job
    try:
        sagemaker.create_training_job(**sent)
    except ClientError as error:
        code, message = error.response["Error"]["Code"], error.response["Error"]["Message"]
        if code == "ResourceInUse":  # a name taken by an earlier case: validation passed
            return None
        assert code == "ValidationException", (code, message)
        return str(message)
    return None


# ---------------------------------------------------------------- knobs: where each member comes from


class Unreachable(Exception):
    """The executor cannot put this value there from any descriptor, event or setting."""


def _params(inputs: Inputs) -> dict[str, Any]:
    params: dict[str, Any] = inputs.contents.setdefault("custom_params", {})
    return params


def _set_job_name(inputs: Inputs, value: str) -> None:
    _params(inputs)["sagemaker_job_name"] = value


def _set_image(inputs: Inputs, value: str) -> None:
    inputs.contents["env"]["docker_image"] = value


def _set_metric_count(inputs: Inputs, count: int) -> None:
    metric = inputs.contents["output"]["metrics"][0]
    inputs.contents["output"]["metrics"] = [{**metric, "name": f"m{i}"} for i in range(count)]


def _set_metric(member: str) -> Callable[[Inputs, str], None]:
    def set_metric(inputs: Inputs, value: str) -> None:
        inputs.contents["output"]["metrics"][0][member] = value

    return set_metric


def _set_role(inputs: Inputs, value: str) -> None:
    inputs.site = replace(inputs.site, role_arn=value)


def _set_channel_count(inputs: Inputs, count: int) -> None:
    if count < 1:
        raise Unreachable("without data sources the executor sends the no-data channel")
    inputs.contents["data"]["sources"] = [{"src": f"s3://data/d{i}", "path": f"/d{i}"} for i in range(count)]
    inputs.event["payload"]["datasets"] = [
        {"src": f"s3://data/d{i}", "path": f"/d{i}", "dst": f"s3://fetched/d{i}"} for i in range(count)
    ]


def _set_dataset_uri(inputs: Inputs, value: str) -> None:
    inputs.event["payload"]["datasets"][0]["dst"] = value


def _set_channel_name(inputs: Inputs, value: str) -> None:
    inputs.contents["data"]["sources"][0]["id"] = value
    inputs.event["payload"]["datasets"][0]["id"] = value


def _set_output(inputs: Inputs, value: str) -> None:
    if not value.startswith("s3://"):
        raise Unreachable("the output path is always s3://SAGEMAKER_OUTPUT_BUCKET")
    inputs.site = replace(inputs.site, output_bucket=value.removeprefix("s3://"))


def _set_volume(inputs: Inputs, volume: int) -> None:
    """``translation.volume_size_gb`` backwards: the dataset size whose estimate is ``volume`` GB."""
    if volume < 30:
        raise Unreachable("the volume estimate is never under 30 GB")
    gib = 0 if volume == 30 else -(-volume * 10 // 11)
    while gib * 11 // 10 < volume:
        gib += 1
    if max(30, gib * 11 // 10) != volume:
        raise Unreachable(f"no dataset size gives {volume} GB")
    inputs.event["payload"]["datasets"][0]["size_info"]["total_size"] = gib * GIB


def _set_instances(inputs: Inputs, count: int) -> None:
    inputs.contents["hardware"]["distributed"] = {"num_instances": count}


def _set_max_run(inputs: Inputs, seconds: int) -> None:
    params = _params(inputs)
    params.update(use_spot_instances=False, max_run_seconds=seconds)
    params.pop("max_wait_seconds")


def _set_max_wait(inputs: Inputs, seconds: int) -> None:
    _params(inputs).update(use_spot_instances=True, max_run_seconds=1, max_wait_seconds=seconds)


def _set_tag_count(inputs: Inputs, count: int) -> None:
    own = 2  # anubis-action-id, anubis-client-id
    if count < own:
        raise Unreachable("the executor's own tags are always there")
    _params(inputs)["tags"] = {f"t{i}": "v" for i in range(count - own)}


def _set_tag_key(inputs: Inputs, value: str) -> None:
    _params(inputs)["tags"] = {value: "perf"}


def _set_tag_value(inputs: Inputs, value: str) -> None:
    _params(inputs)["tags"] = {"team": value}


def _set_hyper_count(inputs: Inputs, count: int) -> None:
    _params(inputs)["hyper_params"] = {f"h{i}": "1" for i in range(count)}


def _set_hyper_key(inputs: Inputs, value: str) -> None:
    _params(inputs)["hyper_params"] = {value: "3"}


def _set_hyper_value(inputs: Inputs, value: str) -> None:
    _params(inputs)["hyper_params"] = {"epochs": value}


def _set_ids(setting: str) -> Callable[[Inputs, Any], None]:
    def set_ids(inputs: Inputs, value: Any) -> None:
        ids = tuple(f"{setting[:2]}-{i}" for i in range(value)) if isinstance(value, int) else (value,)
        if not ids:
            raise Unreachable("without them the executor sends no VpcConfig")
        changes: dict[str, Any] = {setting: ids}  # one of the site's tuple-of-ids fields
        inputs.site = replace(inputs.site, **changes)

    return set_ids


def _set_checkpoint(inputs: Inputs, value: str) -> None:
    _params(inputs)["checkpoint_s3_uri"] = value


def _set_arg_count(inputs: Inputs, count: int) -> None:
    if count == 0:
        raise Unreachable("without ml.args the executor sends no ContainerArguments")
    inputs.contents["ml"]["args"] = " ".join(f"a{i}" for i in range(count))


def _set_arg(inputs: Inputs, value: str) -> None:
    inputs.contents["ml"]["args"] = shlex.quote(value)


def _set_env_count(inputs: Inputs, count: int) -> None:
    inputs.contents["env"]["vars"] = {f"V{i}": "1" for i in range(count)}


def _set_env_name(inputs: Inputs, value: str) -> None:
    inputs.contents["env"]["vars"] = {value: "bench"}


def _set_env_value(inputs: Inputs, value: str) -> None:
    inputs.contents["env"]["vars"] = {"MODE": value}


@dataclass(frozen=True)
class Knob:
    """How a member is set from a submission. ``source``: the start of what the ERROR names.
    ``stricter``: values the descriptor refuses by a rule of its own, though SageMaker takes them."""

    source: str
    baseline: str
    set: Callable[[Inputs, Any], None]
    stricter: Callable[[Any], bool] = field(default=lambda value: False)


def _descriptor(path: str) -> str:
    return f"descriptor field '{path}"


KNOBS: dict[Path, Knob] = {
    ("TrainingJobName",): Knob(_descriptor("custom_params.sagemaker_job_name'"), "script", _set_job_name),
    ("AlgorithmSpecification", "TrainingImage"): Knob(
        _descriptor("env.docker_image'"), "script", _set_image, stricter=lambda v: not v.strip()
    ),
    ("AlgorithmSpecification", "MetricDefinitions"): Knob(
        _descriptor("output.metrics'"), "script", _set_metric_count
    ),
    ("AlgorithmSpecification", "MetricDefinitions", "[]", "Name"): Knob(
        _descriptor("output.metrics[0].name'"), "script", _set_metric("name")
    ),
    ("AlgorithmSpecification", "MetricDefinitions", "[]", "Regex"): Knob(
        _descriptor("output.metrics[0].pattern'"), "script", _set_metric("pattern")
    ),
    ("RoleArn",): Knob("setting SAGEMAKER_ROLE", "script", _set_role),
    ("InputDataConfig",): Knob(_descriptor("data.sources'"), "script", _set_channel_count),
    ("InputDataConfig", "[]", "DataSource", "S3DataSource", "S3Uri"): Knob(
        "event field 'payload.datasets[0].dst'", "script", _set_dataset_uri
    ),
    ("InputDataConfig", "[]", "ChannelName"): Knob(
        _descriptor("data.sources[0].id'"), "script", _set_channel_name
    ),
    ("OutputDataConfig", "S3OutputPath"): Knob("setting SAGEMAKER_OUTPUT_BUCKET", "byoc", _set_output),
    ("ResourceConfig", "VolumeSizeInGB"): Knob(
        "event field 'payload.datasets[0].size_info.total_size'", "script", _set_volume
    ),
    ("ResourceConfig", "InstanceCount"): Knob(
        _descriptor("hardware.distributed.num_instances'"), "script", _set_instances, stricter=lambda v: v < 1
    ),
    ("StoppingCondition", "MaxRuntimeInSeconds"): Knob(
        _descriptor("custom_params.max_run_seconds'"), "script", _set_max_run
    ),
    ("StoppingCondition", "MaxWaitTimeInSeconds"): Knob(
        _descriptor("custom_params.max_wait_seconds'"), "script", _set_max_wait
    ),
    ("Tags",): Knob(_descriptor("custom_params.tags'"), "script", _set_tag_count),
    ("Tags", "[]", "Key"): Knob(_descriptor("custom_params.tags"), "script", _set_tag_key),
    ("Tags", "[]", "Value"): Knob(_descriptor("custom_params.tags.team'"), "script", _set_tag_value),
    ("HyperParameters",): Knob(_descriptor("custom_params.hyper_params'"), "byoc", _set_hyper_count),
    ("HyperParameters", "{key}"): Knob(_descriptor("custom_params.hyper_params"), "byoc", _set_hyper_key),
    ("HyperParameters", "{}"): Knob(
        _descriptor("custom_params.hyper_params.epochs'"), "byoc", _set_hyper_value
    ),
    ("VpcConfig", "Subnets"): Knob("setting SAGEMAKER_SUBNETS", "script", _set_ids("subnets")),
    ("VpcConfig", "Subnets", "[]"): Knob("setting SAGEMAKER_SUBNETS", "script", _set_ids("subnets")),
    ("VpcConfig", "SecurityGroupIds"): Knob(
        "setting SAGEMAKER_SECURITY_GROUP_IDS", "script", _set_ids("security_group_ids")
    ),
    ("VpcConfig", "SecurityGroupIds", "[]"): Knob(
        "setting SAGEMAKER_SECURITY_GROUP_IDS", "script", _set_ids("security_group_ids")
    ),
    ("CheckpointConfig", "S3Uri"): Knob(
        _descriptor("custom_params.checkpoint_s3_uri'"),
        "script",
        _set_checkpoint,
        # The descriptor wants 's3://<bucket>[/<prefix>]' without whitespace (domain.descriptor).
        stricter=lambda v: not v.startswith("s3://") or any(c.isspace() for c in v),
    ),
    ("AlgorithmSpecification", "ContainerArguments"): Knob(_descriptor("ml.args'"), "byoc", _set_arg_count),
    ("AlgorithmSpecification", "ContainerArguments", "[]"): Knob(
        _descriptor("ml.args'"), "byoc", _set_arg, stricter=lambda v: "\x00" in v
    ),
    ("Environment",): Knob(_descriptor("env.vars'"), "byoc", _set_env_count),
    ("Environment", "{key}"): Knob(_descriptor("env.vars"), "byoc", _set_env_name),
    ("Environment", "{}"): Knob(_descriptor("env.vars.MODE'"), "byoc", _set_env_value),
}


# ---------------------------------------------------------------- the tests


# Members whose value no submission changes: checked as the executor sends them, below.
FIXED: frozenset[Path] = frozenset(
    {
        ("AlgorithmSpecification", "ContainerEntrypoint"),
        ("AlgorithmSpecification", "ContainerEntrypoint", "[]"),
    }
)


def test_every_constrained_member_has_a_knob() -> None:
    assert set(reachable_members()) == set(KNOBS) | FIXED


def test_the_executors_own_entrypoint_is_within_the_models_limits() -> None:
    request = REQUESTS["command"]
    assert isinstance(request, dict)
    assert request["AlgorithmSpecification"]["ContainerEntrypoint"] == list(bootstrap.container_entrypoint())
    found = constraints.validate(OPERATION, request)
    assert [v for v in found if v.path[:2] == ("AlgorithmSpecification", "ContainerEntrypoint")] == []


def test_the_cases_cover_every_member_both_ways() -> None:
    for member in set(KNOBS) | FIXED:
        verdicts = {case.inside for case in CASES if case.member == member}
        assert verdicts == {True, False}, member


def _without_spot(request: dict[str, Any]) -> None:
    request.pop("EnableManagedSpotTraining")
    request["StoppingCondition"].pop("MaxWaitTimeInSeconds")


def _shortest_run(request: dict[str, Any]) -> None:
    request["StoppingCondition"]["MaxRuntimeInSeconds"] = 1


# What else a request needs for a member's value to be judged on its own: spot's wait is bounded by the
# run time (a rule of two members, tested on its own below).
CONTEXT: dict[Path, Callable[[dict[str, Any]], None]] = {
    ("StoppingCondition", "MaxRuntimeInSeconds"): _without_spot,
    ("StoppingCondition", "MaxWaitTimeInSeconds"): _shortest_run,
}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_request_check_and_the_local_sagemaker_agree_with_the_model(sagemaker: Any, case: Case) -> None:
    _, baseline = reachable_members()[case.member]
    request = with_value(REQUESTS[baseline], case)  # type: ignore[arg-type]
    CONTEXT.get(case.member, lambda request: None)(request)
    found = constraints.validate(OPERATION, request)
    at_member = [v for v in found if v.path == concrete(request, case.member)]
    assert bool(at_member) is not case.inside, (case, found)
    answer = local_answer(sagemaker, request, case.member)
    if found:
        assert answer == violation.validation_exception_message(found)
    else:
        assert answer is None


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.member not in FIXED], ids=[c.id for c in CASES if c.member not in FIXED]
)
def test_the_submission_is_refused_naming_where_the_value_came_from(sagemaker: Any, case: Case) -> None:
    knob = KNOBS[case.member]
    inputs = copy.deepcopy(BASELINES[knob.baseline])
    try:
        knob.set(inputs, case.value)
    except Unreachable as why:
        pytest.skip(f"no submission gives this value: {why}")
    outcome = checked_request(inputs)
    if case.inside and not knob.stricter(case.value):
        assert isinstance(outcome, dict), outcome
        sent = value_at(outcome, case.member)
        assert (
            len(sent) if isinstance(case.value, int) and isinstance(sent, list | dict) else sent
        ) == case.value
        assert local_answer(sagemaker, outcome, case.member) is None
        return
    assert isinstance(outcome, str), f"accepted {case}"
    assert outcome.startswith(f"Cannot process the request: {knob.source}"), outcome
    unchecked = unchecked_request(inputs)
    if unchecked is not None and not case.inside:  # refused by the pre-flight check alone
        assert local_answer(sagemaker, unchecked, case.member) is not None


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"max_run_seconds": 3600, "max_wait_seconds": 3600}, False),
        ({"max_run_seconds": 3600, "max_wait_seconds": 3599}, True),
        ({"max_wait_seconds": 86400}, False),  # the SDK's default max run counts
        ({"max_wait_seconds": 86399}, True),
        ({"max_run_seconds": 3600, "max_wait_seconds": None}, True),
    ],
)
def test_spots_wait_against_the_run_time_agrees_with_the_local_sagemaker(
    sagemaker: Any, changes: dict[str, Any], refused: bool
) -> None:
    """The API reference's spot rules (no shape states them): the wait at least the run time."""
    inputs = copy.deepcopy(BASELINES["script"])
    params = _params(inputs)
    params.pop("max_run_seconds")
    params.update({key: value for key, value in changes.items() if value is not None})
    if changes.get("max_wait_seconds", 0) is None:
        params.pop("max_wait_seconds")
    outcome = checked_request(inputs)
    request = copy.deepcopy(REQUESTS["script"])
    assert isinstance(request, dict)
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": params.get("max_run_seconds", 86400)}
    if "max_wait_seconds" in params:
        request["StoppingCondition"]["MaxWaitTimeInSeconds"] = params["max_wait_seconds"]
    answer = local_answer(sagemaker, request, ())
    if refused:
        assert isinstance(outcome, str) and "descriptor field 'custom_params.max_wait_seconds'" in outcome
        assert answer is not None and answer.startswith("Invalid MaxWaitTimeInSeconds.")
    else:
        assert isinstance(outcome, dict) and answer is None


def test_the_requests_are_what_the_executor_sends() -> None:
    """The generator starts from real requests: both baselines pass, and stay JSON."""
    for request in REQUESTS.values():
        assert isinstance(request, dict) and constraints.validate(OPERATION, request) == []
        json.dumps(request)
