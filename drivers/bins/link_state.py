"""Online/offline bookkeeping for one device, emitting device.online / device.offline on changes only."""
from __future__ import annotations

from typing import Any


class LinkState:
    """`unknown` until the first answer or the N-th miss; then flips between online and offline.

    The first answer after start counts as coming online (so the console and the uplink learn about every
    sensor after a gateway restart); misses only turn a device offline after `offline_after` in a row.
    """

    def __init__(self, ctx, device: str, device_type: str, offline_after: int = 1):
        self.ctx = ctx
        self.device = device
        self.device_type = device_type
        self.offline_after = offline_after
        self.state = "unknown"
        self.missed = 0
        self.offline_since: float | None = None
        self.last_seen: float | None = None
        self._last_seen_stored: float | None = None
        self.transitions = 0

    @property
    def online(self) -> bool:
        return self.state == "online"

    async def seen(self, info: dict[str, Any] | None = None) -> bool:
        """Record an answer. Returns True if this made the device (come back) online."""
        now = self.ctx.clock.monotonic()
        self.last_seen = now
        self.missed = 0
        if self.state == "online":
            # refresh last_seen in the store now and then, not on every poll
            if self._last_seen_stored is None or now - self._last_seen_stored >= 60:
                await self._store("online", info, seen=True)
            return False
        payload: dict[str, Any] = {"device": self.device, "device_type": self.device_type}
        if self.offline_since is not None:
            payload["offline_s"] = round(now - self.offline_since, 1)
            payload["reason"] = "answers again"
        else:
            payload["reason"] = "first answer"
        self.state = "online"
        self.offline_since = None
        self.transitions += 1
        self.ctx.emit_new("device.online", self.device, payload)
        await self._store("online", info, seen=True)
        return True

    async def miss(self, reason: str, info: dict[str, Any] | None = None, immediate: bool = False) -> bool:
        """Record a missed poll / silence. Returns True if this made the device go offline."""
        self.missed += 1
        if self.state == "offline" or (self.missed < self.offline_after and not immediate):
            return False
        now = self.ctx.clock.monotonic()
        self.state = "offline"
        self.offline_since = now
        self.transitions += 1
        self.ctx.emit_new("device.offline", self.device, {
            "device": self.device, "device_type": self.device_type, "reason": reason,
            "missed_polls": self.missed})
        await self._store("offline", (info or {}) | {"reason": reason}, seen=False)
        return True

    async def _store(self, state: str, info: dict[str, Any] | None, seen: bool) -> None:
        store = self.ctx.store
        try:
            await store.call(store.set_device_state, self.device, self.device_type, state, info or {}, seen)
            if seen:
                self._last_seen_stored = self.ctx.clock.monotonic()
        except Exception as exc:  # the event is already on the bus; a failing device table must not kill polling
            self.ctx.log.warning("could not record device state", extra={"device": self.device, "error": repr(exc)})

    def health(self) -> dict[str, Any]:
        return {"state": self.state, "missed_polls": self.missed, "transitions": self.transitions}
