"""All analytics of one camera, run on each FrameResult: the change detector once, then every zone's analytic."""
from __future__ import annotations

import logging
from typing import Any

from .base import Emission
from .bin_overflow import BinFusion, OverflowVision
from .clutter import ChangeDetector, to_small_grey
from .fire_lane import FireLaneAnalytic, FrameView
from .litter import LitterAnalytic
from .off_hours_drop import StationVisitAnalytic

log = logging.getLogger("edge.analytics")


class CameraAnalytics:
    def __init__(self, camera: str, config, fusion: BinFusion | None = None, *, static_s: float = 10.0):
        self.camera = camera
        zones = [z for z in config.zones if z.camera == camera]
        masks = [z.polygon for z in zones if z.type == "mask"]
        stations = {s.id: s for s in config.stations}
        schedules = {s.id: s for s in config.schedules}
        tz = config.gateway.timezone
        self.detector = ChangeDetector(camera, masks=masks, static_s=static_s,
                                       zones=[z.polygon for z in zones if z.type != "mask"])
        self.fire_lanes = [FireLaneAnalytic(z, camera, masks) for z in zones if z.type == "fire_lane"]
        self.litter = [LitterAnalytic(z, camera, stations.get(z.station), masks)
                       for z in zones if z.type == "keep_clear_ground"]
        self.overflow = [OverflowVision(z, camera, masks) for z in zones if z.type == "bin_station"]
        self.visits = []
        for st in config.stations:
            st_zones = [z for z in zones if z.station == st.id and z.type in ("bin_station", "keep_clear_ground")]
            if st_zones:
                self.visits.append(StationVisitAnalytic(st, st_zones, camera, schedules.get(st.schedule), tz, masks))
        self.fusion = fusion
        self.stats = {"frames": 0, "bad_frames": 0, "errors": 0}

    @property
    def needs_reference(self) -> bool:
        return any(z.zone.clutter_detection for z in self.fire_lanes) or bool(self.litter) or bool(self.overflow)

    def process(self, fr) -> list[Emission]:
        frame = getattr(fr, "frame", None)
        if frame is None or not hasattr(frame, "shape") or frame.ndim != 3 or frame.shape[0] < 16 \
                or frame.shape[1] < 16:
            self.stats["bad_frames"] += 1
            return []
        self.stats["frames"] += 1
        try:
            grey = to_small_grey(frame)
        except Exception:
            self.stats["bad_frames"] += 1
            return []
        change = self.detector.update(frame, float(fr.ts)) if self.detector.has_reference else None
        view = FrameView(grey, change, self.detector if change is not None else None)
        out: list[Emission] = []
        for a in (*self.fire_lanes, *self.litter, *self.visits):
            try:
                out.extend(a.process(fr, view))
            except Exception:  # one analytic's bug must not silence the others on this camera
                self.stats["errors"] += 1
                log.exception("analytic failed", extra={"camera": self.camera, "analytic": type(a).__name__})
        for ov in self.overflow:
            try:
                verdict = ov.process(fr, view)
                if verdict is not None and self.fusion is not None and ov.station:
                    out.extend(self.fusion.on_vision(ov.station, verdict[0] == "on", float(fr.ts), verdict[1],
                                                     self.camera, ov.zone.id))
            except Exception:
                self.stats["errors"] += 1
                log.exception("overflow analytic failed", extra={"camera": self.camera, "zone": ov.zone.id})
        return out

    def status(self) -> dict[str, Any]:
        return {"camera": self.camera, "reference": self.detector.health(),
                "fire_lanes": [a.status() for a in self.fire_lanes],
                "litter": {a.zone.id: a.state for a in self.litter},
                "overflow": {o.zone.id: o.on for o in self.overflow},
                "stations": {v.station.id: v.state for v in self.visits}}

    def health(self) -> dict[str, Any]:
        h: dict[str, Any] = dict(self.stats, change=self.detector.health())
        for a in self.fire_lanes:
            h[f"fire_lane.{a.zone.id}"] = a.health()
        for a in self.litter:
            h[f"litter.{a.zone.id}"] = a.health()
        for v in self.visits:
            h[f"station.{v.station.id}"] = v.health()
        return h
