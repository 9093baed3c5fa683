"""What a FAILED status's log tail and an ERROR's "got ..." show, where mutation testing found them
unchecked: the tail fits its bytes as it is printed (with ``[algo-<n>]`` before each line when the job has
several hosts) and keeps as many of the newest lines as fit; a redrawn line shows what it showed last;
a long wrong value is cut to 80 characters."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from sagemaker_executor.domain.joblog import TAIL_BYTES, LogEvent, Masker, clean, tail_of, tail_text
from sagemaker_executor.domain.limits import json_size
from sagemaker_executor.service.outcomes import describe_validation_error

JOB = "anubis-job"


def wide_events(host: str, count: int, start: int = 0) -> list[LogEvent]:
    return [LogEvent(host, start + 2 * i, f"{host} {i:03d} " + "x" * 200) for i in range(count)]


@pytest.mark.parametrize("hosts", [["algo-1"], ["algo-1", "algo-2"], ["algo-1", "algo-2", "algo-3"]])
def test_the_tail_as_printed_keeps_the_most_newest_lines_that_fit(hosts: list[str]) -> None:
    per_host = {host: wide_events(host, 40, start=index) for index, host in enumerate(hosts)}
    tail = tail_of(JOB, per_host, len(hosts), Masker())

    def shown(events: list[LogEvent]) -> str:
        return "\n".join(f"[{e.host}] {e.message}" if len(hosts) > 1 else e.message for e in events)

    kept = list(tail.lines)
    assert json_size(shown(kept)) <= TAIL_BYTES
    # Every line kept is newer than every line dropped, and one more older line would not fit.
    merged = sorted((e for events in per_host.values() for e in events), key=lambda e: e.timestamp_ms)
    candidates = [e for e in merged if e.timestamp_ms <= kept[-1].timestamp_ms]
    older = [e for e in candidates if e.timestamp_ms < kept[0].timestamp_ms]
    assert kept == candidates[len(candidates) - len(kept) :]
    assert json_size(shown([older[-1], *kept])) > TAIL_BYTES
    for line in shown(kept).splitlines():
        assert line in tail_text(tail)


def test_the_tails_hosts_are_in_number_order() -> None:
    per_host = {host: wide_events(host, 1) for host in ("algo-10", "algo-2", "algo-1")}
    assert tail_of(JOB, per_host, 3, Masker()).hosts == ("algo-1", "algo-2", "algo-10")


def test_a_redrawn_line_shows_what_it_showed_last() -> None:
    assert clean("10%\r50%\r100% X\r") == ["100% X"]
    assert clean("a\rb\rc") == ["c"]


class _Spec(BaseModel):
    count: int


def test_a_long_wrong_value_is_cut_to_80_characters_in_the_error() -> None:
    value = "n" * 200
    with pytest.raises(ValidationError) as error:
        _Spec.model_validate({"count": value})
    message = describe_validation_error(error.value)
    assert message == (
        "event field 'count': Input should be a valid integer, unable to parse string as an integer, "
        f"got '{'n' * 76}..."
    )
    with pytest.raises(ValidationError) as error:
        _Spec.model_validate({"count": "n" * 78})
    assert describe_validation_error(error.value).endswith(f"got '{'n' * 78}'")
