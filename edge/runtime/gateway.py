"""The gateway process: store + bus + components under one supervisor, in one asyncio loop."""
from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

from edge import __version__
from edge.clock import Clock, SystemClock
from edge.config import Config
from edge.store import Store

from .bus import EventBus
from .context import RuntimeContext
from .plugins import build_all
from .supervisor import Supervisor

log = logging.getLogger("edge.gateway")


class Gateway:
    def __init__(self, config: Config, config_path: str | Path | None = None, clock: Clock | None = None,
                 components: list | None = None):
        self.config = config
        self.config_path = Path(config_path) if config_path else None
        self.clock = clock or SystemClock()
        self._extra = components or []
        self.ctx: RuntimeContext | None = None
        self.supervisor: Supervisor | None = None
        self.started_ms: int | None = None

    @property
    def db_path(self) -> Path:
        return Path(self.config.storage.path) / "edge.db"

    async def start(self) -> RuntimeContext:
        store = Store(self.db_path, clock_ms=self.clock.time_ms)
        bus = EventBus(store, self.clock, self.config.storage.commit_interval_ms)
        ctx = RuntimeContext(config=self.config, store=store, bus=bus, clock=self.clock,
                             config_path=self.config_path, log=logging.getLogger("edge"))
        ctx.services["gateway"] = self
        ctx.services["loop"] = asyncio.get_running_loop()
        self.ctx = ctx
        components = build_all(self.config, ctx) + list(self._extra)
        self.supervisor = Supervisor(ctx, components)
        bus.start()
        self.started_ms = self.clock.time_ms()
        ctx.emit_new("gateway.started", self.config.gateway.id,
                     {"version": __version__, "config_hash": self.config.config_hash(), "pid": os.getpid()})
        self.supervisor.start()
        log.info("gateway started", extra={"gateway_id": self.config.gateway.id, "version": __version__,
                                           "components": sorted(self.supervisor.slots), "db": str(self.db_path)})
        return ctx

    async def stop(self) -> None:
        assert self.ctx is not None and self.supervisor is not None
        t0 = time.monotonic()
        await self.supervisor.stop()
        self.ctx.emit_new("gateway.stopped", self.config.gateway.id, {"uptime_s": round(
            (self.clock.time_ms() - (self.started_ms or 0)) / 1000, 1)})
        await self.ctx.bus.stop()
        self.ctx.store.close()
        log.info("gateway stopped cleanly", extra={"stop_s": round(time.monotonic() - t0, 3)})

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
