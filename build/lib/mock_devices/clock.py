"""Time modes: real-time, accelerated and historical replay.

Generators produce event time only; a :class:`Pacer` decides when a message may leave:

* ``historical``: as fast as the sink takes it;
* ``accelerated``: event time advances ``speedup`` times faster than the wall clock;
* ``realtime``: ``speedup = 1`` and the run starts at the current minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lakehouse.time import MINUTE_MS
from mock_devices.config import ConfigError

MODES = ("realtime", "accelerated", "historical")


class Pacer:
    """Holds messages back until their event time is due on the (scaled) wall clock.

    Args:
        mode: One of :data:`MODES`.
        start_ms: Event time that corresponds to the moment :meth:`start` is called.
        speedup: Event-time seconds per wall-clock second (1 in real-time mode).
        clock: Monotonic clock in seconds (tests pass a fake).
        sleep: Sleep function (tests pass a fake).

    """

    def __init__(
        self,
        mode: str,
        start_ms: int,
        speedup: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        if mode == "realtime":
            speedup = 1.0
        if not speedup > 0:
            raise ConfigError(f"speed-up must be positive, got {speedup}")
        self.mode = mode
        self.start_ms = start_ms
        self.speedup = speedup
        self._clock, self._sleep = clock, sleep
        self._t0: float | None = None

    @property
    def paced(self) -> bool:
        """Whether messages wait for the clock at all."""
        return self.mode != "historical"

    def start(self) -> None:
        """Anchor event time ``start_ms`` to now."""
        self._t0 = self._clock()

    def wait(self, event_ms: int) -> None:
        """Sleep until ``event_ms`` is due; no-op in historical mode."""
        if not self.paced:
            return
        if self._t0 is None:
            self.start()
        assert self._t0 is not None
        due = self._t0 + (event_ms - self.start_ms) / 1000.0 / self.speedup
        delay = due - self._clock()
        if delay > 0:
            self._sleep(delay)


def realtime_start(now_ms: int | None = None) -> int:
    """Start of a real-time run: the current minute."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return now - now % MINUTE_MS
