"""IoU + centroid multi-object tracker with stable ids, stationary detection and occlusion tolerance.

Pure logic: the caller passes detections and the frame's timestamp (seconds, from the injected clock), so
minutes of dwell time are tested with synthetic boxes in milliseconds.

Why hand-written and not SORT/norfair: a camera here sees a handful of objects at 1-5 detector runs per
second; what matters is the behaviour around parked objects (stationary flag and duration counted from the
first frame, survival through a passer-by's occlusion), which greedy IoU matching plus a few explicit rules
expresses in ~200 lines that can be read and tested, with no Kalman tuning and no extra dependency.

Matching, per update:
1. detections of one label group (car/truck/bus...) overlapping by >= merge_iou are one object: the
   detector often reports the same pickup as car 0.75 and truck 0.57;
2. every live track is predicted forward by its velocity (zero for stationary ones);
3. track/detection pairs of compatible labels score by IoU (>= iou_threshold), else by centroid distance
   relative to the box size (<= centroid_gate, similar size): IoU matches always win over centroid ones;
4. greedy assignment, best pair first; unmatched tracks are kept for max_missed_s without a new id.

Stationary: a track is stationary once its centre stayed within `stationary_tolerance` x box size of the
mean centre of its still segment for `stationary_window_s`; stationary_s then counts from the start of that
segment -- for an object that never moved, from its first frame.  A box that merely shrinks inside the
segment's box (a passer-by covering half the car) does not count as movement.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .nms import box_iou

import numpy as np

Box = tuple[float, float, float, float]

DEFAULT_LABEL_GROUPS: tuple[tuple[str, ...], ...] = (
    ("car", "truck", "bus"),
    ("bicycle", "motorcycle"),
)


@dataclass
class Track:
    id: int
    label: str
    score: float
    box: Box
    first_seen: float
    last_seen: float
    hits: int = 1
    visible: bool = True          # matched by a detection in the latest update
    stationary: bool = False
    stationary_s: float = 0.0     # how long it has been stationary (0 while moving)
    still_since: float = 0.0      # start of the current still segment
    velocity: tuple[float, float] = (0.0, 0.0)   # centre px/s, smoothed
    # still-segment statistics (mean centre and mean box of the observations since still_since)
    _seg_n: int = field(default=1, repr=False)
    _seg_center: tuple[float, float] = field(default=(0.0, 0.0), repr=False)
    _seg_box: Box = field(default=(0.0, 0.0, 0.0, 0.0), repr=False)
    _label_votes: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def center(self) -> tuple[float, float]:
        return _center(self.box)

    @property
    def missed_s(self) -> float:
        """Seconds since the track was last matched (0 while visible); set at each update."""
        return self._missed_s if not self.visible else 0.0

    _missed_s: float = field(default=0.0, repr=False)

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "score": round(self.score, 3),
                "box": [round(v, 1) for v in self.box], "first_seen": self.first_seen, "last_seen": self.last_seen,
                "visible": self.visible, "stationary": self.stationary, "stationary_s": round(self.stationary_s, 3)}


def _center(b: Sequence[float]) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


def _size(b: Sequence[float]) -> float:
    """Geometric mean of width and height: one length for 'a fraction of the box size'."""
    return math.sqrt(max(b[2] - b[0], 1.0) * max(b[3] - b[1], 1.0))


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    return float(box_iou(np.asarray(a, np.float64), np.asarray([b], np.float64))[0])


def _inside_fraction(inner: Sequence[float], outer: Sequence[float]) -> float:
    """Share of `inner`'s area that lies inside `outer`."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = max(inner[2] - inner[0], 0) * max(inner[3] - inner[1], 0)
    return max(w, 0) * max(h, 0) / area if area > 0 else 0.0


@dataclass(frozen=True)
class _Det:
    label: str
    score: float
    box: Box


def _as_det(d: Any) -> _Det:
    if isinstance(d, dict):
        label, score, box = d["label"], d["score"], d["box"]
    else:
        label, score, box = d.label, d.score, d.box
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        raise ValueError(f"bad detection box {box!r}")
    return _Det(str(label), float(score), (x1, y1, x2, y2))


class Tracker:
    def __init__(self, *, iou_threshold: float = 0.3, centroid_gate: float = 0.75, max_missed_s: float = 2.0,
                 stationary_window_s: float = 3.0, stationary_tolerance: float = 0.15, merge_iou: float = 0.7,
                 min_hits: int = 1, label_groups: Iterable[Iterable[str]] = DEFAULT_LABEL_GROUPS,
                 max_velocity_s: float = 1.0):
        if not 0 < iou_threshold <= 1 or centroid_gate < 0 or max_missed_s < 0 or stationary_window_s < 0:
            raise ValueError("tracker: iou_threshold in (0,1], centroid_gate/max_missed_s/window >= 0")
        self.iou_threshold = iou_threshold
        self.centroid_gate = centroid_gate
        self.max_missed_s = max_missed_s
        self.stationary_window_s = stationary_window_s
        self.stationary_tolerance = stationary_tolerance
        self.merge_iou = merge_iou
        self.min_hits = min_hits
        self.max_velocity_s = max_velocity_s   # predict at most this far ahead of the last sighting
        self._group = {label: i for i, g in enumerate(label_groups) for label in g}
        self._tracks: list[Track] = []
        self._next_id = 1
        self._last_ts: float | None = None
        #: tracks that ended (missed for longer than max_missed_s) in the latest update
        self.ended: list[Track] = []
        self.stats = {"updates": 0, "tracks_created": 0, "tracks_ended": 0, "merged_detections": 0,
                      "rejected_detections": 0}

    # ---- public ----------------------------------------------------------------------------------------

    @property
    def tracks(self) -> list[Track]:
        return [t for t in self._tracks if t.hits >= self.min_hits]

    def update(self, detections: Iterable[Any], ts: float) -> list[Track]:
        """Feed one frame's detections (objects or dicts with label, score, box); returns the live tracks
        (visible ones and ones hidden for up to max_missed_s)."""
        ts = float(ts)
        if not math.isfinite(ts) or (self._last_ts is not None and ts < self._last_ts):
            raise ValueError(f"tracker: timestamp {ts} goes backwards (last {self._last_ts})")
        self._last_ts = ts
        self.stats["updates"] += 1
        dets = []
        for d in detections:
            try:
                dets.append(_as_det(d))
            except (KeyError, AttributeError, TypeError, ValueError):
                self.stats["rejected_detections"] += 1
        dets = self._merge_duplicates(dets)

        pairs = []
        for ti, t in enumerate(self._tracks):
            pred = self._predict(t, ts)
            for di, d in enumerate(dets):
                a = self._affinity(t, pred, d)
                if a > 0:
                    pairs.append((a, ti, di))
        pairs.sort(key=lambda p: -p[0])
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            self._observe(self._tracks[ti], dets[di], ts)

        self.ended = []
        alive = []
        for ti, t in enumerate(self._tracks):
            if ti not in used_t:
                t.visible = False
                t._missed_s = ts - t.last_seen
                if t._missed_s > self.max_missed_s:
                    self.ended.append(t)
                    continue
                if t.stationary:   # still there as far as we know: keep counting
                    t.stationary_s = ts - t.still_since
            alive.append(t)
        self.stats["tracks_ended"] += len(self.ended)
        for di, d in enumerate(dets):
            if di not in used_d:
                alive.append(self._new_track(d, ts))
        self._tracks = alive
        return self.tracks

    def health(self) -> dict:
        return dict(self.stats, live_tracks=len(self._tracks))

    # ---- internals ---------------------------------------------------------------------------------------

    def _compatible(self, a: str, b: str) -> bool:
        return a == b or (a in self._group and self._group.get(a) == self._group.get(b))

    def _merge_duplicates(self, dets: list[_Det]) -> list[_Det]:
        dets = sorted(dets, key=lambda d: -d.score)
        kept: list[_Det] = []
        for d in dets:
            if any(self._compatible(k.label, d.label) and _iou(k.box, d.box) >= self.merge_iou for k in kept):
                self.stats["merged_detections"] += 1
                continue
            kept.append(d)
        return kept

    def _predict(self, t: Track, ts: float) -> Box:
        if t.stationary:
            return t.box
        dt = min(ts - t.last_seen, self.max_velocity_s)
        dx, dy = t.velocity[0] * dt, t.velocity[1] * dt
        b = t.box
        return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)

    def _affinity(self, t: Track, pred: Box, d: _Det) -> float:
        if not self._compatible(t.label, d.label):
            return 0.0
        iou = max(_iou(pred, d.box), _iou(t.box, d.box))
        if iou >= self.iou_threshold:
            return 1.0 + iou
        size_t, size_d = _size(pred), _size(d.box)
        if not 0.5 <= size_d / size_t <= 2.0:
            return 0.0
        (px, py), (dx, dy) = _center(pred), _center(d.box)
        dist = math.hypot(px - dx, py - dy) / size_t
        if dist > self.centroid_gate:
            return 0.0
        return max(1.0 - dist / self.centroid_gate, 1e-6) * 0.999   # always below any IoU match

    def _new_track(self, d: _Det, ts: float) -> Track:
        t = Track(id=self._next_id, label=d.label, score=d.score, box=d.box, first_seen=ts, last_seen=ts,
                  still_since=ts, _seg_center=_center(d.box), _seg_box=d.box, _label_votes={d.label: d.score})
        self._next_id += 1
        self.stats["tracks_created"] += 1
        self._update_stationary_flag(t, ts)
        return t

    def _observe(self, t: Track, d: _Det, ts: float) -> None:
        dt = ts - t.last_seen
        (ox, oy), (nx, ny) = t.center, _center(d.box)
        if dt > 0:
            inst = ((nx - ox) / dt, (ny - oy) / dt)
            t.velocity = (0.5 * t.velocity[0] + 0.5 * inst[0], 0.5 * t.velocity[1] + 0.5 * inst[1])
        t.box, t.score, t.last_seen, t.visible, t._missed_s = d.box, d.score, ts, True, 0.0
        t.hits += 1
        t._label_votes[d.label] = t._label_votes.get(d.label, 0.0) + d.score
        t.label = max(t._label_votes.items(), key=lambda kv: kv[1])[0]
        self._update_segment(t, d.box, ts)

    def _update_segment(self, t: Track, box: Box, ts: float) -> None:
        cx, cy = _center(box)
        mx, my = t._seg_center
        moved = math.hypot(cx - mx, cy - my) > self.stationary_tolerance * _size(t._seg_box)
        if moved and _inside_fraction(box, t._seg_box) >= 0.9 and _size(box) < _size(t._seg_box):
            # shrank inside the still box: partly hidden (passer-by), not moving; keep the segment unchanged
            self._update_stationary_flag(t, ts)
            return
        if moved:
            t.still_since, t._seg_n, t._seg_center, t._seg_box = ts, 1, (cx, cy), box
        else:
            n = t._seg_n
            t._seg_center = ((mx * n + cx) / (n + 1), (my * n + cy) / (n + 1))
            t._seg_box = tuple((a * n + b) / (n + 1) for a, b in zip(t._seg_box, box))  # type: ignore[assignment]
            t._seg_n = n + 1
        self._update_stationary_flag(t, ts)

    def _update_stationary_flag(self, t: Track, ts: float) -> None:
        still = ts - t.still_since
        t.stationary = t._seg_n >= 2 and still >= self.stationary_window_s
        t.stationary_s = still if t.stationary else 0.0
        if t.stationary:
            t.velocity = (0.0, 0.0)
