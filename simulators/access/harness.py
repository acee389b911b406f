"""A gateway core cut down to what an access driver needs — real Store (SQLite file), real EventBus, real
RuntimeContext — for tests and demos that drive the access simulators into stored Events."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

from edge.clock import Clock, SystemClock
from edge.config import Config
from edge.events import Event
from edge.runtime.bus import EventBus
from edge.runtime.context import RuntimeContext
from edge.store import Store


def make_config(data_dir: Path, devices: list[dict[str, Any]], timezone: str = "Asia/Shanghai") -> Config:
    return Config.model_validate({
        "gateway": {"id": "gw-access-test", "compound_id": "cp-test", "county_code": "330106", "timezone": timezone},
        "storage": {"path": str(data_dir), "commit_interval_ms": 20},
        "devices": devices,
    })


class AccessRig:
    def __init__(self, data_dir: Path, devices: list[dict[str, Any]], clock: Clock | None = None):
        self.data_dir = Path(data_dir)
        self.clock = clock or SystemClock()
        self.config = make_config(self.data_dir, devices)
        self.store: Store | None = None
        self.ctx: RuntimeContext | None = None
        self.components: list = []
        self.tasks: dict[str, asyncio.Task] = {}

    async def start(self, run: bool = True) -> "AccessRig":
        from drivers.access import build_components

        self.store = Store(self.data_dir / "edge.db", clock_ms=self.clock.time_ms)
        bus = EventBus(self.store, self.clock, self.config.storage.commit_interval_ms)
        self.ctx = RuntimeContext(config=self.config, store=self.store, bus=bus, clock=self.clock)
        bus.start()
        self.components = build_components(self.config, self.ctx)
        if run:
            for c in self.components:
                self.run(c)
        return self

    def run(self, component) -> asyncio.Task:
        task = asyncio.create_task(component.run(self.ctx), name=component.name)
        self.tasks[component.name] = task
        return task

    def component(self, device_id: str):
        return next(c for c in self.components if c.name == f"access.{device_id}")

    async def stop_component(self, device_id: str) -> None:
        task = self.tasks.pop(f"access.{device_id}", None)
        if task:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def stop(self) -> None:
        for name in list(self.tasks):
            await self.stop_component(name.removeprefix("access."))
        if self.ctx is not None:
            await self.ctx.bus.stop()
        if self.store is not None:
            self.store.close()

    def crashed(self) -> list[BaseException]:
        return [t.exception() for t in self.tasks.values() if t.done() and not t.cancelled() and t.exception()]

    def events(self, kind: str | None = None, source: str | None = None, limit: int = 100_000) -> list[Event]:
        """Committed events, oldest first (read back from SQLite)."""
        assert self.store is not None
        return list(reversed(self.store.query_events(kind=kind, source=source, limit=limit)))

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            errors = self.crashed()
            if errors:
                raise errors[0]
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(0.02)

    async def wait_events(self, kind: str, n: int = 1, timeout: float = 5.0, source: str | None = None) -> list[Event]:
        return await self.wait_for(lambda: (ev if len(ev := self.events(kind, source)) >= n else None), timeout,
                                   f"{n} x {kind}")
