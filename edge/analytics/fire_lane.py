"""Fire-passage blockage: one `fire_lane.blocked` per episode, updates at most every N minutes, then cleared.

An episode is kept per zone, not per track, because tracks are not objects: a passer-by hiding a parked car
can end its track and start a new one, the detector can lose a bicycle at dusk, and the motion gate skips
frames on which nothing moved. What keeps an episode alive, in order:

1. a *blocker*: a track of a configured class (car, truck, bus, motorcycle, bicycle), standing in the zone
   (bottom-centre of its box inside, or >= min_overlap of its area), stationary; a new track where the
   episode's object stood (IoU >= 0.5) inherits the episode's start, so dwell survives a re-identification;
   clutter found by the change detector (no class: boxes, furniture) is a blocker labelled `unknown`;
2. *occlusion*: a person (or passing vehicle) covers >= 20 % of where the object stood;
3. *appearance*: the place where the object stood still looks as it did when the object was last confirmed
   (block NCC, so lighting changes do not matter) -- the detector may have lost it, the object has not left.

The zone is free only when none of these hold; it must stay free for `clear_s` before the episode ends.
People never block (they are not in `classes`, and config refuses 'person'); moving traffic never becomes
stationary for `dwell_s`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from edge.events import uuid7

from .base import PEOPLE, VEHICLES, Emission, box_list, people_boxes, still_since, visible
from .clutter import ChangeDetector, ChangeFrame, Patch, patch_matches, take_patch
from .evidence import COLOURS, Mark, Snapshot
from .zones import ZoneShape, box_iou, covered_fraction

REACQUIRE_IOU = 0.5
OCCLUSION_COVER = 0.2


@dataclasses.dataclass
class Blocker:
    label: str
    score: float | None
    box: tuple[float, float, float, float]
    since: float
    track_id: int | None


@dataclasses.dataclass
class FrameView:
    """Per-frame inputs shared by the analytics of one camera (computed once)."""

    grey: Any  # small grey frame (clutter.to_small_grey), for appearance checks
    change: ChangeFrame | None  # None without a clear reference
    detector: ChangeDetector | None


def fmt_duration(seconds: float) -> str:
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class FireLaneAnalytic:
    def __init__(self, zone, camera: str, masks=()):
        self.zone = zone
        self.camera = camera
        self.masks = [list(m) for m in masks]
        self.classes = set(zone.classes) - PEOPLE
        self._shape: ZoneShape | None = None
        self.stats = {"frames": 0, "episodes": 0, "raised": 0, "updates": 0, "cleared": 0, "held_occluded": 0,
                      "held_appearance": 0, "abandoned_pending": 0}
        self._reset()

    def _reset(self) -> None:
        self.state = "idle"  # idle | pending | blocked
        self.since: float | None = None
        self.free_since: float | None = None
        self.box: tuple[float, float, float, float] | None = None
        self.label: str | None = None
        self.score: float | None = None
        self.track_id: int | None = None
        self.patch: Patch | None = None
        self.episode: str | None = None
        self.last_emit: float | None = None
        self.blockers: list[Blocker] = []

    def shape(self, width: int, height: int) -> ZoneShape:
        if self._shape is None or (self._shape.width, self._shape.height) != (width, height):
            self._shape = ZoneShape(self.zone.polygon, width, height, self.masks)
        return self._shape

    # ---- per frame -------------------------------------------------------------------------------------------
    def find_blockers(self, fr, view: FrameView) -> list[Blocker]:
        shape = self.shape(fr.width, fr.height)
        out: list[Blocker] = []
        for t in fr.tracks:
            if t.label not in self.classes or not shape.footprint_inside(t.box, self.zone.min_overlap):
                continue
            same_place = self.box is not None and box_iou(t.box, self.box) >= REACQUIRE_IOU
            if t.stationary:
                since = still_since(t)
                if same_place and self.since is not None:
                    since = min(since, self.since)
                out.append(Blocker(t.label, float(t.score), tuple(t.box), since, int(t.id)))
            elif same_place and self.since is not None:
                # a fresh track of the same object (after an occlusion) is not "stationary" yet
                out.append(Blocker(t.label, float(t.score), tuple(t.box), self.since, int(t.id)))
        if self.zone.clutter_detection and view.change is not None and view.detector is not None:
            # people and vehicles are the detector's business; a chair or a suitcase is clutter like any other
            exclude = [t.box for t in fr.tracks if t.label in PEOPLE or t.label in VEHICLES or not t.stationary] + \
                      [d.box for d in fr.detections if d.label in PEOPLE or d.label in VEHICLES]
            zc = view.detector.zone(view.change, shape.mask, exclude, min_fraction=self.zone.change_min_fraction)
            if zc.present and zc.box is not None and zc.since is not None:
                since = zc.since
                if self.label == "unknown" and self.since is not None and self.box is not None \
                        and box_iou(zc.box, self.box) > 0:
                    since = min(since, self.since)
                out.append(Blocker("unknown", None, zc.box, since, None))
        return out

    def _held(self, fr, view: FrameView) -> bool:
        if self.box is None:
            return False
        # who could be hiding the object right now: people, and anything moving in front of it
        covers = people_boxes(fr) + [t.box for t in fr.tracks if t.label not in PEOPLE and not t.stationary
                                     and visible(t, fr.ts)]
        if any(covered_fraction(self.box, b) >= OCCLUSION_COVER for b in covers):
            self.stats["held_occluded"] += 1
            return True
        if self.label == "unknown" and view.change is not None and view.change.uncertain:
            return True  # the whole picture changed (lights, camera re-exposing): cannot tell, hold
        if self.patch is not None and view.grey is not None and patch_matches(self.patch, view.grey):
            self.stats["held_appearance"] += 1
            return True
        return False

    def process(self, fr, view: FrameView) -> list[Emission]:
        self.stats["frames"] += 1
        now = float(fr.ts)
        blockers = self.find_blockers(fr, view)
        self.blockers = blockers
        out: list[Emission] = []
        if blockers:
            # a detected class says more than "unknown"; then the one standing longest
            primary = min(blockers, key=lambda b: (b.label == "unknown", b.since))
            self.free_since = None
            if self.state == "idle":
                self.state, self.episode, self.since = "pending", uuid7(int(now * 1000)), primary.since
                self.stats["episodes"] += 1
            self.box, self.label, self.score, self.track_id = primary.box, primary.label, primary.score, \
                primary.track_id
            self._refresh_patch(fr, view, primary)
            if self.state == "pending":
                self.since = primary.since
                if now - primary.since >= self.zone.dwell_s:
                    self.state, self.last_emit = "blocked", now
                    self.stats["raised"] += 1
                    out.append(self._emission("fire_lane.blocked", "blocked", fr, now, now - self.since))
            elif self.state == "blocked" and now - (self.last_emit or now) >= self.zone.update_every_s:
                self.last_emit = now
                self.stats["updates"] += 1
                out.append(self._emission("fire_lane.blocked", "update", fr, now, now - self.since))
            return out
        if self.state == "idle":
            return out
        if self._held(fr, view):
            self.free_since = None
            return out
        if self.free_since is None:
            self.free_since = now
        if now - self.free_since >= self.zone.clear_s:
            if self.state == "blocked":
                self.stats["cleared"] += 1
                out.append(self._emission("fire_lane.cleared", "cleared", fr, now, self.free_since - self.since))
            else:
                self.stats["abandoned_pending"] += 1
            self._reset()
        return out

    def _refresh_patch(self, fr, view: FrameView, b: Blocker) -> None:
        if view.grey is None or not getattr(fr, "detected", True):
            return
        people = people_boxes(fr)
        if any(covered_fraction(b.box, p) > 0.05 for p in people):
            return  # never learn the passer-by as the object's appearance
        self.patch = take_patch(view.grey, b.box, fr.width, fr.height)

    def _emission(self, kind: str, state: str, fr, now: float, duration: float) -> Emission:
        z = self.zone
        payload = {"zone": z.id, "camera": self.camera, "object": self.label or "unknown", "track_id": self.track_id,
                   "score": round(self.score, 3) if self.score is not None else None,
                   "box": box_list(self.box) if self.box else None, "duration_s": round(max(0.0, duration), 1),
                   "state": state, "episode": self.episode}
        what = {"blocked": "BLOCKED", "update": "still blocked", "cleared": "cleared"}[state]
        marks = []
        if self.box is not None:
            colour = COLOURS["unknown"] if self.label == "unknown" else COLOURS["object"]
            if state == "cleared":
                colour = (0, 200, 0)
            marks.append(Mark(self.box, f"{self.label} {fmt_duration(duration)}", colour))
        for b in self.blockers if state != "cleared" else []:
            if b.box != self.box:
                marks.append(Mark(b.box, f"{b.label} {fmt_duration(now - b.since)}",
                                  COLOURS["unknown"] if b.label == "unknown" else COLOURS["object"]))
        people = people_boxes(fr)
        snap = Snapshot(fr.frame, [(z.name or z.id, z.polygon)], marks,
                        [f"fire lane {z.id}: {what} by {self.label} for {fmt_duration(duration)}"], people)
        return Emission(kind, self.camera, {k: v for k, v in payload.items() if v is not None}, now, [snap])

    def status(self) -> dict[str, Any]:
        return {"zone": self.zone.id, "state": self.state, "object": self.label, "since": self.since,
                "free_since": self.free_since, "episode": self.episode}

    def health(self) -> dict[str, Any]:
        return dict(self.stats, state=self.state)
