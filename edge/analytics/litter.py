"""`waste.litter`: something new left on keep-clear ground (bags beside the bins) for >= N minutes.

"New" means different from the installer's clear reference (change detector; bags have no COCO class) or a
detected stationary object that is neither a person nor a vehicle (suitcase, chair, backpack...). It is raised
only while nobody is in the zone: a resident sorting waste next to the bins for ten minutes is not litter.
Cleared when the ground has been clear again for the zone's `clear_s`.
"""
from __future__ import annotations

from typing import Any

from edge.events import uuid7

from .base import PEOPLE, VEHICLES, Emission, people_boxes, still_since
from .evidence import COLOURS, Mark, Snapshot
from .fire_lane import FrameView, fmt_duration
from .zones import ZoneShape, covered_fraction, union_box


class LitterAnalytic:
    def __init__(self, zone, camera: str, station=None, masks=()):
        self.zone = zone
        self.camera = camera
        self.station = station
        self.masks = [list(m) for m in masks]
        self.dwell_s = float(station.litter_dwell_s) if station is not None else float(zone.dwell_s)
        self._shape: ZoneShape | None = None
        self.stats = {"frames": 0, "raised": 0, "cleared": 0, "waited_for_person": 0}
        self._reset()

    def _reset(self) -> None:
        self.state = "idle"  # idle | pending | raised
        self.since: float | None = None
        self.free_since: float | None = None
        self.box = None
        self.label: str | None = None
        self.episode: str | None = None

    def shape(self, w: int, h: int) -> ZoneShape:
        if self._shape is None or (self._shape.width, self._shape.height) != (w, h):
            self._shape = ZoneShape(self.zone.polygon, w, h, self.masks)
        return self._shape

    def _objects(self, fr, view: FrameView) -> list[tuple[str, Any, float]]:
        shape = self.shape(fr.width, fr.height)
        found = []
        for t in fr.tracks:
            if t.label in PEOPLE or t.label in VEHICLES or not t.stationary:
                continue
            if shape.footprint_inside(t.box, self.zone.min_overlap):
                found.append((t.label, tuple(t.box), still_since(t)))
        if view.change is not None and view.detector is not None:
            exclude = [t.box for t in fr.tracks if t.label in PEOPLE or t.label in VEHICLES] + \
                      [d.box for d in fr.detections if d.label in PEOPLE or d.label in VEHICLES]
            zc = view.detector.zone(view.change, shape.mask, exclude, min_fraction=self.zone.change_min_fraction)
            if zc.present:
                found.append(("unknown", zc.box, zc.since))
        return found

    def people_in_zone(self, fr) -> list:
        shape = self.shape(fr.width, fr.height)
        boxes = people_boxes(fr)
        return [b for b in boxes if shape.footprint_inside(b, 0.3)]

    def process(self, fr, view: FrameView) -> list[Emission]:
        self.stats["frames"] += 1
        now = float(fr.ts)
        objects = self._objects(fr, view)
        people = self.people_in_zone(fr)
        out: list[Emission] = []
        if objects:
            self.free_since = None
            labelled = [o for o in objects if o[0] != "unknown"]
            self.label = labelled[0][0] if labelled else "unknown"
            self.box = union_box(o[1] for o in objects)
            start = min(o[2] for o in objects)
            if self.state == "idle":
                self.state, self.since, self.episode = "pending", start, uuid7(int(now * 1000))
            elif self.state == "pending":
                self.since = start  # dwell of what is there now (a bag taken away and another left restarts)
            if self.state == "pending" and now - self.since >= self.dwell_s:
                if people:
                    self.stats["waited_for_person"] += 1
                else:
                    self.state = "raised"
                    self.stats["raised"] += 1
                    out.append(self._emission("raised", fr, now, now - self.since, people))
            return out
        if self.state == "idle":
            return out
        hidden = self.box is not None and any(covered_fraction(self.box, p) >= 0.2 for p in people)
        if hidden or (view.change is not None and view.change.uncertain):
            self.free_since = None
            return out
        if self.free_since is None:
            self.free_since = now
        if now - self.free_since >= self.zone.clear_s:
            if self.state == "raised":
                self.stats["cleared"] += 1
                out.append(self._emission("cleared", fr, now, self.free_since - self.since, people))
            self._reset()
        return out

    def _emission(self, state: str, fr, now: float, duration: float, people) -> Emission:
        z = self.zone
        payload = {"station": self.station.id if self.station is not None else z.station, "zone": z.id,
                   "camera": self.camera, "object": self.label, "duration_s": round(max(0.0, duration), 1),
                   "state": state, "episode": self.episode}
        marks = [Mark(self.box, f"{self.label} {fmt_duration(duration)}",
                      COLOURS["unknown"] if state == "raised" else (0, 200, 0))] if self.box else []
        caption = f"litter at {z.id}: {'left' if state == 'raised' else 'cleared'} ({fmt_duration(duration)})"
        all_people = people_boxes(fr)
        snap = Snapshot(fr.frame, [(z.name or z.id, z.polygon)], marks, [caption], all_people)
        return Emission("waste.litter", self.camera, {k: v for k, v in payload.items() if v is not None}, now, [snap])

    def health(self) -> dict[str, Any]:
        return dict(self.stats, state=self.state)
