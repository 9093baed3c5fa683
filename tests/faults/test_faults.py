"""The fault suite: the executor process under kill -9, failing AWS calls, a frozen broker and hostile
input, each during a burst of submissions. Sizes come from ``FAULTS_SCALE`` (``small`` in the normal
run, ``full`` for ``make faults``); every scenario prints and stores its counts (``bench.faults``)
before asserting, so a run shows what held and what did not.

Only the process interface is used: environment variables in; topics and the local SageMaker's jobs
out. Job tracking is off (``WATCH_JOBS=false``): it is tested in ``tests/integration/test_tracking.py``.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.faults import FaultCounts, Scale, scale_from_env
from tests.builders import fetcher_event, minimal_contents
from tests.faults import hostile
from tests.faults.observe import (
    OFFSETS,
    Seen,
    as_list,
    drain_all,
    finish,
    job_names,
    log_tail,
    stamp,
    tally,
    uncommitted,
    wait_committed,
    wait_until,
)
from tests.integration.conftest import Executor, Pipeline

SCALE = scale_from_env()
STALL_S = 30.0  # no progress for this long: stop waiting, report and fail
SEED = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1, 2**31))

pytestmark = [pytest.mark.faults, pytest.mark.integration, pytest.mark.timeout(SCALE.timeout_s + 60)]
scaled = pytest.mark.parametrize("scale", [SCALE], ids=[SCALE.name])


def _rng(scenario: str) -> random.Random:
    return random.Random(f"{SEED}-{scenario}")  # reproducible faults


def _submissions(n: int, rng: random.Random, tag: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """``n`` valid submissions; every fifth has a custom job name (adoption by tag, not by name)."""
    events, expected = [], {}
    for i in range(n):
        custom = {}
        if i % 5 == 4:
            custom = {"custom_params": {"sagemaker_job_name": f"faults-{tag}-{i}-{uuid.uuid4().hex[:8]}"}}
        event = fetcher_event(minimal_contents(ml={"benchmark_code": f"python bench.py --run {i}"}, **custom))
        events.append(event)
        expected[event["action_id"]] = custom.get("custom_params", {}).get(
            "sagemaker_job_name", event["action_id"]
        )
    rng.shuffle(events)
    return events, expected


def _publish_all(p: Pipeline, events: list[dict[str, Any]]) -> int:
    """Publish the burst; one past the last offset written."""
    futures = [p.producer.send(p.topics.fetcher, key=e["client_id"].encode(), value=_json(e)) for e in events]
    offsets: list[int] = [future.get(timeout=30).offset for future in futures]
    return max(offsets) + 1


def _json(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def _compact(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


def _done(p: Pipeline, expected: dict[str, str], jobs_before: set[str]) -> bool:
    return not tally(p, expected, jobs_before).lost()


def _wait_done(
    p: Pipeline,
    expected: dict[str, str],
    jobs_before: set[str],
    scale: Scale,
    executor: Executor,
    every: Any = None,
) -> bool:
    """Until every expected action has its job, SUCCEEDED and executor event; False on the scenario's
    timeout, when the executor exits, or when nothing new was answered for ``STALL_S``."""
    return wait_until(
        lambda: _done(p, expected, jobs_before),
        scale.timeout_s,
        executors=[executor],
        every=every,
        poll_s=0.5,
        progress=lambda: _answered(p),
        stall_s=STALL_S,
    )


def _start(p: Pipeline, **env: str) -> Executor:
    # The health endpoint's fixed port would make an immediate restart (or a neighbour) collide.
    return p.start_executor(**{"HEALTH_PORT": "off", **env})


def _metrics(executor: Executor) -> str:
    with urllib.request.urlopen(executor.health_url() + "/metrics", timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


def _answered(p: Pipeline) -> int:
    return len(p.on(p.topics.executor)) + len(p.on(p.topics.status))


def _created(p: Pipeline, jobs_before: set[str]) -> int:
    return sum(1 for n in job_names(p) if n not in jobs_before)


def _counts(
    scenario: str, scale: Any, t: Any, *, sent: int, errors: int, start: float, details: dict[str, Any]
) -> FaultCounts:
    """The counts every scenario prints, from its tally of jobs and events."""
    return FaultCounts(
        scenario,
        scale.name,
        SEED,
        sent=sent,
        jobs_created=len(t.created),
        duplicates=len(t.duplicates()),
        lost=len(t.lost()),
        errors=errors,
        elapsed_s=stamp(start),
        details=details,
    )


# --- kill -9 -------------------------------------------------------------------------------------------


@scaled
def test_kill9_at_random_moments_each_action_one_job(pipeline: Pipeline, scale: Scale) -> None:
    p, rng, start = pipeline, _rng("kill"), time.monotonic()
    print(f"\nkill scenario seed={SEED} (FAULTS_SEED={SEED} replays it)")
    jobs_before = set(job_names(p))
    events, expected = _submissions(scale.kill_submissions, rng, "kill")
    n = len(events)
    # Kill when SageMaker holds a random number of the burst's jobs, a random fraction of a second later:
    # every kill lands mid-burst, at a random point of some record's handling.
    thresholds = sorted(rng.sample(range(1, n - 1), scale.kills))
    delays = [round(rng.uniform(0.0, 0.6), 3) for _ in thresholds]
    executor = _start(p, WATCH_JOBS="false")
    end = _publish_all(p, events)
    kills, crashes, missed = [], 0, 0
    for threshold, delay in zip(thresholds, delays, strict=True):

        def reached_threshold(t: int = threshold) -> bool:
            return _created(p, jobs_before) >= t

        reached = wait_until(reached_threshold, scale.timeout_s / 2, executors=[executor])
        if executor.process.poll() is not None:
            crashes += 1  # died on its own: a finding (restarted so the scenario can go on)
        elif not reached:
            missed += 1
        time.sleep(delay)
        at = _created(p, jobs_before)
        if executor.process.poll() is None:
            executor.kill()
        kills.append({"after_jobs": at, "delay_s": delay, "t": stamp(start)})
        executor = _start(p, WATCH_JOBS="false")
    complete = _wait_done(p, expected, jobs_before, scale, executor)
    p.drain(timeout_ms=2000)  # anything late (a repeated event, a second job id) shows up now
    t = tally(p, expected, jobs_before)
    # The last restart may find the burst already done: let it join before the graceful stop is judged
    # (a SIGTERM during start-up also exits 0, and has its own integration test).
    wait_until(lambda: "partitions assigned" in executor.log_text(), 60, executors=[executor])
    alive = executor.process.poll() is None
    lag = wait_committed(p, executor, end)
    exit_code = executor.terminate() if alive else executor.process.returncode
    adopted = sum(e.log_text().count("earlier attempt") for e in p.executors)
    counts = _counts(
        "kill9",
        scale,
        t,
        sent=n,
        errors=t.seen.error_count(),
        start=start,
        details={
            "kills": len(kills),
            "restarts": len(p.executors) - 1,
            "crashes": crashes,
            "kill_thresholds_missed": missed,
            "adopted_after_kill": adopted,
            "repeated_success_events": t.repeated_events(),
            "sigterm_exit_code": exit_code,
            "uncommitted_input_records": lag,
            "input_offsets": dict(OFFSETS),
            "kill_log": kills,
            "duplicate_actions": as_list(t.duplicates()),
            "lost_actions": as_list(t.lost()),
        },
    )
    counts.held = complete and not t.duplicates() and not t.lost() and crashes == 0 and lag == 0
    finish(counts)
    assert complete, f"not every action completed: lost={as_list(t.lost())}\n{log_tail(p.executors)}"
    assert t.duplicates() == [], t.duplicates()
    assert t.lost() == []
    assert t.wrong_job_ids() == []
    assert crashes == 0, "the executor exited on its own between kills\n" + log_tail(p.executors)
    assert t.seen.error_count() == 0
    assert lag == 0, f"{lag} input records answered but never committed"
    assert exit_code == 0, log_tail(p.executors[-1:])


# --- 10 % of AWS calls fail ----------------------------------------------------------------------------


@scaled
def test_failing_aws_calls_every_submission_succeeds_once(pipeline: Pipeline, scale: Scale) -> None:
    p, rng, start = pipeline, _rng("aws-errors"), time.monotonic()
    jobs_before = set(job_names(p))
    events, expected = _submissions(scale.error_submissions, rng, "err")
    # Every third submission also ships a script tarball: a GetObject under faults too.
    script = hostile.upload_tar(p, {"bench/bench.py": b"print('ok')\n"}, f"faults-err-{uuid.uuid4().hex}")
    for event in events[::3]:
        event["payload"]["scripts"] = [{"dst": script}]
    stats_before = p.control.faults()["stats"]
    kinds = ["throttling", "internal"]
    flips = {"n": 0, "at": time.monotonic()}

    def alternate() -> None:
        if time.monotonic() - flips["at"] >= 1.0:
            flips["n"] += 1
            flips["at"] = time.monotonic()
            p.control.set_faults(error_kind=kinds[int(flips["n"]) % 2])  # a count, kept in a float dict

    executor = _start(p, WATCH_JOBS="false", AWS_RETRY_ATTEMPTS="8")
    try:
        p.control.set_faults(error_rate=scale.error_rate, error_kind=kinds[0], seed=SEED)
        end = _publish_all(p, events)
        complete = _wait_done(p, expected, jobs_before, scale, executor, every=alternate)
    finally:
        p.control.set_faults(error_rate=0.0, latency_ms=0, error_kind="throttling", seed=None)
    stats_after = p.control.faults()["stats"]
    p.drain(timeout_ms=1500)
    t = tally(p, expected, jobs_before)
    exactly_once = (
        [
            a
            for a in expected
            if t.seen.statuses.get(a) != ["PENDING", "SUCCEEDED"] or len(t.seen.executor_job_ids[a]) != 1
        ]
        if complete
        else list(expected)
    )
    alive = executor.process.poll() is None
    lag = wait_committed(p, executor, end)
    counts = _counts(
        "aws-errors",
        scale,
        t,
        sent=len(events),
        errors=t.seen.error_count(),
        start=start,
        details={
            "aws_calls": stats_after["calls"] - stats_before["calls"],
            "aws_errors_injected": stats_after["errors"] - stats_before["errors"],
            "kind_flips": flips["n"],
            "transient_retries_logged": executor.log_text().count("retrying"),
            "not_exactly_once": len(exactly_once),
            "executor_alive": alive,
            "uncommitted_input_records": lag,
            "input_offsets": dict(OFFSETS),
            "not_exactly_once_actions": as_list(exactly_once),
        },
    )
    counts.held = complete and alive and not t.duplicates() and not t.lost() and not exactly_once and lag == 0
    finish(counts)
    assert alive, log_tail([executor])
    assert complete, f"lost={as_list(t.lost())}\n{log_tail([executor])}"
    assert t.duplicates() == [] and t.lost() == []
    assert t.seen.error_count() == 0, "an AWS fault reached the user as an ERROR"
    assert exactly_once == [], {a: t.seen.statuses.get(a) for a in exactly_once}
    assert counts.details["aws_errors_injected"] > 0
    assert lag == 0, f"{lag} input records answered but never committed"
    assert executor.terminate() == 0


# --- the broker freezes mid-burst ----------------------------------------------------------------------


@scaled
def test_broker_paused_mid_burst_nothing_lost(pipeline: Pipeline, broker, scale: Scale) -> None:
    if broker is None:
        pytest.skip("needs the embedded broker to pause it")  # only when pointed at an external Kafka
    p, start = pipeline, time.monotonic()
    jobs_before = set(job_names(p))
    events, expected = _submissions(scale.pause_submissions, _rng("pause"), "pause")
    executor = _start(p, WATCH_JOBS="false", HEALTH_PORT="0")
    ready_before = wait_until(lambda: executor.readiness()[0] == 200, 60, executors=[executor])
    end = _publish_all(p, events)
    reached = wait_until(
        lambda: _created(p, jobs_before) >= len(events) // 3, scale.timeout_s / 2, executors=[executor]
    )
    paused_at = _created(p, jobs_before)
    broker.pause()
    paused = time.monotonic()
    not_ready_after: float | None = None
    try:
        # The fault lasts pause_seconds (at least two session timeouts): /readyz must say so within it.
        while time.monotonic() - paused < scale.pause_seconds:
            status, reason = executor.readiness()
            if not_ready_after is None and status == 503 and "Kafka" in reason:
                not_ready_after = stamp(paused)
                lag_exported = "sm_executor_consumer_lag{" in _metrics(executor)
            time.sleep(0.5)
        alive_in_pause = executor.process.poll() is None
    finally:
        broker.resume()
    resumed = time.monotonic()
    ready_again = wait_until(lambda: executor.readiness()[0] == 200, 60, executors=[executor])
    ready_after = stamp(resumed)
    during_pause = _created(p, jobs_before) - paused_at
    complete = _wait_done(p, expected, jobs_before, scale, executor)
    p.drain(timeout_ms=1500)
    t = tally(p, expected, jobs_before)
    alive = executor.process.poll() is None
    lag = wait_committed(p, executor, end)
    counts = _counts(
        "broker-pause",
        scale,
        t,
        sent=len(events),
        errors=t.seen.error_count(),
        start=start,
        details={
            "pause_s": scale.pause_seconds,
            "ready_before_pause": ready_before,
            "not_ready_after_s": not_ready_after,
            "lag_exported_while_not_ready": not_ready_after is not None and lag_exported,
            "ready_again_after_resume_s": ready_after if ready_again else None,
            "jobs_before_pause": paused_at,
            "jobs_created_during_pause": during_pause,
            "pause_reached_mid_burst": reached and paused_at < len(events),
            "executor_alive_during_pause": alive_in_pause,
            "executor_alive_after": alive,
            "executor_exit_code": executor.process.returncode,
            "uncommitted_input_records": lag,
            "input_offsets": dict(OFFSETS),
            "repeated_success_events": t.repeated_events(),
            "transient_retries_logged": executor.log_text().count("retrying"),
            "lost_actions": as_list(t.lost()),
        },
    )
    counts.held = (
        complete
        and alive
        and not t.duplicates()
        and not t.lost()
        and lag == 0
        and not_ready_after is not None
        and ready_again
    )
    finish(counts)
    assert alive, "the executor died during or after the broker pause (no restart here)\n" + log_tail(
        [executor]
    )
    assert ready_before, log_tail([executor])
    assert not_ready_after is not None, "/readyz stayed 200 while the broker was frozen"
    assert lag_exported, "the consumer-lag series vanished while the broker was out"
    assert ready_again, "/readyz did not come back after the broker did\n" + log_tail([executor])
    assert complete, f"lost={as_list(t.lost())}\n{log_tail([executor])}"
    assert t.duplicates() == [] and t.lost() == []
    assert t.seen.error_count() == 0
    assert lag == 0, f"{lag} input records answered but never committed"
    assert executor.terminate() == 0


# --- hostile and malformed input ------------------------------------------------------------------------


@scaled
def test_hostile_input_service_stays_up_and_answers_each(
    pipeline: Pipeline, scale: Scale, tmp_path: Path
) -> None:
    p, rng, start = pipeline, _rng("hostile"), time.monotonic()
    jobs_before = set(job_names(p))
    token = f"faults-canary-{uuid.uuid4().hex[:10]}"
    sandbox = hostile.Sandbox(tmp_path, token)
    scripts = hostile.upload_scripts(p, sandbox, token)
    messages = hostile.generate(rng, scale.hostile_bad, scale.hostile_valid, scripts, sandbox)
    sources, exec_tmp = tmp_path / "sources", tmp_path / "exec-tmp"
    exec_tmp.mkdir()
    before = sandbox.snapshot()
    executor = _start(
        p, WATCH_JOBS="false", TMPDIR=str(exec_tmp), MAX_SCRIPT_BYTES=str(hostile.MAX_SCRIPT_BYTES)
    )
    offsets = hostile.publish(p, messages)
    end = max(offsets) + 1
    # A valid message always names its action (hostile._named): the filter only tells mypy so.
    valid = {m.action_id: m.action_id for m in messages if m.expect == "valid" and m.action_id is not None}

    others = frozenset(m.job_name for m in messages if m.job_name and m.expect == "answered")
    state = {"unanswered": len(messages)}

    def answered() -> bool:
        drain_all(p)
        state["unanswered"] = len(hostile.unanswered(messages, offsets, Seen.of(p)))
        return state["unanswered"] == 0

    complete = wait_until(
        answered,
        scale.timeout_s,
        executors=[executor],
        poll_s=1.0,
        progress=lambda: state["unanswered"],
        stall_s=STALL_S,
    )
    p.drain(timeout_ms=1500)
    t = tally(p, valid, jobs_before, others=others)
    lag = wait_committed(p, executor, end)
    seen = t.seen
    alive = executor.process.poll() is None
    verdicts = hostile.judge(messages, offsets, seen, t.created)
    after = sandbox.snapshot()
    escaped = sandbox.escaped(before, after, exclude=[sources, exec_tmp])
    leftovers = {
        "sources": sorted(x.name for x in sources.iterdir()) if sources.exists() else [],
        "exec_tmp": sorted(x.name for x in exec_tmp.iterdir()),
    }
    internal = sum(1 for rs in seen.dead_letters.values() for r in rs if r.startswith("unexpected error"))
    not_usual = [
        a
        for a in valid
        if seen.statuses.get(a) != ["PENDING", "SUCCEEDED"] or len(seen.executor_job_ids.get(a, [])) != 1
    ]
    counts = _counts(
        "hostile",
        scale,
        t,
        sent=len(messages),
        errors=seen.error_count(),
        start=start,
        details={
            "bad_sent": scale.hostile_bad,
            "valid_sent": scale.hostile_valid,
            "executor_alive": alive,
            "unanswered": len(verdicts.unanswered),
            "unexpected_outcomes": len(verdicts.unexpected),
            "dead_letters": sum(len(r) for r in seen.dead_letters.values()),
            "internal_errors": internal,
            "hostile_descriptors_succeeded": verdicts.hostile_succeeded,
            "valid_not_as_usual": len(not_usual),
            "files_outside_temp_space": len(escaped),
            "uncommitted_input_records": lag,
            "input_offsets": dict(OFFSETS),
            "leftover_source_dirs": len(leftovers["sources"]),
            "leftover_exec_tmp_entries": len(leftovers["exec_tmp"]),
            "by_kind": verdicts.by_kind,
            "unanswered_examples": as_list(verdicts.unanswered),
            "unexpected_examples": as_list(verdicts.unexpected),
            "escaped_paths": as_list(escaped),
            "leftovers": {k: as_list(v) for k, v in leftovers.items()},
        },
    )
    counts.held = (
        complete
        and alive
        and not verdicts.unanswered
        and not verdicts.unexpected
        and not t.duplicates()
        and not t.lost()
        and not not_usual
        and not escaped
        and lag == 0
    )
    finish(counts)
    assert alive, "the executor died on hostile input\n" + log_tail([executor])
    assert escaped == [], f"files appeared outside the service's temp space: {escaped}"
    assert complete and verdicts.unanswered == [], (
        f"unanswered: {as_list(verdicts.unanswered)}\n{log_tail([executor])}"
    )
    assert verdicts.unexpected == [], as_list(verdicts.unexpected)
    assert t.duplicates() == [] and t.lost() == [], (t.duplicates(), t.lost())
    assert not_usual == [], {a: seen.statuses.get(a) for a in not_usual[:10]}
    assert leftovers["sources"] == [], "source dirs are removed after each submission"
    assert lag == 0, f"{lag} input records answered but never committed (redelivered after a restart)"
    assert executor.terminate() == 0


# --- poison records among a one-client sweep -------------------------------------------------------------

SESSION_TIMEOUT_S = 6.0  # KAFKA_SESSION_TIMEOUT_MS of the integration pipeline


def _strict(value: bytes) -> bool:
    """True when ``value`` is JSON without the non-standard NaN / Infinity tokens."""

    def refuse(token: str) -> None:
        raise ValueError(token)

    try:
        json.loads(value, parse_constant=refuse)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Poison:
    """One record of the poison scenario: its bytes as published, and how it must end."""

    kind: str
    data: bytes
    action_id: str | None  # None: nobody to answer, it must be dead-lettered
    must: str  # "dead-letter", "error" (an ERROR status, no job), "answer" (any status), "success"


def _event(kind: str, event: dict[str, Any], must: str, data: bytes | None = None) -> Poison:
    return Poison(kind, data if data is not None else _json(event), event["action_id"], must)


def _poison(p: Pipeline, tag: str) -> list[Poison]:
    """One record of every kind issue 7 found stalling a partition or erroring, from one client."""
    digits = fetcher_event(client_id="one-user")
    big_int = json.dumps(digits).replace(f'"tstamp": {digits["tstamp"]}', '"tstamp": ' + "7" * 5000)
    long_name = fetcher_event(client_id="one-user")
    long_name["client_username"] = "u" * 600_000
    near_limit = fetcher_event(client_id="one-user")
    near_limit["payload"]["toml"]["doc"] = ""
    # 150 bytes under 1 MiB as the BFF sends it (compact): it fits the broker; its executor event (the
    # same plus the job and a visited entry) would not.
    near_limit["payload"]["toml"]["doc"] = "d" * (1024 * 1024 - 150 - len(_compact(near_limit)))
    zero_quota = fetcher_event(
        minimal_contents(hardware={"instance_type": "ml.p3.16xlarge", "strategy": "single_node"}),
        client_id="one-user",
    )
    surrogate = fetcher_event(
        minimal_contents(env={"docker_image": "python:3-alpine", "vars": {"GREETING": "caf\udce9"}}),
        client_id="one-user",
    )
    deep = "/".join(["d" * 200] * 22) + "/bench.py"  # 4,400 bytes: past the OS's PATH_MAX
    long_member = fetcher_event(
        client_id="one-user",
        scripts=[hostile.upload_tar(p, {deep: b"print(1)\n"}, f"faults-poison-{tag}-deep")],
    )
    nan = fetcher_event(
        minimal_contents(custom_params={"hyper_params": {"lr": float("nan")}}), client_id="one-user"
    )
    return [
        Poison("int-5000-digits", big_int.encode(), None, "dead-letter"),
        _event("username-600k", long_name, "answer"),
        _event("event-near-1MiB", near_limit, "error", _compact(near_limit)),
        _event("quota-zero", zero_quota, "error"),
        _event("surrogate-env-var", surrogate, "error"),
        _event("member-path-4400-bytes", long_member, "error"),
        _event("nan-hyperparameter", nan, "error"),
    ]


def _outcome(record: Poison, offset: int, seen: Seen) -> str:
    """How a record ended: "dead-letter", its last status, or "unanswered"."""
    if record.action_id is None:
        return "dead-letter" if offset in seen.dead_letters else "unanswered"
    statuses = seen.statuses.get(record.action_id, [])
    return str(statuses[-1]) if statuses else "unanswered"  # a status event without one: "None"


@scaled
def test_poison_records_in_a_one_client_sweep_every_record_ends(pipeline: Pipeline, scale: Scale) -> None:
    p, rng, start = pipeline, _rng("poison"), time.monotonic()
    jobs_before = set(job_names(p))
    p.control.set_quotas(**{"ml.p3.16xlarge": 0})
    valid = [fetcher_event(client_id="one-user") for _ in range(scale.poison_valid)]
    expected = {e["action_id"]: e["action_id"] for e in valid}
    poison = _poison(p, uuid.uuid4().hex[:8])
    batch = [_event("valid", e, "success") for e in valid] + poison
    rng.shuffle(batch)
    # Jobs that hostile-but-valid records may create (their action id is the job name).
    others = frozenset(r.action_id for r in poison if r.must == "answer" and r.action_id)
    executor = _start(p, WATCH_JOBS="false")
    try:
        futures = [p.producer.send(p.topics.fetcher, key=b"one-user", value=r.data) for r in batch]
        by_offset = {f.get(timeout=30).offset: r for f, r in zip(futures, batch, strict=True)}
        end = max(by_offset) + 1

        def all_ended() -> bool:
            drain_all(p)
            seen = Seen.of(p)
            ended = all(_outcome(r, o, seen) != "unanswered" for o, r in by_offset.items())
            return ended and not tally(p, expected, jobs_before, drain=False, others=others).lost()

        complete = wait_until(
            all_ended,
            scale.timeout_s,
            executors=[executor],
            poll_s=0.5,
            progress=lambda: _answered(p),
            stall_s=STALL_S,
        )
    finally:
        p.control.set_quotas()
    p.drain(timeout_ms=1500)
    t = tally(p, expected, jobs_before, others=others)
    seen = t.seen
    alive = executor.process.poll() is None
    lag = wait_committed(p, executor, end)
    outcomes = {r.kind: _outcome(r, o, seen) for o, r in by_offset.items() if r.kind != "valid"}
    messages = {r.kind: (seen.messages.get(r.action_id) or [""])[-1][:400] for r in poison if r.action_id}
    internal = [k for k, m in messages.items() if m.startswith("Internal error")]
    not_strict = [topic for topic, values in p.raw.items() for v in values if not _strict(v)]
    not_once = [
        a
        for a in expected
        if seen.statuses.get(a) != ["PENDING", "SUCCEEDED"] or len(seen.executor_job_ids.get(a, [])) != 1
    ]
    wrong_ends = {
        r.kind: outcomes[r.kind]
        for r in poison
        if (r.must == "dead-letter" and outcomes[r.kind] != "dead-letter")
        or (r.must == "error" and outcomes[r.kind] != "ERROR")
        or outcomes[r.kind] == "unanswered"
    }
    refused_with_jobs = [r.kind for r in poison if r.must == "error" and r.action_id in t.created]
    counts = _counts(
        "poison",
        scale,
        t,
        sent=len(batch),
        errors=seen.error_count(),
        start=start,
        details={
            "poison_kinds": len(poison),
            "valid_sent": len(valid),
            "executor_alive": alive,
            "valid_not_exactly_once": len(not_once),
            "wrong_ends": len(wrong_ends),
            "internal_errors": len(internal),
            "non_strict_json_records": len(not_strict),
            "jobs_for_refused_records": len(refused_with_jobs),
            "uncommitted_input_records": lag,
            "input_offsets": dict(OFFSETS),
            "outcomes": outcomes,
            "messages": messages,
        },
    )
    counts.held = complete and alive and lag == 0 and not t.duplicates()
    counts.held &= not (not_once or wrong_ends or internal or not_strict or refused_with_jobs)
    finish(counts)
    assert alive, log_tail([executor])
    assert complete, f"outcomes={outcomes}\n{log_tail([executor])}"
    assert lag == 0, f"{lag} input records never committed: a record stalled its partition"
    assert not_once == [], {a: seen.statuses.get(a) for a in not_once[:10]}
    assert t.duplicates() == []
    assert wrong_ends == {}, {k: messages.get(k) for k in wrong_ends}
    assert internal == [], {k: messages[k] for k in internal}
    assert refused_with_jobs == [], "a refused record created a training job"
    assert not_strict == [], "a published record holds NaN or Infinity"
    assert "is 0 Instances" in messages["quota-zero"]
    assert "payload.toml.doc" in messages["event-near-1MiB"]
    assert executor.terminate() == 0


# --- no AWS credentials, then a restart with them ----------------------------------------------------------

NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SESSION_TOKEN": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",  # no probe of the instance metadata address
    # An ARN needs no AWS call at start-up: the service starts and meets the outage on each record.
    "SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/bai-sagemaker",
}


@scaled
def test_no_credentials_is_an_outage_then_a_restart_with_them_runs_everything_once(
    pipeline: Pipeline, scale: Scale
) -> None:
    p, rng, start = pipeline, _rng("credentials"), time.monotonic()
    jobs_before = set(job_names(p))
    events, expected = _submissions(scale.credentials_submissions, rng, "creds")
    blind = _start(p, WATCH_JOBS="false", HEALTH_PORT="0", **NO_CREDENTIALS)
    end = _publish_all(p, events)

    def outage_seen() -> bool:
        # The first records meet the outage, which pauses fetching: the rest wait in the topic.
        drain_all(p)
        pending = any("PENDING" in Seen.of(p).statuses.get(a, []) for a in expected)
        return pending and "outage of aws" in blind.log_text()

    consumed = wait_until(outage_seen, scale.timeout_s / 2, executors=[blind], poll_s=0.5)
    time.sleep(2 * SESSION_TIMEOUT_S)  # time for retries: none may turn into an ERROR
    drain_all(p)
    during = Seen.of(p)
    pending_during = sum(1 for a in expected if "PENDING" in during.statuses.get(a, []))
    status, reason = blind.readiness()
    outage_warnings = blind.log_text().count("outage of aws")
    committed_during = end - uncommitted(p, end)
    jobs_during = _created(p, jobs_before)
    blind_exit = blind.terminate()

    fixed = _start(p, WATCH_JOBS="false")
    complete = _wait_done(p, expected, jobs_before, scale, fixed)
    p.drain(timeout_ms=1500)
    t = tally(p, expected, jobs_before)
    lag = wait_committed(p, fixed, end)
    succeeded_once = [a for a in expected if t.seen.statuses.get(a, []).count("SUCCEEDED") != 1]
    counts = _counts(
        "no-credentials",
        scale,
        t,
        sent=len(events),
        errors=t.seen.error_count(),
        start=start,
        details={
            "outage_seen": consumed,
            "pending_without_credentials": pending_during,
            "errors_without_credentials": during.error_count(),
            "jobs_without_credentials": jobs_during,
            "committed_without_credentials": committed_during,
            "readyz_without_credentials": status,
            "outage_warnings": outage_warnings,
            "blind_exit_code": blind_exit,
            "not_succeeded_exactly_once": len(succeeded_once),
            "uncommitted_input_records": lag,
            "readyz_reason": reason[:300],
        },
    )
    counts.held = (
        complete
        and during.error_count() == 0
        and jobs_during == 0
        and status == 503
        and not succeeded_once
        and not t.duplicates()
        and lag == 0
    )
    finish(counts)
    assert consumed, log_tail([blind])
    assert during.error_count() == 0, "a missing credential reached a user as an ERROR"
    assert jobs_during == 0 and committed_during == 0
    assert status == 503 and "credentials" in reason.lower() and "fix" in reason.lower(), reason
    assert outage_warnings == 1, log_tail([blind])
    assert blind_exit == 0
    assert complete, f"lost={as_list(t.lost())}\n{log_tail([fixed])}"
    assert t.duplicates() == [] and succeeded_once == [], succeeded_once
    assert t.seen.error_count() == 0
    assert lag == 0
    assert fixed.terminate() == 0
