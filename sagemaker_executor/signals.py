"""SIGTERM and SIGINT for the running service: :class:`StopSignal`, installed first thing by ``app.run``.

A signal before the loop exists makes start-up give up at its next step; afterwards it stops the loop,
which drains within ``SHUTDOWN_GRACE_SECONDS``. Either way the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("sagemaker_executor")


class StopSignal:
    """SIGTERM/SIGINT, caught from the first moment of :func:`run`.

    A pod can be stopped while it is still starting (a rollout that moves on, a scale-down). Until the
    loop exists the signal is only recorded and start-up gives up at its next step; afterwards it stops
    the loop, which drains within the grace period. Either way the process exits 0, not by the signal.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._action: Callable[[], None] | None = None
        self._event = threading.Event()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        self._event.set()
        log.info("received %s", self.received)
        if self._action is not None:
            self._action()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as the signal has come."""
        return self._event.wait(seconds)

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the signal from now on (at once if it already came)."""
        self._action = action
        if self.received is not None:
            action()
