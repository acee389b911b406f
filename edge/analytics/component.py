"""The analytics component: FrameHub frames and bin.full events in, events with evidence out.

Frames are handled newest-first per camera: if the analytics fall behind, older frames are skipped (counted),
never queued. The CPU work (change detection, JPEG rendering) runs in worker threads, the store work on the
store thread, so the event loop only moves references around.

`ctx.services["analytics"]` is this object; the console calls `capture_reference()`, `reference_status()`,
`station_stats()` and `status()`.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from edge.runtime.component import Component
from edge.vision import FrameHub

from . import clutter, station_stats
from .bin_overflow import FUSION_SOURCE, BinFusion
from .camera import CameraAnalytics
from .sink import EmissionSink

log = logging.getLogger("edge.analytics")

REFERENCE_POLL_S = 60.0


def _cameras(config) -> list[str]:
    return sorted({z.camera for z in config.zones} | {s.camera for s in config.stations if s.camera})


def _signature(config, camera: str) -> str:
    """Everything a camera's analytics are built from, as text: equal text = nothing to rebuild."""
    import json

    zones = [z.model_dump(mode="json") for z in config.zones if z.camera == camera]
    station_ids = {z["station"] for z in zones if z.get("station")}
    stations = [s.model_dump(mode="json") for s in config.stations if s.id in station_ids or s.camera == camera]
    sched_ids = {s["schedule"] for s in stations if s.get("schedule")}
    schedules = [s.model_dump(mode="json") for s in config.schedules if s.id in sched_ids]
    return json.dumps([zones, stations, schedules, config.gateway.timezone], sort_keys=True)


class AnalyticsComponent(Component):
    name = "analytics"

    def __init__(self, config):
        self.config = config
        self.fusion = BinFusion(config.stations) if config.stations else None
        self.cameras = {c: CameraAnalytics(c, config, self.fusion) for c in _cameras(config)}
        self._signatures = {c: _signature(config, c) for c in self.cameras}
        self.ctx = None
        self.sink: EmissionSink | None = None
        self._latest: dict[str, Any] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_poll: dict[str, float] = {}
        self.counts = {"received": 0, "processed": 0, "skipped": 0, "errors": 0, "sensor_events": 0}

    # ---- wiring ---------------------------------------------------------------------------------------------
    def attach(self, ctx) -> None:
        if self.ctx is not None:
            return
        self.ctx = ctx
        station_stats.ensure_tables(ctx.store)
        self.sink = EmissionSink(ctx)
        ctx.services["analytics"] = self
        # hooks the web console looks for (edge/web/integrations.py, edge/web/zones_file.py)
        ctx.services["station_stats"] = self.station_stats_one
        ctx.services["capture_reference"] = lambda camera, by="console": self.capture_reference(camera, by=by)
        ctx.services["zones_changed"] = self.apply_config
        hub = ctx.services.get("vision")
        if hub is None:
            hub = ctx.services["vision"] = FrameHub()
        hub.add_listener(self._on_frame)
        if self.fusion is not None:
            ctx.subscribe("analytics.bins", self._on_bin_full, kinds=["bin.full"])
        for cam, ca in self.cameras.items():
            self._load_reference(cam)

    def _load_reference(self, camera: str) -> bool:
        rec = clutter.load_reference(self.ctx.store, camera)
        ca = self.cameras.get(camera)
        if ca is None or rec is None:
            return False
        if rec.get("captured_ms") == ca.detector.reference_info.get("captured_ms") and ca.detector.has_reference:
            return False
        try:
            ca.detector.load_record(rec)
        except Exception:
            log.exception("stored clear reference is unreadable; capture it again", extra={"camera": camera})
            return False
        log.info("clear reference loaded", extra={"camera": camera, "captured_ms": rec.get("captured_ms")})
        return True

    async def run(self, ctx) -> None:
        self.attach(ctx)
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._latest:
            self._wake.set()
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._latest = self._latest, {}
            await asyncio.gather(*(self._handle(cam, fr) for cam, fr in batch.items()))

    def _on_frame(self, fr) -> None:
        """FrameHub listener (any thread): keep only the newest frame per camera."""
        if fr.camera not in self.cameras:
            return
        self.counts["received"] += 1
        if fr.camera in self._latest:
            self.counts["skipped"] += 1
        self._latest[fr.camera] = fr
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # loop closed during shutdown
                pass

    async def _handle(self, camera: str, fr) -> None:
        ca = self.cameras.get(camera)
        if ca is None:  # the camera's zones were removed in the meantime
            self.counts["processed"] += 1
            return
        now = self.ctx.clock.monotonic()
        if now - self._last_poll.get(camera, -1e9) >= REFERENCE_POLL_S:
            self._last_poll[camera] = now
            await self.ctx.store.call(self._load_reference, camera)
        try:
            emissions = await asyncio.to_thread(ca.process, fr)
            await self.sink.write(emissions)
        except Exception:
            self.counts["errors"] += 1
            log.exception("analytics failed on a frame", extra={"camera": camera})
        finally:
            self.counts["processed"] += 1

    async def _on_bin_full(self, event) -> None:
        if event.source == FUSION_SOURCE or self.fusion is None:
            return
        self.counts["sensor_events"] += 1
        emissions = self.fusion.on_sensor(event.payload, event.ts_ms / 1000, event.source)
        await self.sink.write(emissions)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Tests: until every received frame has been processed or skipped."""
        async def _idle():
            while self.counts["processed"] + self.counts["skipped"] < self.counts["received"] or self._latest:
                await asyncio.sleep(0.002)
        await asyncio.wait_for(_idle(), timeout)

    # ---- zones edited in the console: apply without a restart -------------------------------------------------
    def apply_config(self, config) -> dict:
        """New zones/stations/schedules. Cameras whose analytics config is unchanged keep their state (an
        ongoing episode goes on); changed ones start afresh but keep their clear reference."""
        old, old_sigs = self.cameras, self._signatures
        self.config = config
        if config.stations:
            if self.fusion is None:
                self.fusion = BinFusion(config.stations)
            else:
                self.fusion.set_stations(config.stations)
        new, kept, rebuilt = {}, [], []
        for c in _cameras(config):
            sig = _signature(config, c)
            if c in old and old_sigs.get(c) == sig:
                new[c] = old[c]
                kept.append(c)
                continue
            ca = CameraAnalytics(c, config, self.fusion)
            prev = old.get(c)
            if prev is not None and prev.detector.has_reference:
                ca.detector.set_reference(prev.detector.reference.copy(), prev.detector.reference_info)
            elif self.ctx is not None:
                rec = clutter.load_reference(self.ctx.store, c)
                if rec is not None:
                    ca.detector.load_record(rec)
            new[c] = ca
            rebuilt.append(c)
        self.cameras = new
        self._signatures = {c: _signature(config, c) for c in new}
        log.info("analytics zones applied", extra={"kept": kept, "rebuilt": rebuilt,
                                                    "removed": sorted(set(old) - set(new))})
        return {"kept": kept, "rebuilt": rebuilt, "removed": sorted(set(old) - set(new))}

    # ---- console API ---------------------------------------------------------------------------------------
    def capture_reference(self, camera: str, by: str = "installer", frame=None, note: str | None = None) -> dict:
        """"The lane is clear now": store the camera's latest frame (or `frame`) as its clear reference."""
        if camera not in self.cameras:
            raise ValueError(f"camera {camera!r} has no zones")
        if frame is None:
            hub = self.ctx.services.get("vision")
            latest = hub.latest(camera) if hub is not None else None
            if latest is None:
                raise ValueError(f"no frame from camera {camera!r} yet")
            frame = latest.frame
        info = clutter.save_reference(self.ctx.store, camera, frame, by=by, now_ms=self.ctx.clock.time_ms(),
                                      note=note)
        self._load_reference(camera)
        return info

    def reference_status(self, camera: str) -> dict:
        ca = self.cameras.get(camera)
        if ca is None:
            raise ValueError(f"camera {camera!r} has no zones")
        return {"camera": camera, "needed": ca.needs_reference, **ca.detector.health()}

    def station_stats(self, station: str | None = None, since_ms: int | None = None,
                      until_ms: int | None = None) -> dict:
        return station_stats.station_stats(self.ctx.store, station, since_ms, until_ms,
                                           tz=self.config.gateway.timezone, now_ms=self.ctx.clock.time_ms())

    def station_stats_one(self, station: str) -> dict:
        """One station, last 24 h, in the shape the console shows (ctx.services["station_stats"])."""
        res = self.station_stats(station)
        return {"source": "analytics", "since_ms": res["since_ms"], "until_ms": res["until_ms"],
                **res["stations"].get(station, {})}

    def status(self) -> dict:
        return {"cameras": {c: ca.status() for c, ca in self.cameras.items()},
                "fusion": self.fusion.status() if self.fusion else None}

    def health(self) -> dict[str, Any]:
        h: dict[str, Any] = dict(self.counts)
        h["cameras"] = {c: ca.health() for c, ca in self.cameras.items()}
        if self.sink is not None:
            h["sink"] = dict(self.sink.stats)
        if self.fusion is not None:
            h["fusion"] = self.fusion.health()
        return h
