"""Descriptor model and validation: every collected sample, hostile inputs, the SageMaker check, fuzzing."""

import contextlib
import copy
import pickle
import random
import tomllib
from typing import Any

import pytest

from sagemaker_executor.domain.descriptor import (
    check_sagemaker_support,
    field_path,
    parse_descriptor,
    parse_descriptor_toml,
)
from sagemaker_executor.domain.errors import DescriptorError, PermanentError
from sagemaker_executor.domain.sections import Descriptor, Framework, Strategy
from sagemaker_executor.domain.strictjson import first_unfit
from tests.conftest import SAMPLES

SAMPLE_DIRS = ("descriptors", "docs-examples")

K8S = "descriptors/executor/tests/transpiler/data"
KU = "descriptors/kafka-utils/tests/bai_kafka_utils/executors/test_descriptor"
SB = "descriptors/sample-benchmarks"
NOT_ML = "hardware.instance_type"
INFERENCE = "hardware.strategy"

# path -> (field of the parse error or None, field of the SageMaker-check error once the descriptor is
# routed to SageMaker (info.execution_engine = "aws.sagemaker") or None; ignored when parsing fails)
EXPECTED: dict[str, tuple[str | None, str | None]] = {
    "descriptors/bai-bff/test/testfile.toml": ("data.id", None),  # legacy format: data.id, uri
    "descriptors/executor/integration_tests/executor/blackbox/data/inference_benchmark.toml": (
        None,
        INFERENCE,
    ),
    "descriptors/executor/tests/executor/data/hello-world.toml": ("output.metrics[0].units", None),
    f"{K8S}/cronjob.toml": ("info.scheduling", None),  # routed away before parsing (CONTRACT §5.1)
    f"{K8S}/hello-world.toml": (None, NOT_ML),
    f"{K8S}/horovod-with-metrics.toml": (None, NOT_ML),
    f"{K8S}/horovod-with-spaces.toml": (None, NOT_ML),
    f"{K8S}/horovod.toml": (None, NOT_ML),
    f"{K8S}/inference-with-server-and-client-metrics.toml": (None, INFERENCE),
    f"{K8S}/inference-with-server-metrics.toml": (None, INFERENCE),
    f"{K8S}/inference.toml": (None, INFERENCE),
    f"{K8S}/training-with-metrics.toml": (None, NOT_ML),
    f"{K8S}/training.toml": (None, NOT_ML),
    f"{KU}/cs_customparameter_descriptor.toml": (None, None),
    f"{KU}/cs_minimal_descriptor.toml": (None, INFERENCE),
    f"{KU}/cs_minimal_with_models_descriptor.toml": (None, INFERENCE),
    f"{KU}/cs_missing_docker_image_descriptor.toml": ("server.env.docker_image", None),
    f"{KU}/cs_missing_hardware_descriptor.toml": ("server.hardware", None),
    f"{KU}/cs_missing_ports_descriptor.toml": ("server.env.ports", None),
    f"{KU}/cs_missing_readiness_probe_path.toml": ("server.env.readiness_probe.path", None),
    f"{KU}/cs_missing_server_model_path_descriptor.toml": ("server.models[0].path", None),
    f"{KU}/cs_missing_server_model_src_descriptor.toml": ("server.models[0].src", None),
    f"{KU}/cs_missing_server_output_metric_name_descriptor.toml": ("server.output.metrics[0].name", None),
    f"{KU}/cs_missing_server_output_metric_pattern_descriptor.toml": (
        "server.output.metrics[0].pattern",
        None,
    ),
    f"{KU}/cs_missing_server_output_metric_units_descriptor.toml": ("server.output.metrics[0].units", None),
    f"{KU}/cs_missing_server_output_metrics_descriptor.toml": ("server.output.metrics", None),
    f"{KU}/cs_missing_server_section_descriptor.toml": ("server", None),
    f"{KU}/cs_missing_start_command_descriptor.toml": ("server.env.start_command", None),
    f"{KU}/cs_with_optionals_descriptor.toml": (None, INFERENCE),
    f"{KU}/minimal_descriptor.toml": (None, NOT_ML),
    f"{KU}/missing_keys_descriptor.toml": ("env.docker_image", None),
    f"{KU}/missing_section_descriptor.toml": ("output.metrics[0].units", None),
    f"{SB}/hello-world/descriptor-script-mode.toml": (None, NOT_ML),
    f"{SB}/hello-world/descriptor.toml": (None, NOT_ML),
    f"{SB}/horovod/descriptor.toml": (None, NOT_ML),
    f"{SB}/inference-benchmark/descriptor.toml": (None, INFERENCE),
    # CONTRACT §10.5: no spec_version or description, num_instances = "4"; the first in document order:
    f"{SB}/sagemaker/horovod.toml": ("info.description", None),
    f"{SB}/scheduled-benchmark/descriptor.toml": ("info.scheduling", None),  # routed away (CONTRACT §5.1)
    f"{SB}/single-node/descriptor_cpu.toml": (None, NOT_ML),
    f"{SB}/single-node/descriptor_gpu.toml": (None, NOT_ML),
    "docs-examples/README.output-metrics-snippet.toml": ("spec_version", None),
    "docs-examples/cloudwatch-exporter-README.labels-metrics-snippet.toml": ("info.description", None),
    "docs-examples/executor-README.inference.toml": ("info.scheduling", None),  # cron, first
    "docs-examples/executor-README.ml-script-snippet.toml": ("spec_version", None),
    "docs-examples/executor-README.sagemaker-training-job.toml": (None, None),
    "docs-examples/executor-README.training-horovod.toml": ("data.sources[0].uri", None),
}


def _sample_paths() -> list[str]:
    if not SAMPLES.is_dir():
        raise RuntimeError(f"descriptor samples not found at {SAMPLES}; the unit tests need them")
    found = [p for d in SAMPLE_DIRS for p in (SAMPLES / d).rglob("*.toml")]
    return sorted(str(p.relative_to(SAMPLES)) for p in found)


def test_every_sample_has_an_expectation() -> None:
    assert _sample_paths() == sorted(EXPECTED)


@pytest.mark.parametrize("rel", _sample_paths())
def test_sample(rel: str) -> None:
    parse_field, sagemaker_field = EXPECTED[rel]
    text = (SAMPLES / rel).read_text()
    if parse_field is not None:
        with pytest.raises(DescriptorError) as caught:
            parse_descriptor_toml(text)
        assert caught.value.field == parse_field
        return
    descriptor = parse_descriptor_toml(text)
    contents = tomllib.loads(text)
    contents["info"]["execution_engine"] = "aws.sagemaker"
    routed = parse_descriptor(contents)
    if sagemaker_field is None:
        check_sagemaker_support(routed)
    else:
        with pytest.raises(DescriptorError) as caught:
            check_sagemaker_support(routed)
        assert caught.value.field == sagemaker_field
    if descriptor.info.execution_engine != "aws.sagemaker":
        with pytest.raises(DescriptorError, match=r"info\.execution_engine"):
            check_sagemaker_support(descriptor)


def test_sagemaker_example_is_read_completely() -> None:
    d = parse_descriptor_toml(
        (SAMPLES / "docs-examples/executor-README.sagemaker-training-job.toml").read_text()
    )
    assert d.info.execution_engine == "aws.sagemaker"
    assert d.info.labels["geo_location"] == "Ohio"
    assert d.hardware.instance_type == "ml.c5.18xlarge"
    assert d.hardware.strategy is Strategy.SINGLE_NODE
    assert d.hardware.instance_count == 4
    assert d.ml is not None and d.ml.framework is Framework.TENSORFLOW and d.ml.framework_version == "1.15.3"
    assert d.env.vars["OMP_NUM_THREADS"] == "36"
    assert d.custom_params is not None
    assert d.custom_params.sagemaker_job_name == "resnet50SMJob4"
    assert d.custom_params.merge is True and d.custom_params.python_version == "py2"
    assert d.custom_params.hyper_params == {
        "hold": True,
        "training_weight": 0.25,
        "validation_frequency": 0.15,
        "notation": "strict",
    }
    assert d.output is not None and [m.name for m in d.output.metrics] == ["iter", "img"]


def test_defaults_of_a_minimal_descriptor() -> None:
    d = parse_descriptor(_base())
    assert d.info.execution_engine == "aws.sagemaker" and d.info.scheduling == "single_run"
    assert d.info.labels == {} and d.info.task_name is None
    assert d.hardware.strategy is Strategy.SINGLE_NODE and d.hardware.distributed is None
    assert d.hardware.instance_count == 1
    assert d.env.vars == {} and d.env.privileged is False and d.env.extended_shm is True
    assert (
        d.ml is None and d.data is None and d.server is None and d.output is None and d.custom_params is None
    )


def test_single_node_may_have_one_instance() -> None:  # CONTRACT §10.4
    d = parse_descriptor(_with(_base(), "hardware.distributed", {"num_instances": 1}))
    assert d.hardware.distributed is not None
    assert d.hardware.distributed.num_instances == 1 and d.hardware.distributed.processes_per_instance == "1"


def test_models_are_frozen() -> None:
    d = parse_descriptor(_base())
    with pytest.raises(Exception, match="frozen"):
        d.spec_version = "2"  # type: ignore[misc]


def test_error_format_and_pickling() -> None:
    err = DescriptorError("hardware.distributed.num_instances", "must be an integer >= 1, got '4' (str)")
    assert (
        str(err)
        == "descriptor field 'hardware.distributed.num_instances': must be an integer >= 1, got '4' (str)"
    )
    assert isinstance(err, ValueError) and isinstance(err, PermanentError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.field, again.reason, str(again)) == (err.field, err.reason, str(err))


def test_new_custom_params_are_read() -> None:
    params = {
        "requirements": ["numpy==1.26.4", "torch>=2; python_version >= '3.8'"],
        "max_run_seconds": 3600,
        "use_spot_instances": True,
        "max_wait_seconds": 7200,
        "checkpoint_s3_uri": "s3://bucket/checkpoints/run-1",
        "tags": {"team": "ml perf", "cost-centre": "1234", "Projekt": "Überblick"},
    }
    d = parse_descriptor(_with(_base(), "custom_params", params))
    assert d.custom_params is not None
    assert d.custom_params.model_dump(include=set(params)) == params
    horovod = _with(_base(), "hardware.strategy", "horovod")
    d = parse_descriptor(_with(horovod, "custom_params.custom_mpi_options", "-x NCCL_DEBUG=INFO"))
    assert d.custom_params is not None and d.custom_params.custom_mpi_options == "-x NCCL_DEBUG=INFO"


# ---------------------------------------------------------------- hostile and malformed inputs


def _base() -> dict[str, Any]:
    return {
        "spec_version": "0.1.0",
        "info": {"description": "d", "execution_engine": "aws.sagemaker"},
        "hardware": {"instance_type": "ml.p3.8xlarge"},
        "env": {"docker_image": "repo/image:tag"},
    }


_DELETE = object()


def _with(contents: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `contents` with the dotted `path` set to `value` (or deleted), creating tables."""
    out = copy.deepcopy(contents)
    node: Any = out
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


_SOURCE = {"src": "s3://b/k", "path": "/data"}
_METRIC = {"name": "acc", "units": "%", "pattern": "acc=(\\d+)"}
_SERVER = {
    "hardware": {"instance_type": "ml.c5.xlarge"},
    "env": {"docker_image": "srv", "ports": [8080], "start_command": "serve"},
}

_LONG_TAG_FIELD = field_path(("custom_params", "tags", "k" * 129))  # the key is abbreviated
HOSTILE: list[tuple[str, Any, str, str]] = [
    # (case, contents, expected field, expected fragment of the reason)
    ("root is a list", [1, 2], "<root>", "must be a table"),
    ("root is a string", "spec_version = 1", "<root>", "must be a table"),
    ("root is None", None, "<root>", "must be a table"),
    ("root is an int", 7, "<root>", "must be a table"),
    ("empty root", {}, "spec_version", "is required"),
    ("unknown root key", _with(_base(), "foo", 1), "foo", "unknown key 'foo' (allowed: spec_version, info,"),
    ("spec_version int", _with(_base(), "spec_version", 1), "spec_version", "must be a string, got 1 (int)"),
    ("info is a string", _with(_base(), "info", "x"), "info", "must be a table, got 'x' (str)"),
    ("info is a list", _with(_base(), "info", [{}]), "info", "must be a table"),
    ("missing description", _with(_base(), "info.description", _DELETE), "info.description", "is required"),
    ("description None", _with(_base(), "info.description", None), "info.description", "got None (NoneType)"),
    ("huge string int", _with(_base(), "spec_version", 10**5000), "spec_version", "<unprintable> (int)"),
    ("bytes", _with(_base(), "env.docker_image", b"img"), "env.docker_image", "must be a string"),
    ("unknown info key", _with(_base(), "info.owner", "me"), "info.owner", "unknown key 'owner'"),
    ("bad engine", _with(_base(), "info.execution_engine", "aws.ec2"), "info.execution_engine", "'aws.ec2'"),
    ("engine int", _with(_base(), "info.execution_engine", 1), "info.execution_engine", "must be a string"),
    ("labels list", _with(_base(), "info.labels", ["a"]), "info.labels", "must be a table"),
    ("label int value", _with(_base(), "info.labels", {"a": 1}), "info.labels.a", "must be a string, got 1"),
    (
        "table int key",
        _with(_base(), "info", {"description": "d", 5: "x"}),
        "info[5]",
        "keys must be strings",
    ),
    ("label int key", _with(_base(), "info.labels", {1: "a"}), "info.labels[1]", "key must be a string"),
    ("label key space", _with(_base(), "info.labels", {"a b": "x"}), "info.labels['a b']", "label name"),
    ("label key dash end", _with(_base(), "info.labels", {"ab-": "x"}), "info.labels.ab-", "label name"),
    ("label key empty", _with(_base(), "info.labels", {"": "x"}), "info.labels['']", "label name"),
    ("label key 64", _with(_base(), "info.labels", {"a" * 64: "x"}), "info.labels." + "a" * 64, "label name"),
    ("label value bad", _with(_base(), "info.labels", {"k": "-x"}), "info.labels.k", "label value '-x'"),
    ("label value newline", _with(_base(), "info.labels", {"k": "ab\n"}), "info.labels.k", "label value"),
    ("label value unicode", _with(_base(), "info.labels", {"k": "café"}), "info.labels.k", "label value"),
    (
        "11 labels",
        _with(_base(), "info.labels", {f"l{i}": "v" for i in range(11)}),
        "info.labels",
        "at most 10",
    ),
    (
        "cron schedule",
        _with(_base(), "info.scheduling", "0 0 * * *"),
        "info.scheduling",
        "the Kubernetes executor's",
    ),
    ("scheduling int", _with(_base(), "info.scheduling", 5), "info.scheduling", "must be a string"),
    ("no hardware", _with(_base(), "hardware", _DELETE), "hardware", "is required"),
    (
        "empty instance",
        _with(_base(), "hardware.instance_type", " "),
        "hardware.instance_type",
        "not be empty",
    ),
    (
        "strategy bad",
        _with(_base(), "hardware.strategy", "ps"),
        "hardware.strategy",
        "must be one of 'single_node'",
    ),
    ("strategy int", _with(_base(), "hardware.strategy", 1), "hardware.strategy", "got 1 (int)"),
    ("strategy bytes", _with(_base(), "hardware.strategy", b"horovod"), "hardware.strategy", "(bytes)"),
    (
        "num_instances string",
        _with(_base(), "hardware.distributed", {"num_instances": "4"}),
        "hardware.distributed.num_instances",
        "must be an integer >= 1, got '4' (str)",
    ),
    (
        "num_instances float",
        _with(_base(), "hardware.distributed", {"num_instances": 4.0}),
        "hardware.distributed.num_instances",
        "must be an integer >= 1, got 4.0 (float)",
    ),
    (
        "num_instances bool",
        _with(_base(), "hardware.distributed", {"num_instances": True}),
        "hardware.distributed.num_instances",
        "got True (bool)",
    ),
    (
        "num_instances 0",
        _with(_base(), "hardware.distributed", {"num_instances": 0}),
        "hardware.distributed.num_instances",
        "must be >= 1, got 0",
    ),
    (
        "processes int",
        _with(_base(), "hardware.distributed", {"processes_per_instance": 4}),
        "hardware.distributed.processes_per_instance",
        "must be a string, got 4 (int)",
    ),
    (
        "processes 0",
        _with(_base(), "hardware.distributed", {"processes_per_instance": "0"}),
        "hardware.distributed.processes_per_instance",
        "'gpus' or a positive integer",
    ),
    (
        "processes gpus4",  # the BFF schema's unanchored ^gpus|\d+ accepted this
        _with(_base(), "hardware.distributed", {"processes_per_instance": "gpus4"}),
        "hardware.distributed.processes_per_instance",
        "'gpus' or a positive integer",
    ),
    (
        "distributed list",
        _with(_base(), "hardware.distributed", [1]),
        "hardware.distributed",
        "must be a table",
    ),
    ("privileged string", _with(_base(), "env.privileged", "true"), "env.privileged", "must be a boolean"),
    ("privileged int", _with(_base(), "env.privileged", 1), "env.privileged", "must be a boolean"),
    ("env var int", _with(_base(), "env.vars", {"A": 1}), "env.vars.A", "must be a string"),
    ("env var name", _with(_base(), "env.vars", {"A;rm -rf": "1"}), "env.vars['A;rm -rf']", "variable name"),
    ("env var digit", _with(_base(), "env.vars", {"1A": "1"}), "env.vars.1A", "variable name"),
    ("no docker_image", _with(_base(), "env", {}), "env.docker_image", "is required"),
    ("ml list", _with(_base(), "ml", []), "ml", "must be a table"),
    ("framework bad", _with(_base(), "ml.framework", "jax"), "ml.framework", "must be one of ''"),
    ("framework None", _with(_base(), "ml.framework", None), "ml.framework", "got None"),
    ("version alone", _with(_base(), "ml.framework_version", "1.0"), "ml.framework_version", "ml.framework"),
    ("script not tar", _with(_base(), "ml.script", {"script": "x.zip"}), "ml.script.script", "'.tar'"),
    (
        "script path",
        _with(_base(), "ml.script", {"script": "../x.tar"}),
        "ml.script.script",
        "no directories",
    ),
    ("script missing", _with(_base(), "ml.script", {}), "ml.script.script", "is required"),
    ("script extra", _with(_base(), "ml.script", {"script": "a.tar", "x": 1}), "ml.script.x", "unknown key"),
    ("data string", _with(_base(), "data", "s3://x"), "data", "must be a table"),
    ("sources table", _with(_base(), "data.sources", {"src": "x"}), "data.sources", "must be an array"),
    ("source string", _with(_base(), "data.sources", ["s3://x"]), "data.sources[0]", "must be a table"),
    ("source no src", _with(_base(), "data.sources", [{"path": "/p"}]), "data.sources[0].src", "is required"),
    (
        "source uri",
        _with(_base(), "data.sources", [_SOURCE, {"uri": "s3://x", "path": "/p"}]),
        "data.sources[1].uri",
        "unknown key 'uri' (allowed: src, path, id, md5)",
    ),
    (
        "md5 short",
        _with(_base(), "data.sources", [{**_SOURCE, "md5": "abc"}]),
        "data.sources[0].md5",
        "32 hex",
    ),
    (
        "md5 int",
        _with(_base(), "data.sources", [{**_SOURCE, "md5": 5}]),
        "data.sources[0].md5",
        "must be a string",
    ),
    ("output no metrics", _with(_base(), "output", {}), "output.metrics", "is required"),
    ("metric string", _with(_base(), "output", {"metrics": ["acc"]}), "output.metrics[0]", "must be a table"),
    (
        "metric bad regex",
        _with(_base(), "output", {"metrics": [{**_METRIC, "pattern": "acc=(\\d+"}]}),
        "output.metrics[0].pattern",
        "must be a regular expression",
    ),
    (
        "metric nested regex",
        _with(_base(), "output", {"metrics": [{**_METRIC, "pattern": "(" * 5000 + ")" * 5000}]}),
        "output.metrics[0].pattern",
        "must be a regular expression",
    ),
    ("server without inference", _with(_base(), "server", _SERVER), "server", "only allowed when"),
    (
        "inference without server",
        _with(_base(), "hardware.strategy", "inference"),
        "server",
        "is required when",
    ),
    (
        "server port string",
        _with(
            _with(_base(), "hardware.strategy", "inference"), "server", _with(_SERVER, "env.ports", ["80"])
        ),
        "server.env.ports[0]",
        "must be an integer",
    ),
    (
        "server port range",
        _with(
            _with(_base(), "hardware.strategy", "inference"), "server", _with(_SERVER, "env.ports", [8080, 0])
        ),
        "server.env.ports[1]",
        "1 to 65535",
    ),
    (
        "readiness probe string",  # the executor README's example
        _with(
            _with(_base(), "hardware.strategy", "inference"),
            "server",
            _with(_SERVER, "env.readiness_probe", "http://localhost/ok"),
        ),
        "server.env.readiness_probe",
        "must be a table",
    ),
    (
        "probe scheme",
        _with(
            _with(_base(), "hardware.strategy", "inference"),
            "server",
            _with(_SERVER, "env.readiness_probe", {"path": "/", "scheme": "ftp"}),
        ),
        "server.env.readiness_probe.scheme",
        "'http' or 'https'",
    ),
    ("custom_params list", _with(_base(), "custom_params", [1]), "custom_params", "must be a table"),
    (
        "merge string",
        _with(_base(), "custom_params.merge", "true"),
        "custom_params.merge",
        "must be a boolean",
    ),
    (
        "hyper_params list",
        _with(_base(), "custom_params.hyper_params", [1]),
        "custom_params.hyper_params",
        "table",
    ),
    (
        "job name underscore",
        _with(_base(), "custom_params.sagemaker_job_name", "my_job"),
        "custom_params.sagemaker_job_name",
        "matching the pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} ('_' is not allowed)",
    ),
    (
        "job name 64",
        _with(_base(), "custom_params.sagemaker_job_name", "a" * 64),
        "custom_params.sagemaker_job_name",
        "SageMaker accepts at most 63 characters, got 64",
    ),
    (
        "job name newline",
        _with(_base(), "custom_params.sagemaker_job_name", "job\n"),
        "custom_params.sagemaker_job_name",
        "('\\n' (U+000A) is not allowed)",
    ),
    (
        "requirements string",
        _with(_base(), "custom_params.requirements", "numpy"),
        "custom_params.requirements",
        "must be an array",
    ),
    (
        "requirement index-url",
        _with(_base(), "custom_params.requirements", ["numpy", "--index-url http://evil"]),
        "custom_params.requirements[1]",
        "letter or digit",
    ),
    (
        "requirement trailing option",
        _with(_base(), "custom_params.requirements", ["numpy --extra-index-url=http://evil"]),
        "custom_params.requirements[0]",
        "pip options",
    ),
    (
        "requirement newline",
        _with(_base(), "custom_params.requirements", ["numpy\n-r other.txt"]),
        "custom_params.requirements[0]",
        "single line",
    ),
    (
        "requirement empty",
        _with(_base(), "custom_params.requirements", [""]),
        "custom_params.requirements[0]",
        "letter",
    ),
    (
        "requirement blank",
        _with(_base(), "custom_params.requirements", ["  "]),
        "custom_params.requirements[0]",
        "letter or digit",
    ),
    (
        "requirement carriage return",
        _with(_base(), "custom_params.requirements", ["numpy\r"]),
        "custom_params.requirements[0]",
        "single line",
    ),
    (
        "requirement line separator",
        _with(_base(), "custom_params.requirements", ["numpy\u2028scipy"]),
        "custom_params.requirements[0]",
        "single line",
    ),
    (
        "requirement continuation",
        _with(_base(), "custom_params.requirements", ["numpy", "foo \\"]),
        "custom_params.requirements[1]",
        "line continuation",
    ),
    (
        "requirement indented option",
        _with(_base(), "custom_params.requirements", [" -e ."]),
        "custom_params.requirements[0]",
        "letter or digit",
    ),
    (
        "max_run 0",
        _with(_base(), "custom_params.max_run_seconds", 0),
        "custom_params.max_run_seconds",
        "must be >= 1",
    ),
    (
        "max_run string",
        _with(_base(), "custom_params.max_run_seconds", "3600"),
        "custom_params.max_run_seconds",
        "must be an integer >= 1, got '3600' (str)",
    ),
    (
        "max_wait without spot",
        _with(_base(), "custom_params.max_wait_seconds", 10),
        "custom_params.max_wait_seconds",
        "only allowed with use_spot_instances",
    ),
    (
        "max_wait below max_run",
        _with(
            _base(),
            "custom_params",
            {"use_spot_instances": True, "max_run_seconds": 100, "max_wait_seconds": 99},
        ),
        "custom_params.max_wait_seconds",
        "must be >= max_run_seconds (100), got 99",
    ),
    (
        "checkpoint https",
        _with(_base(), "custom_params.checkpoint_s3_uri", "https://bucket/x"),
        "custom_params.checkpoint_s3_uri",
        "s3://",
    ),
    (
        "checkpoint no bucket",
        _with(_base(), "custom_params.checkpoint_s3_uri", "s3:///x"),
        "custom_params.checkpoint_s3_uri",
        "s3://",
    ),
    (
        "mpi options without horovod",
        _with(_base(), "custom_params.custom_mpi_options", "-x NCCL_DEBUG=INFO"),
        "custom_params.custom_mpi_options",
        "only used with hardware.strategy = 'horovod'",
    ),
    (
        "mpi options newline",
        _with(
            _with(_base(), "hardware.strategy", "horovod"), "custom_params.custom_mpi_options", "-x A=1\n-x B"
        ),
        "custom_params.custom_mpi_options",
        "single line",
    ),
    (
        "tag aws",
        _with(_base(), "custom_params.tags", {"aws:x": "1"}),
        "custom_params.tags['aws:x']",
        "reserved",
    ),
    (
        "tag AWS",
        _with(_base(), "custom_params.tags", {"AWS:x": "1"}),
        "custom_params.tags['AWS:x']",
        "reserved",
    ),
    (
        "tag anubis",
        _with(_base(), "custom_params.tags", {"anubis-action-id": "1"}),
        "custom_params.tags.anubis-action-id",
        "reserved",
    ),
    ("tag key long", _with(_base(), "custom_params.tags", {"k" * 129: "1"}), _LONG_TAG_FIELD, "at most 128"),
    ("tag value long", _with(_base(), "custom_params.tags", {"k": "v" * 257}), "custom_params.tags.k", "256"),
    (
        "tag charset",
        _with(_base(), "custom_params.tags", {"k": "a;b"}),
        "custom_params.tags.k",
        "tag value: SageMaker accepts only text matching the pattern ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*) (';'",
    ),
    ("tag int", _with(_base(), "custom_params.tags", {"k": 1}), "custom_params.tags.k", "must be a string"),
    (
        "huge string is abbreviated",
        _with(_base(), "hardware.strategy", "x" * 1_000_000),
        "hardware.strategy",
        "...",
    ),
    (
        "document order decides",  # info comes first in the input, so its problem is reported first
        {"info": {"description": 1}, "spec_version": 2, "hardware": {}, "env": {}},
        "info.description",
        "must be a string",
    ),
    # Values with no strict JSON form (issue 7): Python's json.loads and TOML 1.0 let them in.
    (
        "NaN hyperparameter",
        _with(_base(), "custom_params.hyper_params.lr", float("nan")),
        "custom_params.hyper_params.lr",
        "must be a finite number, got NaN",
    ),
    (
        "infinity in a list",
        _with(_base(), "custom_params.hyper_params.steps", [1.0, float("inf")]),
        "custom_params.hyper_params.steps[1]",
        "got Infinity",
    ),
    (
        "minus infinity",
        _with(_base(), "custom_params.hyper_params.x", {"y": float("-inf")}),
        "custom_params.hyper_params.x.y",
        "got -Infinity",
    ),
    (
        "NaN in an integer field",
        _with(_base(), "hardware.distributed.num_instances", float("nan")),
        "hardware.distributed.num_instances",
        "must be an integer >= 1, got nan (float)",
    ),
    (
        "lone surrogate in env.vars",
        _with(_base(), "env.vars.LANG", "caf\udce9"),
        "env.vars.LANG",
        "character 4 is a lone surrogate '\\udce9'",
    ),
    (
        "lone surrogate in a free-form key",
        _with(_base(), "custom_params.hyper_params.caf\udce9", 1),
        "custom_params.hyper_params['caf\\udce9']",
        "the key is not valid Unicode text",
    ),
    (
        "lone surrogate in a description",
        _with(_base(), "info.description", "\ud800"),
        "info.description",
        "is not valid Unicode text",
    ),
    (
        "unfit values are found in document order",
        {"info": {"description": "\udfff"}, "spec_version": 2, "hardware": {}, "env": {}},
        "info.description",
        "lone surrogate",
    ),
    (
        "other problems before an unfit value come first",
        {**_with(_base(), "info.description", 5), "custom_params": {"hyper_params": {"a": float("nan")}}},
        "info.description",
        "must be a string",
    ),
    (
        "missing keys come after present ones",
        {
            "info": {"description": "d"},
            "hardware": {"instance_type": "t"},
            "env": {"docker_image": "i"},
            "x": 1,
        },
        "x",
        "unknown key",
    ),
]


@pytest.mark.parametrize(
    ("contents", "field", "fragment"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_hostile_input(contents: Any, field: str, fragment: str) -> None:
    with pytest.raises(DescriptorError) as caught:
        parse_descriptor(contents)
    assert caught.value.field == field
    assert fragment in caught.value.reason
    assert str(caught.value) == f"descriptor field '{field}': {caught.value.reason}"
    assert len(caught.value.reason) < 1000


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("spec_version = ", "not valid TOML"),
        ("a = 1\na = 2", "not valid TOML"),
        ("x = " + "[" * 100_000 + "]" * 100_000, "not valid TOML"),
        ("", "spec_version"),
    ],
    ids=["truncated", "duplicate key", "deep nesting", "empty"],
)
def test_toml_problems(text: str, fragment: str) -> None:
    with pytest.raises(DescriptorError) as caught:
        parse_descriptor_toml(text)
    assert fragment in str(caught.value)


@pytest.mark.parametrize("value", ["nan", "+nan", "-nan", "inf", "+inf", "-inf"])
def test_toml_non_finite_numbers_are_refused_by_name(value: str) -> None:
    """Valid TOML 1.0, but no JSON has them: issue 7, "Why" 9."""
    text = (
        'spec_version = "0.1.0"\n[info]\ndescription = "d"\nexecution_engine = "aws.sagemaker"\n'
        '[hardware]\ninstance_type = "ml.c5.xlarge"\n[env]\ndocker_image = "i"\n'
        f"[custom_params]\nhyper_params = {{batch = 32, lr = {value}}}\n"
    )
    with pytest.raises(DescriptorError) as caught:
        parse_descriptor_toml(text)
    assert caught.value.field == "custom_params.hyper_params.lr"
    assert "must be a finite number" in caught.value.reason


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        ((), "<root>"),
        (("data", "sources", 0, "src"), "data.sources[0].src"),
        (("info", "labels", "a.b"), "info.labels['a.b']"),
        (("info", "labels", 3), "info.labels[3]"),
    ],
)
def test_field_path(loc: tuple[str | int, ...], path: str) -> None:
    assert field_path(loc) == path
    assert len(field_path(("x", "y" * 10_000))) < 100


def test_accepts_a_read_only_mapping() -> None:
    from types import MappingProxyType

    assert parse_descriptor(MappingProxyType(_base())).spec_version == "0.1.0"


def test_accepts_enum_members_and_task_name() -> None:
    contents = _with(_with(_base(), "hardware.strategy", Strategy.HOROVOD), "info.task_name", "Title")
    d = parse_descriptor(_with(contents, "ml", {"framework": Framework.PYTORCH, "framework_version": "2.3"}))
    assert d.hardware.strategy is Strategy.HOROVOD and d.info.task_name == "Title"
    assert d.ml is not None and d.ml.framework is Framework.PYTORCH


@pytest.mark.parametrize(
    "labels",
    [{"task_name": "example_single-node_gpu_benchmark"}, {"a": ""}, {"a.b-c_d": "X9"}, {"k" * 63: "v" * 63}],
)
def test_good_labels(labels: dict[str, str]) -> None:
    assert parse_descriptor(_with(_base(), "info.labels", labels)).info.labels == labels


# ---------------------------------------------------------------- check_sagemaker_support


def _sm(path: str = "", value: Any = None) -> Descriptor:
    return parse_descriptor(_with(_base(), path, value) if path else _base())


def test_sagemaker_accepts_gpus_on_a_gpu_instance() -> None:
    check_sagemaker_support(
        _sm("hardware.distributed", {"num_instances": 2, "processes_per_instance": "gpus"})
    )
    check_sagemaker_support(_sm("hardware.strategy", "horovod"))


@pytest.mark.parametrize(
    ("descriptor", "field", "fragment"),
    [
        (_sm("info.execution_engine", "default"), "info.execution_engine", "must be 'aws.sagemaker'"),
        (
            parse_descriptor(_with(_with(_base(), "hardware.strategy", "inference"), "server", _SERVER)),
            "hardware.strategy",
            "'inference' is not supported",
        ),
        (
            _sm("hardware.instance_type", "p3.8xlarge"),
            "hardware.instance_type",
            "did you mean 'ml.p3.8xlarge'",
        ),
        (_sm("hardware.instance_type", "local_gpu"), "hardware.instance_type", "start with 'ml.'"),
        (_sm("hardware.instance_type", "ml.p3"), "hardware.instance_type", "ml.<family>.<size>"),
        (
            _sm(
                "hardware",
                {"instance_type": "ml.c5.18xlarge", "distributed": {"processes_per_instance": "gpus"}},
            ),
            "hardware.distributed.processes_per_instance",
            "ml.c5.18xlarge has no GPUs",
        ),
        (
            _sm(
                "hardware",
                {"instance_type": "ml.trn1.32xlarge", "distributed": {"processes_per_instance": "gpus"}},
            ),
            "hardware.distributed.processes_per_instance",
            "Trainium",
        ),
        (
            _sm(
                "hardware",
                {"instance_type": "ml.zz9.large", "distributed": {"processes_per_instance": "gpus"}},
            ),
            "hardware.instance_type",
            "unknown SageMaker instance family",
        ),
        (
            _sm("data", {"sources": [{**_SOURCE, "id": "train"}, {**_SOURCE, "id": "train"}]}),
            "data.sources[1].id",
            "used twice",
        ),
        (
            _sm("data", {"sources": [_SOURCE, {**_SOURCE, "id": "src0"}]}),
            "data.sources[1].id",
            "'src0' is used twice",
        ),
        (
            _sm("data", {"sources": [{**_SOURCE, "id": "my data"}]}),
            "data.sources[0].id",
            "channel name: SageMaker accepts only text matching the pattern [A-Za-z0-9\\.\\-_]+ (' '",
        ),
    ],
)
def test_sagemaker_rejects(descriptor: Descriptor, field: str, fragment: str) -> None:
    with pytest.raises(DescriptorError) as caught:
        check_sagemaker_support(descriptor)
    assert caught.value.field == field
    assert fragment in caught.value.reason


# ---------------------------------------------------------------- fuzzing: only DescriptorError escapes


def _random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(10 if depth < 4 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2**70, -(2**70), rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.0, -1.5, float("inf"), float("nan"), 4.0])
    if kind in (4, 5, 6):
        return rng.choice(
            [
                "",
                "x",
                "gpus",
                "4",
                "single_node",
                "inference",
                "ml.p3.2xlarge",
                "*/1 * * * *",
                "@daily",
                "(",
                "\0",
                "é" * 3,
                "caf\udce9",
            ]
        )
    if kind == 7:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_random_key(rng): _random_value(rng, depth + 1) for _ in range(rng.randrange(5))}


_KEYS = [
    "spec_version", "info", "hardware", "env", "ml", "data", "server", "output", "custom_params",
    "description", "labels", "scheduling", "execution_engine", "instance_type", "strategy", "distributed",
    "num_instances", "processes_per_instance", "docker_image", "vars", "sources", "src", "path", "md5",
    "metrics", "name", "units", "pattern", "script", "tags", "requirements", "max_wait_seconds", "foo",
]  # fmt: skip


def _random_key(rng: random.Random) -> Any:
    return rng.choice(_KEYS) if rng.random() < 0.9 else rng.choice([1, "", "a.b", None])


def _mutate(rng: random.Random, node: Any, depth: int = 0) -> Any:
    """Replace, delete or add one thing somewhere inside a valid descriptor."""
    if isinstance(node, dict) and node and depth < 6 and rng.random() < 0.75:
        key = rng.choice(list(node))
        node[key] = _mutate(rng, node[key], depth + 1)
        return node
    if isinstance(node, list) and node and rng.random() < 0.75:
        index = rng.randrange(len(node))
        node[index] = _mutate(rng, node[index], depth + 1)
        return node
    if isinstance(node, dict) and rng.random() < 0.5:
        if node and rng.random() < 0.5:
            del node[rng.choice(list(node))]
        else:
            node[_random_key(rng)] = _random_value(rng, depth)
        return node
    return _random_value(rng, depth)


def _valid_contents() -> list[dict[str, Any]]:
    out = []
    for rel, (parse_field, _) in EXPECTED.items():
        if parse_field is None:
            out.append(tomllib.loads((SAMPLES / rel).read_text()))
    return out


def _assert_only_descriptor_errors(contents: Any) -> None:
    try:
        d = parse_descriptor(contents)
    except DescriptorError as err:
        assert err.field and err.reason
        assert str(err) == f"descriptor field '{err.field}': {err.reason}"
        return
    assert first_unfit(contents) is None, "a descriptor with no strict JSON form was accepted"
    with contextlib.suppress(DescriptorError):
        check_sagemaker_support(d)


def test_fuzz_random_json_like_values() -> None:
    rng = random.Random(20240617)
    for _ in range(2000):
        _assert_only_descriptor_errors(_random_value(rng, 0))


def test_fuzz_mutated_valid_descriptors() -> None:
    rng = random.Random(1234)
    bases = _valid_contents()
    for _ in range(3000):
        contents = copy.deepcopy(rng.choice(bases))
        for _ in range(rng.randrange(1, 4)):
            contents = _mutate(rng, contents)
        _assert_only_descriptor_errors(contents)
