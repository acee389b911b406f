"""Sleeping on ctx.clock in a way tests can observe."""
from __future__ import annotations

from edge.clock import Clock, SystemClock


class ClockSleeper:
    """Wraps `clock.sleep` and remembers the deadline, so a test driving a FakeClock can tell when a driver
    has finished its real-time I/O and is parked again until a future fake deadline (`settled()`)."""

    def __init__(self, clock: Clock | None = None):
        self.clock: Clock = clock or SystemClock()
        self.sleeping = False
        self.wake_at = 0.0
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.wake_at = self.clock.monotonic() + max(0.0, seconds)
        self.sleeping = True
        self.sleeps += 1
        try:
            await self.clock.sleep(seconds)
        finally:
            self.sleeping = False

    def settled(self) -> bool:
        return self.sleeping and self.wake_at > self.clock.monotonic() + 1e-9
