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
from .plugins import build_all, import_all
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
        import_all()  # plug-ins register their tables before the store applies migrations
        store = Store(self.db_path, clock_ms=self.clock.time_ms)
        bus = EventBus(store, self.clock, self.config.storage.commit_interval_ms)
        ctx = RuntimeContext(config=self.config, store=store, bus=bus, clock=self.clock,
                             config_path=self.config_path, log=logging.getLogger("edge"))
        ctx.services["gateway"] = self
        ctx.services["loop"] = asyncio.get_running_loop()
        ctx.services["reload_config"] = self.reload_config
        self.ctx = ctx
        components = build_all(self.config, ctx) + list(self._extra)
        store.migrate()  # anything a builder registered late
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

    # Sections that running components re-read on their own when told; everything else needs a restart.
    LIVE_SECTIONS = ("zones", "schedules", "stations", "alerts")

    def reload_config(self) -> dict:
        """Re-read the config file; apply zone/schedule/alert changes live, list what needs a restart.

        An invalid file changes nothing and returns its problems (the running config stays in force).
        """
        from edge.config import ConfigError, load_config

        if self.config_path is None:
            return {"ok": False, "error": "the gateway was started without a config file"}
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            return {"ok": False, "error": "invalid config", "problems": [str(p) for p in exc.problems]}
        old_d, new_d = self.config.model_dump(mode="json"), new.model_dump(mode="json")
        changed = sorted(k for k in new_d if old_d.get(k) != new_d.get(k))
        live = [k for k in changed if k in self.LIVE_SECTIONS]
        restart = [k for k in changed if k not in self.LIVE_SECTIONS]
        applied = []
        if live:
            for k in live:
                setattr(self.config, k, getattr(new, k))
            for hook in ("zones_changed", "alerts_changed"):
                fn = self.ctx.services.get(hook) if self.ctx else None
                if fn is not None:
                    fn(self.config)
                    applied.append(hook)
        log.info("config reloaded", extra={"changed": changed, "applied_live": live, "restart_required": restart})
        return {"ok": True, "changed": changed, "applied_live": live, "restart_required": restart,
                "hooks": applied, "config_hash": self.config.config_hash()}

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
