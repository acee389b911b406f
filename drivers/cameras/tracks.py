"""Published tracks: frozen copies of models.tracker.Track that satisfy edge.vision.TrackLike.

The tracker mutates its Track objects on every update (in a worker thread), so analytics get a snapshot per
frame instead of live objects. The tracker runs on monotonic time (an NTP step must not send its timestamps
backwards); first_seen/last_seen are converted to epoch seconds of the injected clock here.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class TrackView:
    id: int
    label: str
    score: float
    box: tuple[float, float, float, float]
    first_seen: float  # epoch seconds
    last_seen: float
    stationary: bool
    stationary_s: float
    visible: bool = True  # matched by a detection (or, on gated frames, by an unchanged scene) this frame

    def to_dict(self) -> dict:
        return {"id": self.id, "label": self.label, "score": round(self.score, 3),
                "box": [round(v, 1) for v in self.box], "first_seen": round(self.first_seen, 3),
                "last_seen": round(self.last_seen, 3), "stationary": self.stationary,
                "stationary_s": round(self.stationary_s, 3), "visible": self.visible}


def view(track, epoch_offset: float) -> TrackView:
    """A TrackView from any tracker track; `epoch_offset` = clock.time() - clock.monotonic()."""
    return TrackView(
        id=int(track.id), label=str(track.label), score=float(track.score),
        box=tuple(float(v) for v in track.box),  # type: ignore[arg-type]
        first_seen=float(track.first_seen) + epoch_offset, last_seen=float(track.last_seen) + epoch_offset,
        stationary=bool(track.stationary), stationary_s=float(track.stationary_s),
        visible=bool(getattr(track, "visible", True)),
    )
