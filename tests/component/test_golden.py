"""Golden CreateTrainingJob requests: descriptor + fetcher event in, the request SageMaker receives out.

Runs the real path (translation, source dir, then the boto3 request builder or the SDK Estimator's
``fit(wait=False)``; both must match the same file) against moto with the local SageMaker layer, and
captures the request with botocore's ``before-parameter-build`` hook -- moto's stored copy drops fields
(FACTS.md). ``UPDATE_GOLDEN=1`` rewrites the files from the boto3 builder; review the diff. The files
are readable examples; ``test_request_oracle.py`` compares the two builders on generated descriptors.
"""

from __future__ import annotations

import json
import os
import tarfile
import tomllib
from io import BytesIO
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sagemaker_executor.adapters import sourcedir
from sagemaker_executor.adapters.s3 import ScriptStore
from sagemaker_executor.adapters.sagemaker import RequestBuilderName, SageMakerJobs
from sagemaker_executor.domain.command import HOROVOD_NEEDS_TOOLKIT
from sagemaker_executor.local.sagemaker import LocalSageMaker
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings
from tests.builders import SITE, fetcher_event, minimal_contents, sample
from tests.conftest import SAMPLES
from tests.fakes import FakeSink

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SCRIPT_URI = "s3://scripts-exchange/anubis0/2cf5f8ef69c341e62a8c827a787eca248d482ce3.tar"
ACTION = "922ab045-929f-4880-a448-61419583167a"
DATASET = {
    "src": "s3://my-bucket/imagenet/train",
    "path": "/data/train",
    "id": "train",
    "md5": None,
    "dst": "s3://data-pull/data_sets/b3678b/imagenet/train",
    "type": "DIRECTORY",
    "status": "DONE",
    "message": None,
    "size_info": {"total_size": 147897477120, "file_count": 1024, "max_size": 150000000},
}


def _toml(relative: str) -> dict[str, Any]:
    return tomllib.loads((SAMPLES / relative).read_text())


def _script_tar() -> bytes:
    buffer = BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, text in {
            "horovod/examples/bench.py": "print('hi')\n",
            "horovod/requirements.txt": "numpy\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, BytesIO(data))
    return buffer.getvalue()


HOROVOD_GPU = minimal_contents(
    hardware={
        "instance_type": "ml.p3.16xlarge",
        "strategy": "horovod",
        "distributed": {"num_instances": 2, "processes_per_instance": "gpus"},
    },
    ml={"benchmark_code": "python horovod/examples/bench.py"},
)
CASES: dict[str, dict[str, Any]] = {
    # The two samples the contract calls valid for SageMaker (samples/INDEX.md).
    "cs_customparameter": {
        "contents": _toml(
            "descriptors/kafka-utils/tests/bai_kafka_utils/executors/test_descriptor/cs_customparameter_descriptor.toml"
        )
    },
    "readme_sagemaker_training_job": {
        "contents": _toml("docs-examples/executor-README.sagemaker-training-job.toml"),
        "datasets": [DATASET],
    },
    # The generated end-to-end sample: the same descriptor plus --script and a data source.
    "generated_fetcher_event": {
        "event": sample("generated/04.fetcher.BAI_APP_FETCHER.json"),
        "scripts": True,
    },
    "single_node_defaults": {"contents": minimal_contents()},
    # Command mode: any image, benchmark_code through the bootstrap, scripts and data in channels.
    "command_mode_scripts_datasets": {
        "contents": minimal_contents(
            hardware={"instance_type": "ml.p3.16xlarge", "distributed": {"num_instances": 2}},
            env={"docker_image": "python:3-alpine", "vars": {"EPOCHS": "2"}},
            ml={"benchmark_code": "python horovod/examples/bench.py --epochs $(EPOCHS)", "args": "--fast"},
            data={"sources": [{"src": DATASET["src"], "path": DATASET["path"], "id": DATASET["id"]}]},
        ),
        "scripts": True,
        "datasets": [DATASET],
    },
    "horovod_pytorch": {
        "contents": {
            **HOROVOD_GPU,
            "ml": {"benchmark_code": "python train.py", "framework": "pytorch", "framework_version": "2.1"},
            "custom_params": {"python_version": "py310", "custom_mpi_options": "-x NCCL_DEBUG=INFO"},
        }
    },
    "horovod_mxnet_fixed_processes": {
        "contents": {
            **HOROVOD_GPU,
            "hardware": {
                "instance_type": "ml.c5.18xlarge",
                "strategy": "horovod",
                "distributed": {"num_instances": 3, "processes_per_instance": "4"},
            },
            "ml": {"benchmark_code": "python train.py", "framework": "mxnet", "framework_version": "1.9.0"},
            "custom_params": {"python_version": "py38"},
        }
    },
    "bring_your_own_container": {
        "contents": minimal_contents(ml=None, env={"docker_image": "my/image:1", "vars": {"MODE": "bench"}})
    },
    "spot_runtime_checkpoint_tags_requirements": {
        "contents": minimal_contents(
            custom_params={
                "max_run_seconds": 7200,
                "use_spot_instances": True,
                "max_wait_seconds": 10800,
                "checkpoint_s3_uri": "s3://ckpt/bench",
                "tags": {"team": "perf"},
                "requirements": ["numpy==1.26.4", "tqdm"],
                "hyper_params": {"epochs": 3, "lr": 0.1, "name": "fast"},
            },
            output={"metrics": [{"name": "img", "units": "img/s", "pattern": "Img/sec: (\\S+)"}]},
        ),
        "parent": "scheduled-action-1",
    },
}


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(), LocalSageMaker():
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        for bucket in ("sm-output", "scripts-exchange", "scripts-exchange-0123456789abcdef"):
            s3.create_bucket(Bucket=bucket)
        for bucket in ("scripts-exchange", "scripts-exchange-0123456789abcdef"):
            s3.put_object(Bucket=bucket, Key=SCRIPT_URI.split("/", 3)[3], Body=_script_tar())
        yield session


def _run(
    session, case: dict[str, Any], builder: RequestBuilderName = "boto3"
) -> tuple[dict[str, Any], FakeSink, Path]:
    jobs = SageMakerJobs(session, default_bucket="sm-output", retry_attempts=2, request_builder=builder)
    captured: list[dict[str, Any]] = []
    jobs.boto_client.meta.events.register(
        "before-parameter-build.sagemaker.CreateTrainingJob",
        lambda params, **_: captured.append(json.loads(json.dumps(params))),
    )
    if "event" in case:
        event = case["event"]
    else:
        event = fetcher_event(
            case["contents"],
            action_id=ACTION,
            datasets=case.get("datasets", []),
            scripts=[SCRIPT_URI] if case.get("scripts") else [],
        )
        event["parent_action_id"] = case.get("parent")
    sink = FakeSink()
    emitter = StatusEmitter(sink, status_topic="BAI_APP_STATUS", node="n")
    handler = SubmissionHandler(
        jobs,
        ScriptStore(session, 2),
        emitter,
        SubmissionSettings(SITE, "BAI_APP_EXECUTOR", "/tmp", 10**7),
        sources=sourcedir,
    )
    handler.handle(event)
    sink.flush()
    assert [e["payload"]["status"] for e in sink.on("BAI_APP_STATUS")] == ["PENDING", "SUCCEEDED"], sink.on(
        "BAI_APP_STATUS"
    )[-1]["payload"]["message"]
    assert len(captured) == 1
    return captured[0], sink, Path()


@pytest.mark.parametrize("builder", ["boto3", "sdk"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_create_training_job_request_matches_golden(aws, name: str, builder: RequestBuilderName) -> None:
    request, sink, _ = _run(aws, CASES[name], builder)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN") and builder == "boto3":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(request, indent=2, sort_keys=True) + "\n")
    assert request == json.loads(path.read_text())
    job_id = sink.on("BAI_APP_EXECUTOR")[0]["payload"]["job"]["id"]
    assert job_id == request["TrainingJobName"]


def test_generic_estimator_carries_the_same_mpi_request_as_a_framework_estimator(aws) -> None:
    # An image's own entrypoint (no benchmark_code) gets MPI as the generic Estimator sends it.
    generic, _, _ = _run(aws, {"contents": {**HOROVOD_GPU, "ml": {"args": "--fast"}}})
    framework_case = {
        "contents": {
            **HOROVOD_GPU,
            "ml": {**HOROVOD_GPU["ml"], "framework": "tensorflow", "framework_version": "2.14"},
        }
    }
    framework_case["contents"]["custom_params"] = {"sagemaker_job_name": "tf-variant"}
    framework, _, _ = _run(aws, framework_case)
    mpi = {k: v for k, v in generic["HyperParameters"].items() if k.startswith("sagemaker_mpi")}
    framework_mpi = {k: v for k, v in framework["HyperParameters"].items() if k.startswith("sagemaker_mpi")}
    assert mpi.keys() == framework_mpi.keys()
    # str()'d without an entry point, JSON-encoded with one: as each estimator sends them
    assert {k: json.loads(v) for k, v in framework_mpi.items()} == {
        "sagemaker_mpi_enabled": True,
        "sagemaker_mpi_num_of_processes_per_host": 8,
        "sagemaker_mpi_custom_mpi_options": mpi["sagemaker_mpi_custom_mpi_options"],
    }
    assert mpi["sagemaker_mpi_enabled"] == "True" and mpi["sagemaker_mpi_num_of_processes_per_host"] == "8"


def test_horovod_without_a_framework_image_is_an_error_naming_the_images_that_run_it(aws) -> None:
    jobs = SageMakerJobs(aws, default_bucket="sm-output", retry_attempts=2)
    sink = FakeSink()
    handler = SubmissionHandler(
        jobs,
        ScriptStore(aws, 2),
        StatusEmitter(sink, status_topic="BAI_APP_STATUS", node="n"),
        SubmissionSettings(SITE, "BAI_APP_EXECUTOR", "/tmp", 10**7),
        sources=sourcedir,
    )
    handler.handle(fetcher_event(HOROVOD_GPU, action_id=ACTION, scripts=[SCRIPT_URI]))
    sink.flush()
    statuses = [(e["payload"]["status"], e["payload"]["message"]) for e in sink.on("BAI_APP_STATUS")]
    assert statuses[-1] == (
        "ERROR",
        f"Cannot process the request: descriptor field 'hardware.strategy': {HOROVOD_NEEDS_TOOLKIT}",
    )
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_command_mode_uploads_each_file_under_the_code_channel_prefix(aws) -> None:
    request, _, _ = _run(aws, CASES["command_mode_scripts_datasets"])
    (code,) = [c for c in request["InputDataConfig"] if c["ChannelName"] == "anubis_code"]
    uri = code["DataSource"]["S3DataSource"]["S3Uri"]
    bucket, prefix = uri[len("s3://") :].split("/", 1)
    assert prefix == f"{ACTION}/source/anubis_code/"
    s3 = aws.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    files = {item["Key"][len(prefix) :] for item in listed}
    assert files == {
        "bootstrap.sh",
        "requirements.txt",
        "scripts/horovod/examples/bench.py",
        "scripts/horovod/requirements.txt",
    }
    text = s3.get_object(Bucket=bucket, Key=prefix + "bootstrap.sh")["Body"].read().decode()
    assert "anubis_command='python horovod/examples/bench.py --epochs 2 --fast'" in text
    assert "anubis_link /data/train /data train" in text
    requirements = s3.get_object(Bucket=bucket, Key=prefix + "requirements.txt")["Body"].read().decode()
    assert "-r scripts/horovod/requirements.txt" in requirements  # pip reads it relative to this file


def test_script_mode_source_dir_uploaded_holds_entry_scripts_and_unpacked_scripts(aws) -> None:
    request, _, _ = _run(aws, {**CASES["horovod_pytorch"], "scripts": True})
    uri = json.loads(request["HyperParameters"]["sagemaker_submit_directory"])
    bucket, key = uri[len("s3://") :].split("/", 1)
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=BytesIO(body)) as archive:
        names = set(archive.getnames())
        member = archive.extractfile("requirements.txt")
        assert member is not None, "requirements.txt is a regular file"
        requirements = member.read().decode()
    assert {"anubis_entry.py", "anubis_entry.sh", "horovod/examples/bench.py", "requirements.txt"} <= names
    assert "-r horovod/requirements.txt" in requirements
