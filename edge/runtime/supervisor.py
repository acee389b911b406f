"""Runs components, restarts crashed ones with backoff, records why, reports per-component health."""
from __future__ import annotations

import asyncio
import logging
import random
import time
import traceback
from typing import Any

from .component import Component
from .context import RuntimeContext

log = logging.getLogger("edge.supervisor")


class _Slot:
    def __init__(self, component: Component):
        self.component = component
        self.task: asyncio.Task | None = None
        self.state = "pending"  # pending | running | restarting | stopped | failed
        self.restarts = 0
        self.last_error: str | None = None
        self.last_error_ms: int | None = None
        self.started_ms: int | None = None


class Supervisor:
    def __init__(self, ctx: RuntimeContext, components: list[Component], *, backoff_min: float = 1.0,
                 backoff_max: float = 60.0, healthy_after_s: float = 60.0):
        names = [c.name for c in components]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"component names must be unique: {sorted(dup)}")
        self.ctx = ctx
        self.slots = {c.name: _Slot(c) for c in components}
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.healthy_after_s = healthy_after_s
        ctx.supervisor = self

    def start(self) -> None:
        for slot in self.slots.values():
            if slot.task is None:
                slot.task = asyncio.create_task(self._keep_running(slot), name=f"component-{slot.component.name}")

    def add(self, component: Component) -> None:
        """Start one more component at run time (e.g. after a config reload added a camera)."""
        if component.name in self.slots:
            raise ValueError(f"component {component.name!r} already running")
        slot = _Slot(component)
        self.slots[component.name] = slot
        slot.task = asyncio.create_task(self._keep_running(slot), name=f"component-{component.name}")

    async def remove(self, name: str) -> None:
        slot = self.slots.pop(name, None)
        if slot and slot.task:
            slot.task.cancel()
            await asyncio.gather(slot.task, return_exceptions=True)

    async def _keep_running(self, slot: _Slot) -> None:
        attempt = 0
        c = slot.component
        while True:
            slot.state = "running"
            slot.started_ms = self.ctx.clock.time_ms()
            started = time.monotonic()
            try:
                await c.run(self.ctx)
                slot.state = "stopped"
                log.info("component finished", extra={"component": c.name})
                return
            except asyncio.CancelledError:
                slot.state = "stopped"
                raise
            except Exception as exc:
                if time.monotonic() - started >= self.healthy_after_s:
                    attempt = 0  # it ran fine for a while: start backoff from the bottom again
                attempt += 1
                slot.restarts += 1
                slot.last_error = f"{type(exc).__name__}: {exc}"
                slot.last_error_ms = self.ctx.clock.time_ms()
                delay = min(self.backoff_max, self.backoff_min * 2 ** (attempt - 1))
                delay *= random.uniform(0.8, 1.2)
                slot.state = "restarting"
                log.error("component crashed; restarting", extra={
                    "component": c.name, "error": slot.last_error, "restarts": slot.restarts,
                    "retry_in_s": round(delay, 2),
                    "where": "".join(traceback.format_exception(exc)[-3:]).strip()})
                await asyncio.sleep(delay)

    def health(self) -> dict[str, Any]:
        out = {}
        for name, slot in self.slots.items():
            try:
                detail = slot.component.health()
            except Exception as exc:  # a broken health() must not break the health report
                detail = {"health_error": f"{type(exc).__name__}: {exc}"}
            out[name] = {"state": slot.state, "restarts": slot.restarts, "last_error": slot.last_error,
                         "critical": slot.component.critical, **detail}
        return out

    def healthy(self) -> bool:
        return all(s.state == "running" for s in self.slots.values() if s.component.critical)

    async def stop(self) -> None:
        tasks = [s.task for s in self.slots.values() if s.task]
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for slot, r in zip([s for s in self.slots.values() if s.task], results):
            if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                log.warning("component raised while stopping", extra={"component": slot.component.name,
                                                                       "error": repr(r)})
