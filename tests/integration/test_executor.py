"""The executor as deployed -- a separate process, configured by environment variables -- against a real
Kafka-protocol broker and the local SageMaker over HTTP. Asserts exact event sequences and the jobs
that SageMaker ends up with."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sagemaker_executor.domain.translation import TAG_ACTION_ID
from tests.builders import cancel_command, fetcher_event, minimal_contents
from tests.integration.conftest import OUTPUT_BUCKET, SCRIPTS_BUCKET, Pipeline

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DescribeTrainingJobResponseTypeDef

pytestmark = pytest.mark.integration

# These tests pin the submission path; job tracking (on by default) is tested in test_tracking.py.


def _job(p: Pipeline, name: str) -> DescribeTrainingJobResponseTypeDef:
    sm = p.session.client("sagemaker", endpoint_url=p.aws_url)
    return sm.describe_training_job(TrainingJobName=name)


def _jobs_tagged(p: Pipeline, action_id: str) -> list[str]:
    sm = p.session.client("sagemaker", endpoint_url=p.aws_url)
    result = sm.search(
        Resource="TrainingJob",
        SearchExpression={
            "Filters": [{"Name": f"Tags.{TAG_ACTION_ID}", "Operator": "Equals", "Value": action_id}]
        },
    )
    return [r["TrainingJob"]["TrainingJobName"] for r in result["Results"]]


def _upload_tar(p: Pipeline, members: dict[str, bytes | tuple[str, str]], name: str) -> str:
    """A tarball in the scripts bucket; a tuple value ("symlink", target) makes a link member."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for member, content in members.items():
            info = tarfile.TarInfo(member)
            if isinstance(content, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, content[1]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    key = f"anubis0/{name}.tar"
    p.session.client("s3", endpoint_url=p.aws_url).put_object(
        Bucket=SCRIPTS_BUCKET, Key=key, Body=buffer.getvalue()
    )
    return f"s3://{SCRIPTS_BUCKET}/{key}"


def test_submission_invalid_garbage_other_engine_and_cancel(pipeline: Pipeline) -> None:
    p = pipeline
    good = fetcher_event(
        minimal_contents(ml={"benchmark_code": "python bench/run.py"}),
        scripts=[
            _upload_tar(p, {"bench/run.py": b"print('ok')\n", "bench/requirements.txt": b"numpy\n"}, "good")
        ],
    )
    invalid = fetcher_event(minimal_contents(hardware={"instance_type": "ml.c5.xlarge", "strategy": "warp"}))
    other = fetcher_event(minimal_contents(info={"description": "k8s job", "execution_engine": "default"}))
    executor = p.start_executor(WATCH_JOBS="false")
    p.publish(p.topics.fetcher, b"\x00 definitely not json", key="someone")
    for event in (good, invalid, other):
        p.publish(p.topics.fetcher, event)

    p.wait_for(
        lambda: (
            len(p.statuses(invalid["action_id"])) == 2
            and len(p.executor_events(good["action_id"])) == 1
            and len(p.on(p.topics.dead_letter)) == 1
        ),
        what="submission outcomes",
    )
    assert [s for s, _ in p.statuses(good["action_id"])] == ["PENDING", "SUCCEEDED"]
    assert p.statuses(good["action_id"])[1][1] == "Benchmark successfully created..."
    (status, message) = p.statuses(invalid["action_id"])[1]
    assert status == "ERROR" and "hardware.strategy" in message and "warp" in message
    assert p.statuses(other["action_id"]) == [] and p.executor_events(invalid["action_id"]) == []
    dead = p.on(p.topics.dead_letter)
    assert len(dead) == 1 and "not valid JSON" in dead[0]["reason"]
    assert dead[0]["value"] == "\x00 definitely not json" and dead[0]["key"] == "someone"

    executor_event = p.executor_events(good["action_id"])[0]
    assert executor_event["payload"]["job"] == {"id": good["action_id"], "output": None, "extras": {}}
    assert executor_event["key"] == good["client_id"].encode()
    assert [v["svc"] for v in executor_event["visited"]][-1] == "sm-executor"
    job = _job(p, good["action_id"])
    assert job["ResourceConfig"]["InstanceCount"] == 1
    assert _jobs_tagged(p, good["action_id"]) == [good["action_id"]]
    assert _jobs_tagged(p, invalid["action_id"]) == []

    # Cancel: the job moves to Stopping/Stopped, the user sees SUCCEEDED under the target, CMD_RETURN 0.
    command = cancel_command(good["action_id"])
    p.publish(p.topics.cmd_submit, command)
    p.wait_for(
        lambda: any(r["action_id"] == command["action_id"] for r in p.on(p.topics.cmd_return)),
        what="CMD_RETURN",
    )
    response = next(r for r in p.on(p.topics.cmd_return) if r["action_id"] == command["action_id"])
    assert response["payload"]["return_code"] == 0
    assert response["payload"]["cmd_submit"]["message_id"] == command["message_id"]
    assert p.statuses(good["action_id"])[-1] == ("SUCCEEDED", "Execution successfully cancelled...")
    assert _job(p, good["action_id"])["TrainingJobStatus"] in ("Stopping", "Stopped")

    # Cancel of an action nobody ran: code 1 and no status.
    unknown = cancel_command("no-such-action")
    p.publish(p.topics.cmd_submit, unknown)
    p.wait_for(
        lambda: any(r["action_id"] == unknown["action_id"] for r in p.on(p.topics.cmd_return)),
        what="not-found",
    )
    response = next(r for r in p.on(p.topics.cmd_return) if r["action_id"] == unknown["action_id"])
    assert response["payload"] == {
        **response["payload"],
        "return_code": 1,
        "message": "Cancel command failed: No resources found for 'no-such-action'",
    }
    assert p.statuses("no-such-action") == []

    assert executor.terminate() == 0, executor.log_text()[-3000:]


def test_kill_after_create_before_commit_then_restart_yields_one_job(pipeline: Pipeline, broker) -> None:
    """The broker is paused while the job is being created, so the executor cannot get its acks and
    cannot commit; it is then killed -9. The restarted executor must adopt the job, not create a second."""
    if broker is None:
        pytest.skip("needs the embedded broker to pause it")  # only when pointed at an external Kafka
    p = pipeline
    p.control.set_faults(latency_ms=700)  # widen the window between PENDING and the job's creation
    name = "restart-" + uuid.uuid4().hex[:12]
    event = fetcher_event(minimal_contents(custom_params={"sagemaker_job_name": name}))
    first = p.start_executor(WATCH_JOBS="false")
    try:
        p.publish(p.topics.fetcher, event)
        p.wait_for(lambda: len(p.statuses(event["action_id"])) >= 1, what="PENDING")
        broker.pause()
        try:
            deadline_names = lambda: any(j["name"] == name for j in p.control.jobs())  # noqa: E731
            _wait_plain(deadline_names, 60, "the job to be created")
            first.kill()
        finally:
            broker.resume()
    finally:
        p.control.set_faults(latency_ms=0)
    assert "SUCCEEDED" not in [s for s, _ in p.statuses(event["action_id"])]

    second = p.start_executor(WATCH_JOBS="false")
    # Records the first process had written to its socket may still reach the broker after the
    # resume; either way the second process gets the uncommitted record again and must adopt the job.
    p.wait_for(lambda: "earlier attempt" in second.log_text(), timeout=90, what="the job to be adopted")
    p.wait_for(lambda: len(p.executor_events(event["action_id"])) >= 1, what="the executor event")
    assert [j["name"] for j in p.control.jobs() if j["name"] == name] == [name]
    assert "SUCCEEDED" in [s for s, _ in p.statuses(event["action_id"])]
    assert {e["payload"]["job"]["id"] for e in p.executor_events(event["action_id"])} == {name}
    assert second.terminate() == 0


def test_sigterm_during_start_up_exits_cleanly_without_joining(pipeline: Pipeline) -> None:
    """A pod stopped while it starts (a rollout moving on) exits 0 at its next start-up step, not by
    the signal, and never joins the group. AWS latency holds start-up in the role lookup."""
    p = pipeline
    p.control.set_faults(latency_ms=1500)
    try:
        executor = p.start_executor()  # SAGEMAKER_ROLE is a role name: start-up looks it up in IAM
        _wait_plain(lambda: "starting" in executor.log_text(), 60, "start-up to begin")
        code = executor.terminate()
    finally:
        p.control.set_faults(latency_ms=0)
    log_text = executor.log_text()
    assert code == 0, log_text[-3000:]
    assert "received SIGTERM" in log_text and "stopped during start-up" in log_text, log_text[-3000:]
    assert "partitions assigned" not in log_text


def test_hostile_descriptor_and_tarball_touch_nothing_outside_the_source_dir(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    p = pipeline
    canary = tmp_path / "canary"
    hostile_values = {
        "SUBST": f"$(touch {canary}-subst)",
        "TICKS": f"`touch {canary}-ticks`",
        "SEMI": f"x; touch {canary}-semi",
        "QUOTES": 'it\'s "quoted" \\ back',
        "NEWLINE": f"line1\ntouch {canary}-newline",
    }
    env_event = fetcher_event(
        minimal_contents(
            env={"docker_image": "img:1", "vars": hostile_values},
            ml={"benchmark_code": 'env > "$OUT"'},
        )
    )
    traversal = fetcher_event(
        scripts=[_upload_tar(p, {"ok.py": b"1", f"../{canary.name}-dotdot": b"x"}, "dotdot")]
    )
    absolute = fetcher_event(scripts=[_upload_tar(p, {f"{canary}-abs": b"x"}, "absolute")])
    symlink = fetcher_event(
        scripts=[_upload_tar(p, {"link": ("symlink", str(tmp_path)), "link/escaped": b"x"}, "symlink")]
    )
    sources = p.workdir / "sources"
    p.start_executor(WATCH_JOBS="false")
    before = _tree(tmp_path, exclude=sources)
    for event in (env_event, traversal, absolute, symlink):
        p.publish(p.topics.fetcher, event)
    p.wait_for(
        lambda: all(len(p.statuses(e["action_id"])) == 2 for e in (env_event, traversal, absolute, symlink)),
        what="all four answered",
    )

    for event, reason in ((traversal, ".."), (absolute, "absolute"), (symlink, "link")):
        status, message = p.statuses(event["action_id"])[1]
        assert status == "ERROR" and reason in message, message
    assert p.statuses(env_event["action_id"])[1][0] == "SUCCEEDED"
    assert _tree(tmp_path, exclude=sources) == before, "a file appeared outside the source dir"
    assert not list(sources.iterdir()), "source dirs are removed after each submission"

    # Run the bootstrap uploaded for the env-var job, with the variables as the job's Environment (as
    # SageMaker sets them): values arrive verbatim, nothing executes.
    source = _download_source(p, env_event["action_id"], tmp_path / "unpacked")
    out = tmp_path / "env.txt"
    result = subprocess.run(
        ["sh", str(source / "bootstrap.sh")],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "OUT": str(out), **hostile_values},
    )
    assert result.returncode == 0
    env = dict(
        line.split("=", 1)
        for line in out.read_text().split("\n")
        if "=" in line and line.split("=", 1)[0] in hostile_values
    )
    for key, value in hostile_values.items():
        if "\n" not in value:
            assert env[key] == value
    assert not list(tmp_path.glob("canary*")), "a value was executed"


def _wait_plain(condition, timeout: float, what: str) -> None:
    """Wait without draining Kafka (the broker is paused)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def _tree(root: Path, exclude: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if exclude not in path.parents and path != exclude
    }


def _download_source(p: Pipeline, job_name: str, dest: Path) -> Path:
    """The job's code channel (command mode: one object per file under its prefix), as SageMaker
    copies it into the container."""
    s3 = p.session.client("s3", endpoint_url=p.aws_url)
    prefix = f"{job_name}/source/anubis_code/"
    listed = s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix=prefix)["Contents"]
    assert listed, "nothing uploaded under the code channel's prefix"
    for item in listed:
        path = dest / item["Key"][len(prefix) :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.get_object(Bucket=OUTPUT_BUCKET, Key=item["Key"])["Body"].read())
    return dest


def test_readiness_turns_false_when_the_broker_dies_and_true_when_it_is_back(pipeline: Pipeline) -> None:
    # A broker of this test's own, killed outright (the fault suite freezes the shared one instead).
    from sagemaker_executor.local.broker import LocalBroker

    with LocalBroker() as own:
        executor = pipeline.start_executor(KAFKA_BOOTSTRAP_SERVERS=own.bootstrap_servers, HEALTH_PORT="0")
        deadline = time.monotonic() + 60
        while executor.readiness()[0] != 200:
            assert time.monotonic() < deadline, executor.log_text()[-3000:]
            time.sleep(0.25)
        own.stop()
        killed = time.monotonic()
        while executor.readiness()[0] == 200:
            # Within two session timeouts of the loss (KAFKA_SESSION_TIMEOUT_MS=6000 in these tests).
            assert time.monotonic() - killed < 12, "/readyz still 200 with the broker dead"
            time.sleep(0.25)
        status, reason = executor.readiness()
        assert status == 503 and "Kafka brokers not reachable" in reason
        assert "KAFKA_BOOTSTRAP_SERVERS" in reason  # the fix is named
        own.start()  # the same port again
        back = time.monotonic() + 60
        while executor.readiness()[0] != 200:
            assert time.monotonic() < back, executor.readiness()[1]
            time.sleep(0.25)
        assert "Kafka brokers reachable" in executor.log_text()
        assert executor.terminate() == 0
