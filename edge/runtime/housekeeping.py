"""Core components: retention and periodic health logging."""
from __future__ import annotations

import logging

from .component import Component

log = logging.getLogger("edge.housekeeping")


class Retention(Component):
    name = "retention"

    def __init__(self, interval_s: float = 3600):
        self.interval_s = interval_s
        self.runs = 0
        self.last: dict | None = None

    async def run(self, ctx) -> None:
        s = ctx.config.storage
        while True:
            removed = await ctx.store.call(
                ctx.store.apply_retention, event_days=s.event_retention_days, sent_days=s.sent_retention_days,
                media_days=min(s.media_retention_days, ctx.config.alerts.evidence_retention_days),
                max_db_bytes=int(s.max_db_mb * 1024 * 1024), max_media_bytes=int(s.max_media_mb * 1024 * 1024))
            self.runs += 1
            self.last = removed
            if any(removed.values()):
                log.info("retention removed old data", extra=removed)
            await ctx.clock.sleep(self.interval_s)

    def health(self) -> dict:
        return {"runs": self.runs, "last_removed": self.last}


class HealthLog(Component):
    """Logs every component's health so `journalctl` shows what each part is doing."""

    name = "health-log"

    def __init__(self, interval_s: float = 60):
        self.interval_s = interval_s

    async def run(self, ctx) -> None:
        await ctx.clock.sleep(min(2.0, self.interval_s))  # one early report so start-up problems show at once
        while True:
            h = ctx.supervisor.health() if ctx.supervisor else {}
            log.info("component health", extra={"health": {k: v.get("state") for k, v in h.items()},
                                                "bus": ctx.bus.health()})
            await ctx.clock.sleep(self.interval_s)


def build_components(config, ctx):
    return [Retention(), HealthLog()]
