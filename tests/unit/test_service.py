"""The service layer with in-memory adapters: event sequences, commits, dead letters, retries, cancel."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from sagemaker_executor.adapters import sourcedir
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings
from tests.builders import SITE, cancel_command, fetcher_event, minimal_contents
from tests.fakes import FakeJobs, FakeScripts, FakeSink, record
from tests.harness import CMD, DLQ, FETCHER, Harness


def test_successful_submission_publishes_pending_succeeded_then_executor_event(tmp_path) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    assert [s.topic for s in h.sink.acked] == ["BAI_APP_STATUS", "BAI_APP_STATUS", "BAI_APP_EXECUTOR"]
    assert [s for s, _ in h.statuses()] == ["PENDING", "SUCCEEDED"]
    executor = h.sink.on("BAI_APP_EXECUTOR")[0]
    assert executor["payload"]["job"]["id"] == event["action_id"]
    assert executor["visited"][-1]["svc"] == "sm-executor"
    assert all(s.key == event["client_id"] for s in h.sink.acked)
    assert h.source.committed == {(FETCHER, 0): 1}
    job = h.jobs.jobs[event["action_id"]]
    assert "bootstrap.sh" in job.files and "anubis_command='python bench.py'" in job.files["bootstrap.sh"]


def test_redelivered_submission_adopts_the_existing_job(tmp_path) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0), record(FETCHER, event, 1)])
    h.drain()
    assert len(h.jobs.jobs) == 1 and h.jobs.create_calls == 2
    assert [s for s, _ in h.statuses()] == ["PENDING", "SUCCEEDED", "PENDING", "SUCCEEDED"]
    assert len(h.sink.on("BAI_APP_EXECUTOR")) == 2


def test_custom_name_taken_by_another_action_is_an_error_naming_the_fix(tmp_path) -> None:
    contents = minimal_contents(custom_params={"sagemaker_job_name": "fixed-name"})
    first, second = fetcher_event(contents), fetcher_event(contents)
    h = Harness(tmp_path, [record(FETCHER, first, 0), record(FETCHER, second, 1)])
    h.drain()
    status, message = h.statuses()[-1]
    assert status == "ERROR"
    assert "fixed-name" in message and "sagemaker_job_name" in message and first["action_id"] in message
    assert len(h.sink.on("BAI_APP_EXECUTOR")) == 1


@pytest.mark.parametrize(
    ("contents", "field"),
    [
        (minimal_contents(hardware={"instance_type": "ml.c5.xlarge", "strategy": "inference"}), "hardware"),
        (minimal_contents(env={"docker_image": "img", "vars": {"BAD NAME": "x"}}), "env.vars"),
        ({**minimal_contents(), "surprise": 1}, "surprise"),
        (
            minimal_contents(
                hardware={"instance_type": "ml.c5.xlarge", "distributed": {"num_instances": "4"}}
            ),
            "num_instances",
        ),
    ],
)
def test_invalid_descriptor_ends_as_error_naming_the_field_and_no_job(tmp_path, contents, field) -> None:
    h = Harness(tmp_path, [record(FETCHER, fetcher_event(contents))])
    h.drain()
    statuses = h.statuses()
    assert [s for s, _ in statuses] == ["PENDING", "ERROR"]
    assert statuses[1][1].startswith("Cannot process the request") and field in statuses[1][1]
    assert h.jobs.jobs == {} and h.sink.on("BAI_APP_EXECUTOR") == []
    assert h.source.committed == {(FETCHER, 0): 1}


# --- issue 7, "Why" 8 and 9: user mistakes are the user's ERROR, never an internal error -----------


def _script_tar(*names: str) -> bytes:
    """A script tarball as the anubis client makes it, with a file at each of ``names``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            tar.addfile(tarfile.TarInfo(name), io.BytesIO(b""))
    return buffer.getvalue()


def _assert_refused_as_the_users_error(h: Harness, *fragments: str) -> str:
    statuses = h.statuses()
    assert [s for s, _ in statuses] == ["PENDING", "ERROR"]
    message = statuses[1][1]
    assert message.startswith("Cannot process the request: ") and "Internal error" not in message
    assert all(fragment in message for fragment in fragments), message
    assert len(message) < 500
    assert h.jobs.jobs == {} and h.sink.on("BAI_APP_EXECUTOR") == [] and h.sink.on(DLQ) == []
    assert h.source.committed == {(FETCHER, 0): 1}
    return message


def test_a_lone_surrogate_in_env_vars_is_an_error_naming_the_variable(tmp_path) -> None:
    """The event JSON holds "caf\\udce9"; json.loads turns it into text no UTF-8 encoder takes."""
    contents = minimal_contents(env={"docker_image": "img", "vars": {"LANG": "caf\udce9"}})
    data = json.dumps(fetcher_event(contents)).encode()
    assert b'"caf\\udce9"' in data
    h = Harness(tmp_path, [record(FETCHER, data)])
    h.drain()
    _assert_refused_as_the_users_error(
        h, "descriptor field 'env.vars.LANG': is not valid Unicode text", "lone surrogate"
    )


@pytest.mark.parametrize(
    ("member", "fragments"),
    [
        (
            "/".join(f"{i:03d}" + "d" * 97 for i in range(44)) + "/run.py",  # 4,400 bytes of directories
            ("is longer than the file system allows (ENAMETOOLONG)", "member '000ddd"),
        ),
        ("bench/" + "c" * 300 + "/run.py", ("has a path component longer than 255 bytes",)),
    ],
    ids=["4400-byte path", "300-byte component"],
)
def test_a_script_member_the_os_refuses_is_an_error_naming_archive_and_member(
    tmp_path, member, fragments
) -> None:
    uri = "s3://scripts-exchange/anubis0/0123abcd.tar"
    contents = minimal_contents(
        ml={"benchmark_code": "python bench/run.py", "script": {"script": "0123abcd.tar"}}
    )
    event = fetcher_event(contents, scripts=[uri])
    scripts = FakeScripts({uri: _script_tar("ok.py", member)})
    h = Harness(tmp_path / "tmp", [record(FETCHER, event)], scripts=scripts)
    h.drain()
    _assert_refused_as_the_users_error(
        h, "benchmark script rejected: script archive '0123abcd.tar': member ", *fragments
    )
    assert list((tmp_path / "tmp").iterdir()) == []  # the private workdir is gone with what it held


def test_a_nan_hyperparameter_is_an_error_naming_it_and_no_bare_nan_is_published(tmp_path) -> None:
    """``hyper_params = {lr = nan}`` is valid TOML 1.0; the BFF sends it as a bare NaN."""
    contents = minimal_contents(custom_params={"hyper_params": {"batch": 32, "lr": float("nan")}})
    data = json.dumps(fetcher_event(contents)).encode()
    assert b"NaN" in data  # what Python's json writes, and reads back
    h = Harness(tmp_path, [record(FETCHER, data)])
    h.drain()
    _assert_refused_as_the_users_error(
        h, "descriptor field 'custom_params.hyper_params.lr': must be a finite number, got NaN"
    )
    for sent in h.sink.acked:
        decoded = json.loads(sent.value, parse_constant=pytest.fail)
        src = decoded["payload"]["src_event"]["payload"]["toml"]["contents"]["custom_params"]
        assert src["hyper_params"]["lr"] == "NaN"  # rendered as a string, not null, not bare


def test_no_space_for_the_source_dir_is_an_outage_the_loop_retries(tmp_path) -> None:
    from sagemaker_executor.domain.errors import OutageError

    (tmp_path / "full").write_text("")  # TMP_SOURCES_DIR below a file: no directory can be made there
    sink = FakeSink()
    emitter = StatusEmitter(sink, status_topic="BAI_APP_STATUS", node="n", clock_ms=lambda: 1000)
    settings = SubmissionSettings(SITE, "BAI_APP_EXECUTOR", str(tmp_path / "full" / "tmp"), 10**6)
    handler = SubmissionHandler(FakeJobs(), FakeScripts(), emitter, settings, sources=sourcedir)
    with pytest.raises(OutageError) as caught:
        handler.handle(fetcher_event())
    assert caught.value.dependency == "disk"
    assert [e["payload"]["status"] for e in sink.on("BAI_APP_STATUS")] == []  # PENDING not yet flushed
    assert [json.loads(s.value)["payload"]["status"] for s in sink.pending] == ["PENDING"]


def test_other_engines_and_schedules_are_ignored_silently(tmp_path) -> None:
    other = minimal_contents(info={"description": "k8s", "execution_engine": "default"})
    cron = minimal_contents(
        info={"description": "c", "execution_engine": "aws.sagemaker", "scheduling": "0 * * * *"}
    )
    h = Harness(tmp_path, [record(FETCHER, fetcher_event(other), 0), record(FETCHER, fetcher_event(cron), 1)])
    h.drain()
    assert h.sink.acked == [] and h.jobs.jobs == {}
    assert h.source.committed == {(FETCHER, 0): 2}


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\xfe not utf8",
        b"{not json",
        b"[1, 2]",
        b'"text"',
        None,
        b'{"client_id": "c"}',
        b'{"action_id": "", "client_id": "c"}',
    ],
)
def test_unparseable_records_are_dead_lettered_with_a_reason_and_committed(tmp_path, value) -> None:
    good = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, value, 0), record(FETCHER, good, 1)])
    h.drain()
    dead = h.sink.on(DLQ)
    assert (
        len(dead) == 1
        and dead[0]["reason"]
        and dead[0]["source"] == {"topic": FETCHER, "partition": 0, "offset": 0}
    )
    assert [s for s, _ in h.statuses()] == ["PENDING", "SUCCEEDED"]
    assert h.source.committed == {(FETCHER, 0): 2}


def test_event_with_broken_payload_but_known_action_gets_an_error(tmp_path) -> None:
    event = fetcher_event()
    event["payload"]["datasets"] = [{"src": 5}]
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    status, message = h.statuses()[-1]
    assert status == "ERROR" and "payload.datasets[0]" in message


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (("payload", "datasets"), "payload.datasets[0].dst"),
        (("client_username",), "client_username"),
    ],
)
def test_event_text_that_is_not_unicode_is_refused_by_field(tmp_path, where, field) -> None:
    """A lone surrogate outside the descriptor could reach a tag or an S3 key and fail to encode there."""
    event = fetcher_event(datasets=[{"src": "s3://b/k", "path": "/d", "dst": "s3://b/caf\udce9"}])
    if where == ("client_username",):
        event["payload"]["datasets"] = []
        event["client_username"] = "caf\udce9"
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    status, message = h.statuses()[-1]
    assert status == "ERROR"
    assert message.startswith(f"Cannot process the request: event field '{field}': is not valid Unicode text")
    assert h.jobs.jobs == {} and h.sink.on(DLQ) == []


def test_transient_failure_is_retried_without_repeating_pending_or_committing_early(tmp_path) -> None:
    h = Harness(tmp_path, [record(FETCHER, fetcher_event())])
    h.jobs.transient_failures = 2
    h.drain()
    assert [s for s, _ in h.statuses()] == ["PENDING", "SUCCEEDED"]
    assert h.jobs.create_calls == 3 and len(h.jobs.jobs) == 1
    assert h.source.committed == {(FETCHER, 0): 1}


def test_capacity_errors_wait_and_tell_the_user_once(tmp_path, monkeypatch) -> None:
    from sagemaker_executor.domain.errors import CapacityError

    h = Harness(tmp_path, [record(FETCHER, fetcher_event())])
    failures = iter([CapacityError("ResourceLimitExceeded: ml.p3 quota")] * 3)
    original = h.jobs.create

    def create(spec, source_dir):
        error = next(failures, None)
        if error:
            raise error
        original(spec, source_dir)

    monkeypatch.setattr(h.jobs, "create", create)
    h.drain()
    statuses = h.statuses()
    assert [s for s, _ in statuses] == ["PENDING", "PENDING", "SUCCEEDED"]
    assert "Waiting for SageMaker capacity" in statuses[1][1] and "ml.p3 quota" in statuses[1][1]


def test_unacknowledged_publish_is_retried_before_the_record_is_committed(tmp_path) -> None:
    h = Harness(tmp_path, [record(FETCHER, fetcher_event())])
    h.sink.fail_next_flush = True
    h.drain()
    assert h.source.committed == {(FETCHER, 0): 1}
    assert len(h.jobs.jobs) == 1 and len(h.sink.on("BAI_APP_EXECUTOR")) == 1


def test_a_bug_in_a_handler_yields_error_and_dead_letter_and_the_loop_goes_on(tmp_path, monkeypatch) -> None:
    h = Harness(tmp_path, [record(FETCHER, fetcher_event(), 0), record(FETCHER, fetcher_event(), 1)])
    calls = iter([RuntimeError("boom")])

    original = h.jobs.create

    def flaky(spec, source_dir):
        error = next(calls, None)
        if error:
            raise error
        original(spec, source_dir)

    monkeypatch.setattr(h.jobs, "create", flaky)
    h.drain()
    assert [s for s, _ in h.statuses()] == ["PENDING", "ERROR", "PENDING", "SUCCEEDED"]
    assert "RuntimeError" in h.sink.on(DLQ)[0]["reason"]
    assert h.source.committed == {(FETCHER, 0): 2}


# --- cancel -------------------------------------------------------------------------------------


def _submitted(tmp_path, contents=None):
    event = fetcher_event(contents)
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    return h, event


def _cancel(h, command, offset=0):
    h.source.log.append(record(CMD, command, offset))
    h.drain()
    return h.sink.on("CMD_RETURN")[-1]


@pytest.mark.parametrize("custom", [None, "my-custom-job"])
def test_cancel_stops_the_job_with_or_without_custom_name(tmp_path, custom) -> None:
    contents = minimal_contents(custom_params={"sagemaker_job_name": custom}) if custom else None
    h, event = _submitted(tmp_path, contents)
    response = _cancel(h, cancel_command(event["action_id"]))
    assert response["payload"]["return_code"] == 0
    assert response["payload"]["message"] == "Cancel command processed successfully"
    assert h.jobs.stopped == [custom or event["action_id"]]
    status = h.sink.on("BAI_APP_STATUS")[-1]
    assert status["action_id"] == event["action_id"] and status["payload"]["status"] == "SUCCEEDED"


def test_cancel_of_unknown_action_answers_not_found_without_status(tmp_path) -> None:
    h = Harness(tmp_path, [])
    response = _cancel(h, cancel_command("nope"))
    assert response["payload"]["return_code"] == 1
    assert response["payload"]["message"] == "Cancel command failed: No resources found for 'nope'"
    assert h.sink.on("BAI_APP_STATUS") == []


def test_cancel_by_another_client_finds_nothing(tmp_path) -> None:
    h, event = _submitted(tmp_path)
    response = _cancel(h, cancel_command(event["action_id"], client_id="someone-else"))
    assert response["payload"]["return_code"] == 1 and h.jobs.stopped == []


@pytest.mark.parametrize(
    "args",
    ["a string", {"target_action_id": 5}, {"bogus": 1}, [], {"target_action_id": "x", "cascade": "yes"}],
)
def test_cancel_with_invalid_args_answers_code_2(tmp_path, args) -> None:
    h = Harness(tmp_path, [])
    response = _cancel(h, cancel_command("x", args=args))
    assert response["payload"]["return_code"] == 2
    assert response["payload"]["message"].startswith("Cancel command failed: Invalid args")


@pytest.mark.parametrize("args", [{"target_action_id": "nope", "cascade": True}, ["nope", True]])
def test_cancel_with_cascade_is_answered_like_any_cancel(tmp_path, args) -> None:
    # cascade (anubis --purge) has nothing to act on here: scheduled benchmarks are another executor's.
    h = Harness(tmp_path, [])
    response = _cancel(h, cancel_command("nope", args=args))
    assert response["payload"]["return_code"] == 1


def test_cancel_whose_target_is_not_unicode_text_answers_code_2(tmp_path) -> None:
    h = Harness(tmp_path, [])
    response = _cancel(h, cancel_command("caf\udce9"))
    assert response["payload"]["return_code"] == 2
    assert response["payload"]["message"].startswith(
        "Cancel command failed: Invalid args event field 'payload.args.target_action_id': is not valid"
    )
    assert response["payload"]["cmd_submit"]["payload"]["args"]["target_action_id"] == "caf\ufffd"


def test_unknown_commands_are_ignored(tmp_path) -> None:
    h = Harness(tmp_path, [])
    command = cancel_command("x")
    command["payload"]["command"] = "doit"
    h.source.log.append(record(CMD, command))
    h.drain()
    assert h.sink.acked == []


# --- every collected sample descriptor, through the whole handler ---------------------------------


def _sample_descriptors() -> list[str]:
    from tests.conftest import SAMPLES

    return sorted(
        str(p.relative_to(SAMPLES))
        for folder in ("descriptors", "docs-examples")
        for p in (SAMPLES / folder).rglob("*.toml")
    )


@pytest.mark.parametrize("relative", _sample_descriptors())
def test_every_sample_descriptor_ends_as_submitted_or_error_naming_its_field(tmp_path, relative) -> None:
    import tomllib

    from sagemaker_executor.domain.descriptor import (
        check_sagemaker_support,
        parse_descriptor,
    )
    from sagemaker_executor.domain.errors import DescriptorError
    from tests.conftest import SAMPLES

    contents = tomllib.loads((SAMPLES / relative).read_text())
    info = contents.setdefault("info", {}) if isinstance(contents.get("info", {}), dict) else {}
    info["execution_engine"] = "aws.sagemaker"
    info.pop("scheduling", None)
    try:
        check_sagemaker_support(parse_descriptor(contents))
        expected_field = None
    except DescriptorError as error:
        expected_field = error.field
    h = Harness(tmp_path, [record(FETCHER, fetcher_event(contents))])
    h.drain()
    (first, _), (last, message) = h.statuses()
    assert first == "PENDING"
    if expected_field is None:
        assert last == "SUCCEEDED" and len(h.jobs.jobs) == 1
    else:
        assert last == "ERROR" and f"'{expected_field}'" in message and h.jobs.jobs == {}


def test_a_huge_unparseable_record_gets_a_truncated_dead_letter_that_fits(tmp_path) -> None:
    import json
    import random

    blob = random.Random(7).randbytes(900_000)
    h = Harness(tmp_path, [record(FETCHER, blob, 0), record(FETCHER, fetcher_event(), 1)])
    h.drain()
    (dead,) = h.sink.on(DLQ)
    assert dead["value_truncated"] is True and dead["value_bytes"] == 900_000
    assert len(json.dumps(dead)) < 400_000
    assert h.source.committed == {(FETCHER, 0): 2}


def test_a_status_about_a_huge_event_keeps_its_envelope_and_fits_the_bff(tmp_path) -> None:
    import json

    from sagemaker_executor.domain.limits import MAX_STATUS_BYTES

    event = fetcher_event(minimal_contents(env={"docker_image": "img", "vars": {"BIG": "x" * 600_000}}))
    event["payload"]["toml"]["contents"]["hardware"]["strategy"] = "warp"
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    statuses = h.sink.on("BAI_APP_STATUS")
    assert [s["payload"]["status"] for s in statuses] == ["PENDING", "ERROR"]
    for status in statuses:
        assert len(json.dumps(status)) <= MAX_STATUS_BYTES + 1000
        assert status["payload"]["src_event"]["action_id"] == event["action_id"]
        assert "too large" in status["payload"]["src_event"]["payload"]["omitted"]
