"""Property: whatever is raised, at whatever step, every record ends and the committed offsets reach the
end of the input.

Hypothesis draws a burst (valid submissions, cancels of them, and records no handler expects) and a
failure plan: for each step of a record's handling -- decoding, routing, validation, translation, the
source dir, AWS, publishing each kind of event, flushing, and the error path itself -- an exception
kind (a bug's ``ValueError`` or ``KeyError``, ``OSError``, ``RecursionError``, a throttling
``TransientError``, an ``OutageError``, a broker's ``PublishError``, ...) raised on the first few
calls or on every call (outages only for a while: they wait for the fix by design). The loop runs
on in-memory adapters with a clock the test moves until the input is committed; then every record
must have been answered or dead-lettered, and no action may own two jobs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagemaker_executor.adapters import sourcedir
from sagemaker_executor.adapters.kafka import PublishError
from sagemaker_executor.domain.errors import CapacityError, OutageError, PermanentError, TransientError
from sagemaker_executor.service import records as records_module
from sagemaker_executor.service import submission as submission_module
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.submission import SubmissionHandler
from tests.builders import cancel_command, fetcher_event
from tests.fakes import FakeSink, record
from tests.harness import CMD, DLQ, EXECUTOR, FETCHER, STATUS, Harness

ROUNDS = 90  # each a simulated minute: past every retry wait, and past the give-up time (an hour)

EXCEPTIONS: dict[str, Callable[[], BaseException]] = {
    "ValueError": lambda: ValueError("injected"),
    "KeyError": lambda: KeyError("injected"),
    "TypeError": lambda: TypeError("injected"),
    "RuntimeError": lambda: RuntimeError("injected"),
    "OSError": lambda: OSError(36, "File name too long"),
    "RecursionError": lambda: RecursionError("injected"),
    "UnicodeEncodeError": lambda: UnicodeEncodeError("utf-8", "\udce9", 0, 1, "surrogates not allowed"),
    "PermanentError": lambda: PermanentError("injected"),
    "TransientError": lambda: TransientError("ThrottlingException: injected"),
    "CapacityError": lambda: CapacityError("ResourceLimitExceeded: injected"),
    "OutageError": lambda: OutageError("aws", "AWS credentials: injected", "fix it"),
    "PublishError": lambda: PublishError("injected"),
}

# Where a failure can be injected: a target to patch, and the name of the method or function there.
STEPS = (
    "decode",
    "submission",
    "command",
    "parse_descriptor",
    "translate",
    "build_source_dir",
    "create_job",
    "describe_job",
    "executor_event",
    "send_status",
    "send_executor_event",
    "send_dead_letter",
    "send_command_response",
    "flush",
)


BROKEN_INFO = {"execution_engine": "aws.sagemaker", "task_name": 5}  # ours, and invalid


def poison_values() -> list[bytes | None]:
    ok = fetcher_event()
    no_client = {k: v for k, v in ok.items() if k != "client_id"}
    return [
        None,  # a tombstone
        b"\xff\xfe not utf-8",
        b"{not json",
        b"[1, 2, 3]",
        json.dumps(no_client).encode(),
        json.dumps(ok).replace(f'"tstamp": {ok["tstamp"]}', '"tstamp": ' + "9" * 5000).encode(),
        b"[" * 100_000,
        json.dumps({**ok, "payload": "not an object"}).encode(),
        json.dumps(
            {**ok, "payload": {**ok["payload"], "toml": {"contents": {"info": BROKEN_INFO}}}}
        ).encode(),
    ]


POISON = poison_values()

burst = st.lists(
    st.one_of(
        st.just(("submit", None)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("poison"), st.integers(0, len(POISON) - 1)),
    ),
    min_size=1,
    max_size=10,
)
ALWAYS = 10**9
# Outages never give up (by design they wait for the fix): injected a few times only, as is "flush",
# which models the broker itself. Everything else may fail on every call.
WAITING = frozenset({"OutageError", "PublishError"})


@st.composite
def failure(draw: st.DrawFn, step: str) -> tuple[str, int]:
    kind = draw(st.sampled_from(sorted(EXCEPTIONS)))
    if kind in WAITING or step == "flush":
        return kind, draw(st.integers(1, 3))
    return kind, draw(st.one_of(st.integers(1, 3), st.just(ALWAYS)))


plan = st.sampled_from(STEPS).flatmap(lambda step: st.tuples(st.just(step), failure(step)))
plans = st.lists(plan, max_size=4).map(dict)


class Injector:
    """Raises ``EXCEPTIONS[kind]()`` on the first ``times`` calls of each planned step."""

    def __init__(self, failures: dict[str, tuple[str, int]]) -> None:
        self.left = {step: times for step, (_, times) in failures.items()}
        self.kinds = {step: kind for step, (kind, _) in failures.items()}
        self.raised: list[str] = []

    def maybe_raise(self, step: str) -> None:
        if self.left.get(step, 0) > 0:
            self.left[step] -= 1
            self.raised.append(step)
            raise EXCEPTIONS[self.kinds[step]]()

    def wrap(self, step: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.maybe_raise(step)
            return original(*args, **kwargs)

        return wrapped


class InjectingSink(FakeSink):
    def __init__(self, injector: Injector) -> None:
        super().__init__()
        self.injector = injector

    def send(self, topic, key, value, partition=None) -> None:
        step = {
            STATUS: "send_status",
            EXECUTOR: "send_executor_event",
            DLQ: "send_dead_letter",
            "CMD_RETURN": "send_command_response",
        }.get(topic)
        # The minimal dead letter is built so that its content cannot fail (plain ints and strings, a
        # few kilobytes): a failure of it is the broker's, which "flush" models.
        minimal = isinstance(value, bytes) and b'"minimal": true' in value
        if step is not None and not minimal:
            self.injector.maybe_raise(step)
        super().send(topic, key, value, partition)

    def flush(self, timeout_s: float = 60.0) -> None:
        if self.injector.left.get("flush", 0) > 0:
            self.pending.clear()  # what was in flight is lost with the failure
        self.injector.maybe_raise("flush")
        super().flush(timeout_s)


@contextlib.contextmanager
def injected(h: Harness, injector: Injector) -> Iterator[None]:
    patches = [
        mock.patch.object(records_module, "decode", injector.wrap("decode", records_module.decode)),
        mock.patch.object(SubmissionHandler, "handle", injector.wrap("submission", SubmissionHandler.handle)),
        mock.patch.object(CommandHandler, "handle", injector.wrap("command", CommandHandler.handle)),
    ]
    for name in ("parse_descriptor", "translate", "executor_event"):
        patches.append(
            mock.patch.object(submission_module, name, injector.wrap(name, getattr(submission_module, name)))
        )
    # The harness hands the handler the adapters' sourcedir module as its SourceDirs.
    patches.append(
        mock.patch.object(
            sourcedir, "build_source_dir", injector.wrap("build_source_dir", sourcedir.build_source_dir)
        )
    )
    h.jobs.create = injector.wrap("create_job", h.jobs.create)  # type: ignore[method-assign]
    h.jobs.describe = injector.wrap("describe_job", h.jobs.describe)  # type: ignore[method-assign]
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield


def build_records(items: list[tuple[str, int | None]]) -> tuple[list[Any], list[dict[str, Any]]]:
    submissions: list[dict[str, Any]] = []
    fetcher: list[Any] = []
    commands: list[Any] = []
    for kind, index in items:
        if kind == "submit":
            event = fetcher_event(client_id="one-user")
            submissions.append(event)
            fetcher.append(record(FETCHER, event, len(fetcher), key="one-user"))
        elif kind == "cancel":
            assert index is not None, "a cancel names the submission it targets"
            target = submissions[index % len(submissions)]["action_id"] if submissions else "unknown"
            command = cancel_command(target, client_id="one-user")
            commands.append(record(CMD, command, len(commands), key="one-user"))
        else:
            assert index is not None
            fetcher.append(record(FETCHER, POISON[index], len(fetcher), key=None))
    return fetcher + commands, submissions


def dead_lettered(h: Harness, rec: Any) -> bool:
    return any(
        d["source"] == {"topic": rec.topic, "partition": 0, "offset": rec.offset} for d in h.sink.on(DLQ)
    )


def answered(h: Harness, rec: Any) -> bool:
    """A status, executor event or command response for the record's action, or its dead letter."""
    if dead_lettered(h, rec):
        return True
    try:
        action = json.loads(rec.value)["action_id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return False  # nobody to answer: only a dead letter counts
    published = itertools.chain(h.sink.on(STATUS), h.sink.on(EXECUTOR), h.sink.on("CMD_RETURN"))
    return any(event.get("action_id") == action for event in published)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(items=burst, failures=plans)
def test_every_record_ends_and_the_commit_reaches_the_end(items, failures) -> None:
    records, submissions = build_records(items)
    injector = Injector(failures)
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp), records, sink=InjectingSink(injector))
        with injected(h, injector):
            ends = {(topic, 0): sum(1 for r in records if r.topic == topic) for topic in (FETCHER, CMD)}
            expected = {p: n for p, n in ends.items() if n}
            for _ in range(ROUNDS):
                h.drain(1)
                if h.source.committed == expected:
                    break
        assert h.source.committed == expected, (injector.raised, h.source.committed)
        assert h.loop._running == 0  # nothing left in flight
        unanswered = [(r.topic, r.offset) for r in records if not answered(h, r)]
        assert unanswered == [], (unanswered, injector.raised)
        assert len(h.jobs.jobs) <= len(submissions)
        for event in submissions:
            created = [j for j in h.jobs.jobs.values() if j.spec and j.spec.action_id == event["action_id"]]
            assert len(created) <= 1
