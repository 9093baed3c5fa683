"""Consumer lag against a real broker: end offset minus the group's *committed* offset (records read
but not committed are lag), from the consumer's cached high-water mark without a round trip per
update, and the executor's ``/metrics`` with it labelled by topic, partition and group, next to the
process, platform and build-info series, with no ``*_created`` series."""

from __future__ import annotations

import re
import time
import urllib.request
import uuid

import pytest
from kafka import KafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from sagemaker_executor.adapters.kafka import KafkaOptions, Publisher, Subscriber, ensure_topics
from tests.builders import fetcher_event
from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration


def _options(bootstrap: str, group: str) -> KafkaOptions:
    return KafkaOptions(
        [bootstrap],
        client_id="lag-test",
        group_id=group,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def test_lag_counts_from_the_committed_offset_not_from_what_was_read(
    bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = "LAG" + uuid.uuid4().hex[:10]
    options = _options(bootstrap, f"{topic}-group")
    ensure_topics(options, [topic], 1, 1)
    publisher = Publisher(options)
    subscriber = Subscriber(options, [topic])
    try:
        # One batch per record: Tansu 0.6.0 answers a partition's end offset as its last batch's
        # base offset + 1, which is short of the end when a batch holds several records.
        for n in range(3):
            publisher.send(topic, "client", {"n": n})
            publisher.flush(timeout_s=30)
        read = []
        for _ in range(60):
            read += subscriber.poll(500, 10)
            if len(read) == 3:
                break
        assert [r.offset for r in read] == [0, 1, 2]

        assert subscriber.lag() == {(topic, 0): 3}  # all read, none committed: a new group, earliest

        # From here on the lag needs no round trip: the end is the last fetch's high-water mark, the
        # committed offset what this member committed.
        def no_round_trip(*args: object, **kwargs: object) -> None:
            raise AssertionError("lag() asked the broker")

        monkeypatch.setattr(KafkaConsumer, "end_offsets", no_round_trip)
        monkeypatch.setattr(KafkaConsumer, "committed", no_round_trip)
        subscriber.commit_offsets({(topic, 0): 2})
        assert subscriber.lag() == {(topic, 0): 1}
        subscriber.commit_offsets({(topic, 0): 3})
        assert subscriber.lag() == {(topic, 0): 0}
    finally:
        subscriber.close()
        publisher.close()


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_the_executor_exports_lag_by_group_and_the_conventional_series(pipeline: Pipeline) -> None:
    p = pipeline
    executor = p.start_executor(WATCH_JOBS="false")
    event = fetcher_event()
    p.publish(p.topics.fetcher, event)
    p.wait_for(lambda: "SUCCEEDED" in p.statuses_only(event["action_id"]), what="SUCCEEDED")
    url = executor.health_url()

    lag: dict[tuple[str, str, str], float] = {}
    body = ""
    deadline = time.monotonic() + 30  # reported on assignment, then every 15 s
    while time.monotonic() < deadline:
        body = _scrape(url)
        lag = {
            (s.labels["topic"], s.labels["partition"], s.labels["group"]): s.value
            for family in text_string_to_metric_families(body)
            if family.name == "sm_executor_consumer_lag"
            for s in family.samples
        }
        # The status is on the topic before the loop counts its record: wait for the count too.
        if len(lag) == 2 and "sm_executor_messages_consumed_total{" in body:
            break
        time.sleep(0.2)
    assert set(lag) == {(p.topics.fetcher, "0", p.group), (p.topics.cmd_submit, "0", p.group)}, body

    series = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if not line.startswith("#")}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} <= series
    assert {"python_info", "python_gc_collections_total", "sm_executor_build_info"} <= series
    assert re.search(r'^sm_executor_build_info\{python="3\.[0-9.]+",version="[^"]+"\} 1\.0$', body, re.M)
    assert "sm_executor_messages_consumed_total" in series
    assert not [name for name in series if name.endswith("_created")], body
