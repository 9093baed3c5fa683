"""The one backoff rule of the service: a delay that doubles with each consecutive failure, capped.

``service.loopconfig.RetryPolicy`` draws a parked record's wait uniformly below it (full jitter: many
records fail together, and should not all come back together); ``service.tracker.JobTracker`` waits it
exactly between polls after failed ones (one poller: nothing to spread). Pure.
"""

from __future__ import annotations

_MAX_DOUBLINGS = 30  # past this, 2**n only overflows a float's use; every cap is reached long before


def capped_exponential(base_s: float, cap_s: float, failures: int) -> float:
    """``base_s * 2**failures``, at most ``cap_s``: ``base_s`` after no failure."""
    return min(cap_s, base_s * 2.0 ** min(failures, _MAX_DOUBLINGS))
