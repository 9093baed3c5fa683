"""How many SageMaker API calls ``JobTracker`` makes per minute with 1, 100 and 1,000 running jobs.

Run from the repository root: ``make bench-tracking``, ``python -m bench.tracking_api_calls`` or
``python bench/tracking_api_calls.py`` (``--jobs 1 100`` to pick the sizes). Prints a table and writes
``bench/results/tracking_api_calls.json``.

Everything is in-process: ``moto.mock_aws()`` with the local SageMaker on a ``ManualClock``. The N jobs
are created with boto3 ``CreateTrainingJob`` through a session of their own (not counted). The tracker
gets the real ``SageMakerJobs`` adapter on a second session, and every call that session makes is
counted with a ``before-call`` handler on its event system (one count per API call; retries would not
add to it, and moto does not throttle).

Scenario, per size N:
* all N jobs are created at T0 and registered with ``tracker.track``; every job spends 60 s Starting,
  60 s Downloading, then trains for 4 hours -- except the *changing* jobs, 5 % of N rounded (none when N=1);
* at T0+180 s (all jobs Training) one warm-up tick lists every job and reports it (counted apart);
* the measured window is the next 10 minutes, advanced in 1 s steps with ``tracker.tick()`` after each
  (interval 10 s, overlap 30 s, resync every 600 s, so the window holds 60 polls, one of them a resync);
* inside the window each changing job ends its training at its own moment, spread evenly over the
  window: even-numbered ones go Training → Uploading (60 s) → Completed (with a final metric), odd ones
  go Training → Failed. Each ended job costs one DescribeTrainingJob.

The original watcher described every job every 10 s: 6 * N DescribeTrainingJob calls per minute.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

if not __package__:
    # Run as ``python bench/tracking_api_calls.py``: the package is the repository root's, not installed.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sagemaker_executor.adapters.sagemaker import SageMakerJobs
from sagemaker_executor.domain.tracking import TrackedJob
from sagemaker_executor.local.sagemaker import LocalSageMaker, ManualClock, Timeline
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.tracker import JobTracker, TrackerSettings
from tests.builders import create_training_job
from tests.fakes import FakeSink

REGION = "us-east-1"
CONSUMER_TOPIC, TRACKING_TOPIC, METRICS_TOPIC, STATUS_TOPIC = (
    "BAI_APP_FETCHER",
    "SM_EXECUTOR_JOBS",
    "BAI_METRICS",
    "BAI_APP_STATUS",
)
T0 = datetime(2030, 1, 1, tzinfo=UTC)
STARTING_S, DOWNLOADING_S, UPLOADING_S = 60.0, 60.0, 60.0
LONG_TRAINING_S = 4 * 3600.0
WARM_UP_AT_S = 180.0  # every job is Training by then
WINDOW_S = 600
INTERVAL_S = 10.0
CHANGING_SHARE = 0.05
ORIGINAL_DESCRIBES_PER_JOB_PER_MINUTE = 60 / INTERVAL_S
RESULTS = Path(__file__).resolve().parent / "results" / "tracking_api_calls.json"


class EmptyStore:
    def load(self, partitions: Iterable[int]) -> list[TrackedJob]:
        return []


class CallCounter:
    """Counts API calls by operation, from botocore's ``before-call`` event."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.counting = False

    def __call__(self, model: Any, **_: Any) -> None:
        if self.counting:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1


@dataclass
class Result:
    jobs: int
    changing_jobs: int
    minutes: float
    calls_per_minute: float
    list_calls_per_minute: float
    describe_calls_per_minute: float
    other_calls: dict[str, int]
    status_events: int
    status_events_by_status: dict[str, int]
    metrics_records: int
    warm_up_calls: dict[str, int]
    warm_up_status_events: int
    original_watcher_calls_per_minute: float
    setup_wall_s: float
    simulate_wall_s: float
    run_wall_s: float


def executor_event(job_name: str) -> dict[str, Any]:
    return {
        "action_id": job_name,
        "client_id": "bench-client",
        "payload": {"job": {"id": job_name}, "toml": {"contents": {}}},
    }


def changing_timelines(count: int) -> list[Timeline]:
    """Timelines whose training ends inside the window, spread evenly from 30 s to 510 s into it."""
    timelines = []
    for index in range(count):
        offset = 30 + 480 * index / (count - 1) if count > 1 else WINDOW_S / 2
        training = WARM_UP_AT_S - STARTING_S - DOWNLOADING_S + offset
        timeline = Timeline(STARTING_S, DOWNLOADING_S, training, UPLOADING_S)
        timelines.append(timeline.failing() if index % 2 else timeline)
    return timelines


def measure(jobs: int) -> Result:
    started = time.perf_counter()
    clock = ManualClock(T0)
    default = Timeline(STARTING_S, DOWNLOADING_S, LONG_TRAINING_S, UPLOADING_S)
    changing = round(jobs * CHANGING_SHARE)
    with mock_aws(), LocalSageMaker(clock, default) as local:
        names = [f"bench-job-{index:05d}" for index in range(jobs)]
        # Changing jobs are spread over the name range so they are not all on the first listing page.
        for index, timeline in enumerate(changing_timelines(changing)):
            local.set_outcome(names[index * jobs // changing], timeline)

        setup_session = boto3.Session(region_name=REGION)
        setup_session.client("s3").create_bucket(Bucket="bench-output")
        setup_sm = setup_session.client("sagemaker")
        for name in names:
            create_training_job(setup_sm, name)

        counter = CallCounter()
        session = boto3.Session(region_name=REGION)
        # Registered before the adapter creates its client: a client copies the session's handlers.
        session.events.register("before-call", counter)
        adapter = SageMakerJobs(session, default_bucket="bench-output", retry_attempts=3)
        sink = FakeSink()
        emitter = StatusEmitter(
            sink,
            status_topic=STATUS_TOPIC,
            node="bench",
            clock_ms=lambda: int(clock.now().timestamp() * 1000),
        )
        settings = TrackerSettings(
            CONSUMER_TOPIC, TRACKING_TOPIC, METRICS_TOPIC, REGION, interval_s=INTERVAL_S, overlap_s=30.0
        )
        tracker = JobTracker(
            adapter, sink, emitter, EmptyStore(), settings, clock=lambda: clock.now().timestamp()
        )
        tracker.on_assigned({(CONSUMER_TOPIC, 0)})
        counter.counting = True
        for name in names:
            tracker.track(executor_event(name), partition=0)
        sink.flush()

        clock.advance(WARM_UP_AT_S)
        tracker.tick()
        warm_up_calls = dict(counter.calls)
        warm_up_statuses = len(sink.on(STATUS_TOPIC))
        counter.calls.clear()
        sink.acked.clear()
        setup_wall = time.perf_counter() - started

        simulate_started = time.perf_counter()
        for _ in range(WINDOW_S):
            clock.advance(1)
            tracker.tick()
        simulate_wall = time.perf_counter() - simulate_started

    minutes = WINDOW_S / 60
    calls = counter.calls
    listed = calls.pop("sagemaker:ListTrainingJobs", 0)
    described = calls.pop("sagemaker:DescribeTrainingJob", 0)
    return Result(
        jobs=jobs,
        changing_jobs=changing,
        minutes=minutes,
        calls_per_minute=(listed + described + sum(calls.values())) / minutes,
        list_calls_per_minute=listed / minutes,
        describe_calls_per_minute=described / minutes,
        other_calls=dict(calls),
        status_events=len(sink.on(STATUS_TOPIC)),
        status_events_by_status=dict(Counter(str(e["payload"]["status"]) for e in sink.on(STATUS_TOPIC))),
        metrics_records=len(sink.on(METRICS_TOPIC)),
        warm_up_calls=warm_up_calls,
        warm_up_status_events=warm_up_statuses,
        original_watcher_calls_per_minute=ORIGINAL_DESCRIBES_PER_JOB_PER_MINUTE * jobs,
        setup_wall_s=round(setup_wall, 2),
        simulate_wall_s=round(simulate_wall, 2),
        run_wall_s=round(time.perf_counter() - started, 2),
    )


def table(results: list[Result]) -> str:
    header = (
        f"{'jobs':>6} {'calls/min':>10} {'list/min':>9} {'describe/min':>13} {'status events':>14} "
        f"{'wall s':>7} {'original watcher calls/min':>27}"
    )
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(
            f"{r.jobs:>6} {r.calls_per_minute:>10.1f} {r.list_calls_per_minute:>9.1f} "
            f"{r.describe_calls_per_minute:>13.1f} {r.status_events:>14} {r.run_wall_s:>7.1f} "
            f"{r.original_watcher_calls_per_minute:>27.0f}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    # Never reach real AWS; moto also sets fake credentials, these cover anything created outside it.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }.items():
        os.environ.setdefault(key, value)
    os.environ.pop("AWS_PROFILE", None)

    print(
        f"JobTracker, {WINDOW_S // 60} simulated minutes after a warm-up poll; interval {INTERVAL_S:g} s; "
        f"{CHANGING_SHARE:.0%} of N jobs (rounded) end during the window (half Uploading→Completed, "
        "half Failed), the rest keep Training.",
        flush=True,
    )
    results = []
    for jobs in args.jobs:
        result = measure(jobs)
        results.append(result)
        print(
            f"  N={jobs}: {result.changing_jobs} changing; warm-up {result.warm_up_calls} "
            f"({result.warm_up_status_events} statuses); window statuses "
            f"{result.status_events_by_status}; setup {result.setup_wall_s:.1f} s, "
            f"simulation {result.simulate_wall_s:.1f} s",
            flush=True,
        )
    print()
    print(table(results))

    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "JobTracker SageMaker API calls per minute",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "scenario": {
            "window_s": WINDOW_S,
            "tick_step_s": 1,
            "interval_s": INTERVAL_S,
            "overlap_s": 30.0,
            "resync_s": 600.0,
            "warm_up_at_s": WARM_UP_AT_S,
            "changing_share": CHANGING_SHARE,
            "timeline_s": {
                "starting": STARTING_S,
                "downloading": DOWNLOADING_S,
                "training": LONG_TRAINING_S,
                "uploading": UPLOADING_S,
            },
            "original_watcher": "one DescribeTrainingJob per job every 10 s",
        },
        "results": [asdict(result) for result in results],
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
