"""Issue 9 with the executor as deployed: a separate process against a real broker and the local
SageMaker over HTTP, which enforces botocore's SageMaker model as the real service does.

Each request SageMaker would refuse ends as the ERROR a user reads, with no job and no source archive
in the output bucket; ids SageMaker would not take as a job name or a tag value give a job the local
SageMaker accepts, which cancel then finds."""

from __future__ import annotations

import pytest

from sagemaker_executor.domain.translation import TAG_ACTION_ID, job_name_for, tag_value_for
from tests.builders import cancel_command, fetcher_event, minimal_contents
from tests.integration.conftest import OUTPUT_BUCKET, Pipeline
from tests.unit.test_preflight import ISSUE_CASES

pytestmark = pytest.mark.integration

BAD_ID = "nightly run #42 (retry!)\n"


def test_refused_before_any_aws_call_and_odd_ids_still_run(pipeline: Pipeline) -> None:
    p = pipeline
    refused = [(fetcher_event(contents, **fields), expected) for _, contents, fields, expected in ISSUE_CASES]
    odd = fetcher_event(minimal_contents(), action_id=BAD_ID)
    executor = p.start_executor(WATCH_JOBS="false")
    for event, _ in refused:
        p.publish(p.topics.fetcher, event)
    p.publish(p.topics.fetcher, odd)
    p.wait_for(
        lambda: (
            all(len(p.statuses(event["action_id"])) == 2 for event, _ in refused)
            and len(p.executor_events(BAD_ID)) == 1
            # its status is on another topic, read apart: it may arrive after the executor event
            and "SUCCEEDED" in p.statuses_only(BAD_ID)
        ),
        what="every submission answered",
    )

    s3 = p.session.client("s3", endpoint_url=p.aws_url)
    jobs = {job["name"] for job in p.control.jobs()}
    for event, expected in refused:
        assert p.statuses(event["action_id"])[1] == ("ERROR", f"Cannot process the request: {expected}")
        assert event["action_id"] not in jobs
        listing = s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix=f"{event['action_id']}/")
        assert listing.get("KeyCount", 0) == 0
    assert "a" + "-" * 70 + "b" not in jobs  # the custom name of the first case

    name = job_name_for(BAD_ID)
    assert [status for status, _ in p.statuses(BAD_ID)] == ["PENDING", "SUCCEEDED"]
    assert p.executor_events(BAD_ID)[0]["payload"]["job"]["id"] == name and name in jobs
    sm = p.session.client("sagemaker", endpoint_url=p.aws_url)
    arn = sm.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
    tags = {tag["Key"]: tag["Value"] for tag in sm.list_tags(ResourceArn=arn)["Tags"]}
    assert tags[TAG_ACTION_ID] == tag_value_for(BAD_ID)

    command = cancel_command(BAD_ID)
    p.publish(p.topics.cmd_submit, command)
    p.wait_for(
        lambda: any(r["action_id"] == command["action_id"] for r in p.on(p.topics.cmd_return)),
        what="CMD_RETURN",
    )
    response = next(r for r in p.on(p.topics.cmd_return) if r["action_id"] == command["action_id"])
    assert response["payload"]["return_code"] == 0, response["payload"]
    assert executor.terminate() == 0, executor.log_text()[-3000:]
