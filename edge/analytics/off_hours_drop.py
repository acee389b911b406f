"""Station visits and `waste.off_hours_drop`: a person visits outside the drop windows and leaves something.

A visit starts with the first person standing in one of the station's zones and ends when nobody was seen
there for `visit_gap_s`. The station's ground as it looked just before the visit is kept; for `visit_leave_s`
after the visit the ground is compared with it (same block comparison as the clutter detector, lighting
discounted). A change that holds still over two looks, where no person stands, is a drop; so is a detected
stationary non-person object that first appeared during the visit. Every visit goes to the station statistics
(in or out of the window, dropped or not); only drops outside the windows raise the event, with the snapshot
of the moment (the frame that showed the person best) and one of what was left.

Drops are looked for on keep_clear_ground zones when the station has any (bin lids left open are not drops),
else on its bin_station zones.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from edge.events import uuid7

from .base import PEOPLE, VEHICLES, Emission, people_boxes
from .clutter import BLOCK, compare_blocks
from .evidence import COLOURS, Mark, Snapshot
from .fire_lane import FrameView
from .zones import ZoneShape, block_grid_mask, box_area, box_to_cells, cells_to_box

MIN_DROP_CELLS = 3
SETTLE_S = 3.0


class StationVisitAnalytic:
    def __init__(self, station, zones: list, camera: str, schedule=None, tz: str = "Asia/Shanghai", masks=()):
        self.station = station
        self.zones = list(zones)
        ground = [z for z in self.zones if z.type == "keep_clear_ground"]
        self.drop_zones = ground or [z for z in self.zones if z.type == "bin_station"]
        self.camera = camera
        self.schedule = schedule
        self.tz = ZoneInfo(tz)
        self.masks = [list(m) for m in masks]
        self._shapes: dict[str, ZoneShape] = {}
        self._shape_size: tuple[int, int] | None = None
        self.stats = {"frames": 0, "visits": 0, "drops": 0, "off_hours_drops": 0}
        self.baseline = None  # grey of the last frame without anyone at the station
        self._reset()

    def _reset(self) -> None:
        self.state = "idle"  # idle | visiting | watching
        self.visit_start: float | None = None
        self.last_person: float | None = None
        self.visit_baseline = None
        self.best: tuple[float, Any, list, float] | None = None  # (area, frame, people boxes, ts)
        self.candidate: tuple[np.ndarray, float] | None = None  # changed cells, first seen
        self.visit_id: str | None = None

    def shapes(self, w: int, h: int) -> dict[str, ZoneShape]:
        if self._shape_size != (w, h):
            self._shapes = {z.id: ZoneShape(z.polygon, w, h, self.masks) for z in self.zones}
            self._shape_size = (w, h)
        return self._shapes

    def window_of(self, ts: float) -> tuple[bool, str | None]:
        """(inside a drop window, that day's windows as text). No schedule: always inside."""
        if self.schedule is None:
            return True, None
        local = datetime.fromtimestamp(ts, timezone.utc).astimezone(self.tz)
        windows = self.schedule.windows_on(local.date())
        return self.schedule.window_at(local) is not None, ",".join(windows) or "none (holiday)"

    def _people(self, fr) -> list:
        shapes = self.shapes(fr.width, fr.height)
        boxes = people_boxes(fr)
        return [b for b in boxes if any(s.footprint_inside(b, 0.3) for s in shapes.values())]

    def process(self, fr, view: FrameView) -> list[Emission]:
        self.stats["frames"] += 1
        now = float(fr.ts)
        people = self._people(fr)
        uncertain = view.change is not None and view.change.uncertain
        out: list[Emission] = []
        if people:
            if self.state in ("idle",):
                self.state, self.visit_start, self.visit_baseline = "visiting", now, self.baseline
                self.visit_id = uuid7(int(now * 1000))
                self.stats["visits"] += 1
            elif self.state == "watching":
                self.state = "visiting"  # came back (or someone else came) before we decided: same visit
            self.last_person = now
            self.candidate = None
            area = sum(box_area(b) for b in people)
            if self.best is None or area >= self.best[0]:
                self.best = (area, fr.frame.copy(), list(people), now)
            return out
        if view.grey is not None and not uncertain and not people_boxes(fr):
            self.baseline = view.grey  # only a picture with nobody in it anywhere is a "before"
        if self.state == "visiting" and now - (self.last_person or now) >= self.station.visit_gap_s:
            self.state = "watching"
        if self.state == "watching":
            dropped = self._dropped(fr, view, now)
            if dropped is not None:
                out.extend(self._finish(fr, now, dropped))
            elif now - (self.last_person or now) >= self.station.visit_gap_s + self.station.visit_leave_s:
                out.extend(self._finish(fr, now, None))
        return out

    def _dropped(self, fr, view: FrameView, now: float):
        """(box, label) of something left at the station since the visit began, once settled; else None."""
        shapes = self.shapes(fr.width, fr.height)
        for t in fr.tracks:
            if t.label in PEOPLE or t.label in VEHICLES or not t.stationary or self.visit_start is None:
                continue
            if t.first_seen >= self.visit_start - 1 and any(shapes[z.id].footprint_inside(t.box, 0.3)
                                                             for z in self.drop_zones):
                return tuple(t.box), t.label
        if self.visit_baseline is None or view.grey is None or view.grey.shape != self.visit_baseline.shape:
            return None
        gh, gw = view.grey.shape[0] // BLOCK, view.grey.shape[1] // BLOCK
        cells = np.zeros((gh, gw), bool)
        for z in self.drop_zones:
            cells |= block_grid_mask(shapes[z.id].mask, gh, gw, 0.5)
        changed = compare_blocks(self.visit_baseline, view.grey).changed & cells
        for b in [t.box for t in fr.tracks] + [d.box for d in fr.detections]:
            c1, r1, c2, r2 = box_to_cells(b, fr.width, fr.height, gh, gw)
            changed[r1:r2, c1:c2] = False
        if changed.sum() < MIN_DROP_CELLS:
            self.candidate = None
            return None
        if self.candidate is None:
            self.candidate = (changed, now)
            return None
        prev, first = self.candidate
        same = changed & prev
        if same.sum() >= MIN_DROP_CELLS and now - first >= SETTLE_S:
            return cells_to_box(same, fr.width, fr.height), "unknown"
        if same.sum() < MIN_DROP_CELLS:
            self.candidate = (changed, now)
        return None

    def _finish(self, fr, now: float, dropped) -> list[Emission]:
        start = self.visit_start or now
        end = self.last_person or now
        in_window, windows = self.window_of(start)
        out: list[Emission] = []
        event_emission = None
        if dropped is not None:
            self.stats["drops"] += 1
            if not in_window:
                self.stats["off_hours_drops"] += 1
                event_emission = self._event(fr, now, dropped, windows)
                out.append(event_emission)
        out.append(Emission("stats.visit", self.camera, {
            "station": self.station.id, "camera": self.camera, "start_ms": int(start * 1000),
            "end_ms": int(end * 1000), "in_window": in_window, "dropped": dropped is not None}, now))
        if event_emission is not None:
            out[-1].payload["link_previous_event"] = True  # the sink fills in the id of the event just emitted
        self._reset()
        return out

    def _event(self, fr, now: float, dropped, windows) -> Emission:
        dropped, label = dropped
        zones = [(z.name or z.id, z.polygon) for z in self.zones]
        snaps = []
        if self.best is not None:
            _, frame, people, ts = self.best
            local = datetime.fromtimestamp(ts, timezone.utc).astimezone(self.tz)
            snaps.append(Snapshot(frame, zones, [Mark(b, "person", COLOURS["person"]) for b in people],
                                  [f"station {self.station.id}: visit at {local:%H:%M} outside {windows}"], people))
        local = datetime.fromtimestamp(now, timezone.utc).astimezone(self.tz)
        snaps.append(Snapshot(fr.frame, zones, [Mark(dropped, f"left behind: {label}", COLOURS["unknown"])],
                              [f"station {self.station.id}: left behind, {local:%H:%M}"], []))
        payload = {"station": self.station.id, "zone": self.drop_zones[0].id if self.drop_zones else None,
                   "camera": self.camera, "object": label, "state": "raised", "window": windows,
                   "duration_s": round(max(0.0, (self.last_person or now) - (self.visit_start or now)), 1),
                   "episode": self.visit_id}
        return Emission("waste.off_hours_drop", self.camera, {k: v for k, v in payload.items() if v is not None},
                        now, snaps)

    def health(self) -> dict[str, Any]:
        return dict(self.stats, state=self.state)
