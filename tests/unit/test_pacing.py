"""``adapters.pacing.TokenBucket`` on a fake clock: bursts are paced, idle time refills to the burst."""

from __future__ import annotations

import threading

import pytest

from sagemaker_executor.adapters.pacing import TokenBucket


class FakeTime:
    """A clock that only moves when told to, or by the sleeps it records."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def bucket(rate: float, burst: float | None = None) -> tuple[TokenBucket, FakeTime]:
    time = FakeTime()
    return TokenBucket(rate, burst, clock=time.clock, sleep=time.sleep), time


def test_a_burst_is_spaced_one_over_the_rate_apart_after_the_first_token() -> None:
    pacer, time = bucket(rate=2)

    waits = [pacer.acquire() for _ in range(6)]

    # Two tokens at start (one second's worth), then one every 0.5 s, in arrival order.
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert time.slept == [0.5, 1.0, 1.5, 2.0]


def test_the_documented_default_rate_sends_one_create_per_second() -> None:
    pacer, _ = bucket(rate=1)

    assert [pacer.acquire() for _ in range(4)] == [0.0, 1.0, 2.0, 3.0]


def test_time_that_passes_pays_off_reservations_and_refills_only_up_to_the_burst() -> None:
    pacer, time = bucket(rate=1, burst=3)
    assert [pacer.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]

    time.now += 0.5  # the reservation is half due
    assert pacer.acquire() == pytest.approx(1.5)

    time.now += 3600  # a long idle spell refills to the burst, not to 3,600 tokens
    assert [pacer.acquire() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_concurrent_callers_each_get_their_own_slot() -> None:
    pacer, _ = bucket(rate=4, burst=1)
    waits: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        wait = pacer.acquire()
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(waits) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (float("nan"), None), (1, 0.5)])
def test_a_rate_or_burst_out_of_range_is_refused(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)
