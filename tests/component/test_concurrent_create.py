"""SageMakerJobs from many threads at once (the loop runs records concurrently): every job is created
once, with its own source archive, against the local SageMaker over HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from sagemaker_executor.adapters.sagemaker import SageMakerJobs
from sagemaker_executor.adapters.sourcedir import build_source_dir
from sagemaker_executor.domain.descriptor import parse_descriptor
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.translation import translate
from sagemaker_executor.local.server import server_process
from tests.builders import SITE, fetcher_event, minimal_contents


@pytest.fixture(scope="module")
def endpoint():
    with server_process(phase_seconds=30) as control:
        yield control.base_url


def test_twenty_jobs_from_eight_threads(endpoint, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=SITE.output_bucket)
    jobs = SageMakerJobs(session, default_bucket=SITE.output_bucket, retry_attempts=3)
    requests: list[dict[str, Any]] = []
    jobs.boto_client.meta.events.register(
        "before-parameter-build.sagemaker.CreateTrainingJob",
        lambda params, **_: requests.append(dict(params)),
    )

    def create(index: int) -> str:
        contents = minimal_contents(ml={"benchmark_code": f"echo job-{index}"})
        event = fetcher_event(contents)
        spec = translate(parse_descriptor(contents), FetcherBenchmarkEvent.model_validate(event), SITE)
        source = tmp_path / f"src-{index}"
        build_source_dir(source, [], spec.entry_files, (), max_total_bytes=10**6)
        jobs.create(spec, source)
        return spec.job_name

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(create, range(20)))

    assert sorted(r["TrainingJobName"] for r in requests) == sorted(names)
    s3 = session.client("s3")
    for index, name in enumerate(names):
        request = next(r for r in requests if r["TrainingJobName"] == name)
        code = request["InputDataConfig"][0]
        assert code["ChannelName"] == "anubis_code"
        assert (
            code["DataSource"]["S3DataSource"]["S3Uri"]
            == f"s3://{SITE.output_bucket}/{name}/source/anubis_code/"
        )
        body = s3.get_object(Bucket=SITE.output_bucket, Key=f"{name}/source/anubis_code/bootstrap.sh")["Body"]
        script = body.read().decode()
        assert f"echo job-{index}" in script
