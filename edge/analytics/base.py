"""What every analytic shares: the Emission it returns and small helpers to read tracks.

Analytics are pure and synchronous: `process(frame_result, ...) -> list[Emission]`, driven by the frame
timestamps (the injected clock's time at capture). The component in `edge/analytics/component.py` turns
emissions into events + evidence; `edge eval` and the tests call the same objects directly.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from .evidence import Snapshot

PEOPLE = frozenset({"person"})
VEHICLES = frozenset({"car", "truck", "bus", "motorcycle", "bicycle", "train"})


@dataclasses.dataclass
class Emission:
    kind: str
    source: str
    payload: dict[str, Any]
    ts: float  # epoch seconds (frame time)
    snapshots: list[Snapshot] = dataclasses.field(default_factory=list)
    severity: str | None = None


def still_since(track: Any) -> float:
    """When a stationary track stopped moving (models.tracker.Track has it; else derive it)."""
    s = getattr(track, "still_since", None)
    if s is not None and getattr(track, "stationary", False):
        return float(s)
    return float(track.last_seen) - float(getattr(track, "stationary_s", 0.0) or 0.0)


def visible(track: Any, ts: float) -> bool:
    """Seen in the latest detector run (models.tracker keeps missed tracks alive for a while)."""
    v = getattr(track, "visible", None)
    return bool(v) if v is not None else float(track.last_seen) >= float(ts) - 1e-6


def people_boxes(fr) -> list:
    """Where people are now: visible person tracks and this frame's person detections."""
    boxes = [t.box for t in fr.tracks if t.label in PEOPLE and visible(t, fr.ts)]
    boxes += [d.box for d in fr.detections if d.label in PEOPLE]
    return boxes


def box_list(box) -> list[float]:
    return [round(float(v), 1) for v in box]
