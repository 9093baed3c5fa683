"""Client-side pacing of one AWS operation: a token bucket with an injected clock and sleep.

``adapters.sagemaker.SageMakerJobs`` paces every ``CreateTrainingJob`` attempt with it (a
``before-send`` hook on its client), at ``SAGEMAKER_CREATE_RATE`` per second, so that a sweep of
hundreds of submissions slows down to what SageMaker accepts instead of storming into throttling
and spending its retries. The default, 1 per second, is SageMaker's documented rate of
``CreateTrainingJob`` for an account in a Region ("Maximum number of CreateTrainingJob requests that
you can make, per second, in this account, in the current Region: 1 TPS", SageMaker Developer Guide,
*Feature Processor constraints, limits, and quotas*); the limit is per process, so N replicas
together send up to N times the rate.

Why a bucket of our own rather than botocore's (the brief preferred a well-kept mechanism):

* botocore's ``adaptive`` retry mode limits nothing until SageMaker has already throttled (its
  limiter starts disabled), then learns a rate (CUBIC) that cannot be configured, for every operation
  of the client at once: a throttled create would also slow job tracking's List/Describe calls.
* Its token bucket (``botocore.retries.bucket.TokenBucket``) is undocumented internals, starts empty,
  and waits on a condition variable in real time, so pacing could not be tested with an injected clock.

This one is 30 lines: tokens refill at ``rate`` up to ``burst``; each acquisition takes one, and a
caller that finds none reserves the next free slot and sleeps until it (a negative balance is the
queue of reservations), so concurrent callers are spaced ``1/rate`` apart in arrival order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """At most ``burst`` acquisitions at once and ``rate`` per second on average. Thread-safe.

    ``rate``: tokens per second, > 0. ``burst``: capacity, at least 1; default ``max(1, rate)`` (one
    second's worth, as botocore sizes its bucket). Starts full. ``clock`` returns seconds (monotonic);
    ``sleep`` waits that many seconds. Raises ``ValueError`` for a rate or burst out of range.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0 per second, got {rate!r}")
        capacity = max(1.0, rate) if burst is None else burst
        if not capacity >= 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.rate = rate
        self.burst = capacity
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = capacity
        self._stamp = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds slept (0.0 if none)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
