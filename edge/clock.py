"""Injectable clocks.

Every component reads time through a Clock so that dwell times of minutes can be tested in seconds:
tests pass a FakeClock and advance it; production uses SystemClock.
"""
from __future__ import annotations

import abc
import asyncio
import heapq
import itertools
import time


class Clock(abc.ABC):
    """Interface: wall time (UTC epoch seconds), monotonic time and an awaitable sleep."""

    @abc.abstractmethod
    def time(self) -> float: ...

    @abc.abstractmethod
    def monotonic(self) -> float: ...

    @abc.abstractmethod
    async def sleep(self, seconds: float) -> None: ...

    def time_ms(self) -> int:
        return int(self.time() * 1000)


class SystemClock(Clock):
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock(Clock):
    """A clock that only moves when told to.

    `sleep()` parks the caller until `advance()` moves time past its deadline, so a test can run
    "ten minutes" of component behaviour in milliseconds of real time.
    """

    def __init__(self, start: float = 1_780_000_000.0):
        self._now = float(start)
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._counter = itertools.count()

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._counter), fut))
        await fut

    def set(self, epoch_seconds: float) -> None:
        """Jump wall time (monotonic time is not affected, as on a real NTP step)."""
        self._now = float(epoch_seconds)

    async def advance(self, seconds: float, step: float | None = None) -> None:
        """Move time forward, waking sleepers in deadline order and letting them run.

        With `step`, time moves in increments so periodic loops run once per step.
        """
        target = self._mono + seconds
        step = step or seconds
        while self._mono < target - 1e-12:
            nxt = min(target, self._mono + step)
            while self._sleepers and self._sleepers[0][0] <= nxt:
                deadline, _, fut = heapq.heappop(self._sleepers)
                delta = max(0.0, deadline - self._mono)
                self._mono += delta
                self._now += delta
                if not fut.done():
                    fut.set_result(None)
                for _ in range(5):
                    await asyncio.sleep(0)
            delta = nxt - self._mono
            self._mono += delta
            self._now += delta
            for _ in range(5):
                await asyncio.sleep(0)


class ScaledClock(Clock):
    """Wall time that runs `speed` times faster than real time, from now on (the demo's time compression).

    Everything that reads the injected clock — dwell times, poll intervals, offline timers, drop windows — runs
    `speed` times faster together, so the analytics behave exactly as at speed 1, just sooner.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None):
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = float(speed)
        self._wall0 = time.time() if start is None else float(start)
        self._mono0 = time.monotonic()

    def time(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.speed

    def monotonic(self) -> float:
        return (time.monotonic() - self._mono0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)
