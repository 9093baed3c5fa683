"""Events are stamped with the wall clock in epoch milliseconds (CONTRACT §3: ``visited[].tstamp``)."""

from __future__ import annotations

import json
import time

from sagemaker_executor.domain.events import Status
from sagemaker_executor.service.emitter import StatusEmitter
from tests.builders import fetcher_event
from tests.fakes import FakeSink


def test_the_default_clock_stamps_epoch_milliseconds() -> None:
    sink = FakeSink()
    before = time.time() * 1000
    StatusEmitter(sink, status_topic="STATUS", node="n").status(fetcher_event(), Status.PENDING, "m")
    after = time.time() * 1000
    (sent,) = sink.pending
    stamp = json.loads(sent.value)["visited"][-1]["tstamp"]
    assert before - 1 <= stamp <= after
