"""The hand-off from cameras (capture → motion gate → detector → tracker) to the analytics.

drivers/cameras publishes one FrameResult per processed frame to the FrameHub (ctx.services["vision"]);
analytics in edge/analytics subscribe per camera. Frames are passed by reference, never queued without bound:
a slow listener only ever sees the newest frame.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Protocol

log = logging.getLogger("edge.vision")


class TrackLike(Protocol):
    """What analytics read from a tracker track (models/tracker.py provides these)."""

    id: int
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
    first_seen: float  # epoch seconds (clock time)
    last_seen: float
    stationary: bool
    stationary_s: float  # how long it has been stationary (0 when moving)


@dataclasses.dataclass
class FrameResult:
    camera: str
    ts: float  # epoch seconds from the injected clock
    frame: Any  # BGR numpy array at detect resolution
    detections: list  # models.runtime.Detection (pixels of `frame`)
    tracks: list  # TrackLike
    motion: float = 0.0  # fraction of pixels that changed
    detected: bool = True  # False when the motion gate skipped the detector on this frame

    @property
    def width(self) -> int:
        return int(self.frame.shape[1])

    @property
    def height(self) -> int:
        return int(self.frame.shape[0])


Listener = Callable[[FrameResult], None]


class FrameHub:
    def __init__(self) -> None:
        self._listeners: list[tuple[str | None, Listener]] = []
        self._latest: dict[str, FrameResult] = {}
        self.errors = 0

    def add_listener(self, callback: Listener, camera: str | None = None) -> None:
        self._listeners.append((camera, callback))

    def remove_listener(self, callback: Listener) -> None:
        self._listeners = [(c, cb) for c, cb in self._listeners if cb is not callback]

    def publish(self, result: FrameResult) -> None:
        self._latest[result.camera] = result
        for camera, cb in list(self._listeners):
            if camera is None or camera == result.camera:
                try:
                    cb(result)
                except Exception:  # one broken analytic must not stop the camera or the others
                    self.errors += 1
                    log.exception("frame listener failed", extra={"camera": result.camera})

    def latest(self, camera: str) -> FrameResult | None:
        return self._latest.get(camera)

    def cameras(self) -> list[str]:
        return sorted(self._latest)
