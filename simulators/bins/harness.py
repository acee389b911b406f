"""Run bin drivers against the simulators on a FakeClock, with a real SQLite store and event bus.

Used by the tests and handy in a REPL. Scheduling in the drivers runs on the FakeClock, bytes on the ptys
move in real time; `advance()` moves fake time one step at a time and, after each step, waits (real time)
until every driver has finished its I/O and is parked on a future fake deadline again — so a test can run
"an hour of polling" deterministically in a second or two.
"""
from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from edge.clock import FakeClock
from edge.config import Config
from edge.events import Event
from edge.runtime.bus import EventBus
from edge.runtime.context import RuntimeContext
from edge.store import Store


def minimal_config(data_dir: str | Path, devices: list[dict] | None = None) -> Config:
    return Config.model_validate({
        "gateway": {"id": "gw-bins-test", "compound_id": "cp-test", "county_code": "330106"},
        "storage": {"path": str(data_dir), "commit_interval_ms": 10},
        "web": {"enabled": False},
        "devices": devices or [],
    })


class BinsHarness:
    def __init__(self, data_dir: str | Path | None = None, devices: list[dict] | None = None):
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="bins-harness-")
        self.data_dir = Path(data_dir or self._tmp.name)
        self.clock = FakeClock()
        self.config = minimal_config(self.data_dir, devices)
        self.store: Store | None = None
        self.bus: EventBus | None = None
        self.ctx: RuntimeContext | None = None
        self.components: list = []
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> "BinsHarness":
        self.store = Store(self.data_dir / "edge.db", clock_ms=self.clock.time_ms)
        self.bus = EventBus(self.store, self.clock, commit_interval_ms=10)
        self.ctx = RuntimeContext(config=self.config, store=self.store, bus=self.bus, clock=self.clock)
        self.bus.start()
        return self

    async def __aexit__(self, *exc) -> None:
        for t in self._tasks:
            t.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bus.stop()
        self.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        crashed = [r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)]
        if crashed and exc[0] is None:
            raise crashed[0]

    def start(self, component) -> Any:
        self.components.append(component)
        self._tasks.append(asyncio.create_task(component.run(self.ctx), name=f"harness-{component.name}"))
        return component

    def check_alive(self) -> None:
        for t in self._tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait (real time) until every started driver is parked on a future fake deadline."""
        deadline = time.monotonic() + timeout
        while not all(c.settled() for c in self.components):
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError("drivers did not settle: " + ", ".join(
                    c.name for c in self.components if not c.settled()))
            await asyncio.sleep(0.002)

    async def advance(self, seconds: float, step: float = 1.0, before_step: Callable[[], Any] | None = None) -> None:
        await self.settle()
        done = 0.0
        while done < seconds - 1e-9:
            dt = min(step, seconds - done)
            if before_step is not None:
                r = before_step()
                if asyncio.iscoroutine(r):
                    await r
            await self.clock.advance(dt)
            done += dt
            await self.settle()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.005)

    async def events(self, kind: str | None = None, source: str | None = None) -> list[Event]:
        """Committed events from the SQLite store, oldest first."""
        await self.bus.flush()
        # the bus writer may hold a batch in flight on the store's single thread: queue behind it
        await self.store.call(lambda: None)
        return list(reversed(self.store.query_events(kind=kind, source=source, limit=100_000)))
