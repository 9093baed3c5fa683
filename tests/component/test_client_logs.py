"""``sagemaker-executor logs``: the action's job found as cancel finds it, its log printed from moto's
CloudWatch Logs (written here as SageMaker writes it), every host interleaved, and ``--follow`` on the
local SageMaker's manual clock until the job has ended; errors as one line and an exit code."""

from __future__ import annotations

import io
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sagemaker_executor.cli import main
from sagemaker_executor.client import joblogs
from sagemaker_executor.client.errors import ClientError, ExitCode
from sagemaker_executor.client.view import View
from sagemaker_executor.config import load_settings
from sagemaker_executor.domain.translation import TAG_ACTION_ID, TAG_CLIENT_ID
from sagemaker_executor.local.sagemaker import LocalSageMaker, ManualClock, Timeline
from tests.builders import create_training_job, write_job_log

ACTION = "3f2a1b9c-0000-4000-8000-00000000000a"
CLIENT = "c" * 40
TIMELINE = Timeline(starting=20, downloading=20, training=60, uploading=20, stopping=10)
POLL_S = 5.0


class World:
    def __init__(self, session: boto3.Session, clock: ManualClock, local: LocalSageMaker) -> None:
        self.sm = session.client("sagemaker")
        self.cw = session.client("logs")
        self.clock = clock
        self.local = local
        self.out, self.err = io.StringIO(), io.StringIO()
        self.settings = load_settings({}, {"AWS_DEFAULT_REGION": "us-east-1"}, client=True)

    def create(
        self, name: str = ACTION, *, action: str = ACTION, client: str = CLIENT, hosts: int = 1
    ) -> str:
        create_training_job(
            self.sm,
            name,
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": hosts, "VolumeSizeInGB": 10},
            Tags=[{"Key": TAG_ACTION_ID, "Value": action}, {"Key": TAG_CLIENT_ID, "Value": client}],
        )
        return name

    def logs(self, action: str = ACTION, *, follow: bool = False, timeout_s: float | None = None) -> ExitCode:
        view = View(self.out, self.err, terminal=False)
        return joblogs.logs(
            self.settings, action, CLIENT, follow=follow, timeout_s=timeout_s, view=view, poll_s=POLL_S
        )

    @property
    def printed(self) -> list[str]:
        return self.out.getvalue().splitlines()


@pytest.fixture
def world() -> Any:
    clock = ManualClock()
    with mock_aws(), LocalSageMaker(clock, TIMELINE) as local:
        yield World(boto3.Session(region_name="us-east-1"), clock, local)


def test_every_hosts_lines_interleaved_by_time_each_with_its_host(world: World) -> None:
    world.create(hosts=2)
    start = int(time.time() * 1000) - 60_000  # CloudWatch (and moto) drop events over 14 days old
    write_job_log(world.cw, ACTION, 1, ["1a", "1b", "1c"], start_ms=start, step_ms=10)
    write_job_log(world.cw, ACTION, 2, ["2a", "2b"], start_ms=start + 5, step_ms=10)

    assert world.logs() is ExitCode.OK
    assert world.printed == ["[algo-1] 1a", "[algo-2] 2a", "[algo-1] 1b", "[algo-2] 2b", "[algo-1] 1c"]
    assert f"training job {ACTION}: InProgress/Starting" in world.err.getvalue()


def test_one_host_prints_the_lines_as_they_are(world: World) -> None:
    world.create()
    write_job_log(world.cw, ACTION, 1, ["hello", "Traceback (most recent call last):\n  File x\n"])
    assert world.logs() is ExitCode.OK
    assert world.printed == ["hello", "Traceback (most recent call last):", "  File x"]


def test_a_custom_named_job_is_found_by_its_action_tag(world: World) -> None:
    world.create("my-benchmark-run")
    write_job_log(world.cw, "my-benchmark-run", 1, ["custom"])
    assert world.logs() is ExitCode.OK
    assert world.printed == ["custom"]


@pytest.mark.parametrize("owner", [CLIENT, "another-client"])
def test_an_action_without_a_job_of_this_client_is_not_found(world: World, owner: str) -> None:
    if owner != CLIENT:
        world.create(client=owner)
    with pytest.raises(ClientError) as caught:
        world.logs("unknown-action" if owner == CLIENT else ACTION)
    assert caught.value.code is ExitCode.NOT_FOUND
    assert "no training job for action" in caught.value.message and "--client-id" in caught.value.message


def test_no_log_yet_says_so_and_how_to_wait(world: World) -> None:
    world.create()
    with pytest.raises(ClientError) as caught:
        world.logs()
    assert caught.value.code is ExitCode.NOT_FOUND
    assert caught.value.message.startswith(f"no log yet for training job {ACTION} (InProgress/Starting)")
    assert "--follow waits for it" in caught.value.message


def test_a_region_is_needed(world: World) -> None:
    world.settings = load_settings({}, {}, client=True)
    with pytest.raises(ClientError) as caught:
        world.logs()
    assert caught.value.code is ExitCode.USAGE and "AWS_DEFAULT_REGION" in caught.value.message


# ------------------------------------------------------------------------------------------- follow


def job_that_logs_every_poll(world: World, monkeypatch: pytest.MonkeyPatch, *, hosts: int = 1) -> list[float]:
    """Each pause of the command moves the clock on by a poll and the job writes one more line per host."""
    slept: list[float] = []
    start = int(world.clock.now().timestamp() * 1000)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        world.clock.advance(seconds)
        for host in range(1, hosts + 1):
            write_job_log(
                world.cw, ACTION, host, [f"tick {len(slept)}"], start_ms=start + len(slept) * 1000 + host
            )

    monkeypatch.setattr(joblogs, "sleep", sleep)
    return slept


def test_follow_reads_until_the_job_has_ended_and_its_last_lines_are_printed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.local.set_outcome(ACTION, TIMELINE.failing("AlgorithmError: exit code 1"))
    world.create()
    write_job_log(world.cw, ACTION, 1, ["starting"])
    slept = job_that_logs_every_poll(world, monkeypatch)

    assert world.logs(follow=True) is ExitCode.FAILED
    # Failed 100 s in: seen at the 20th poll, then one more pause for the lines that arrive late.
    assert len(slept) == 21 and set(slept) == {POLL_S}
    assert world.printed == ["starting", *(f"tick {n}" for n in range(1, 22))]
    assert "Failed: AlgorithmError: exit code 1" in world.err.getvalue().splitlines()[-1]


def test_follow_of_several_hosts_prefixes_each_line(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.create(hosts=2)
    job_that_logs_every_poll(world, monkeypatch, hosts=2)

    assert world.logs(follow=True) is ExitCode.OK  # the job completed
    assert world.printed[:4] == ["[algo-1] tick 1", "[algo-2] tick 1", "[algo-1] tick 2", "[algo-2] tick 2"]


def test_follow_of_a_job_that_had_ended_reads_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.create()
    world.clock.advance(500)
    write_job_log(world.cw, ACTION, 1, ["all done"])
    slept = job_that_logs_every_poll(world, monkeypatch)

    assert world.logs(follow=True) is ExitCode.OK
    assert slept == [] and world.printed == ["all done"]


def test_follow_of_a_job_that_ended_without_a_log(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.local.set_outcome(ACTION, TIMELINE.failing("ClientError: no such image"))
    world.create()
    world.clock.advance(500)
    with pytest.raises(ClientError) as caught:
        world.logs(follow=True)
    assert caught.value.code is ExitCode.NOT_FOUND
    assert "ended (Failed: ClientError: no such image) without writing a log" in caught.value.message


def test_follow_gives_up_after_the_timeout(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    world.create()
    write_job_log(world.cw, ACTION, 1, ["starting"])
    ticks = iter(range(0, 10_000, 4))
    monkeypatch.setattr(joblogs, "monotonic", lambda: next(ticks))
    job_that_logs_every_poll(world, monkeypatch)
    with pytest.raises(ClientError) as caught:
        world.logs(follow=True, timeout_s=30)
    assert caught.value.code is ExitCode.TIMED_OUT and "goes on" in caught.value.message


def test_ctrl_c_exits_130_through_the_cli_and_the_job_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    world.create()
    write_job_log(world.cw, ACTION, 1, ["starting"])

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(joblogs, "sleep", interrupted)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert main(["logs", ACTION, "--follow", "--client-id", CLIENT]) == int(ExitCode.INTERRUPTED) == 130
    out, err = capsys.readouterr()
    assert out.splitlines() == ["starting"]
    assert err.splitlines()[-1].startswith(
        f"sagemaker-executor logs: interrupted; training job {ACTION} goes on"
    )


def test_the_cli_prints_the_log_and_exits_0(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.create()
    write_job_log(world.cw, ACTION, 1, ["through main"])
    assert main(["logs", ACTION, "--client-id", CLIENT]) == 0
    assert capsys.readouterr().out == "through main\n"


def test_the_cli_says_not_found_with_exit_13(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "nothing-here", "--client-id", CLIENT]) == int(ExitCode.NOT_FOUND) == 13
    assert capsys.readouterr().err.startswith(
        "sagemaker-executor logs: no training job for action nothing-here"
    )
