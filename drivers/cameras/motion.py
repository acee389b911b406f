"""Motion gating: run the detector only when something moved, plus a periodic re-check.

Motion is measured on a 160-pixel-wide blurred grey copy of the frame against a running-average background
(what Frigate does too; about 0.3 ms per frame). Two guards keep lighting out of it:

* Global brightness/contrast changes (clouds, auto-exposure, a lamp dimming) are removed by fitting
  `frame ~ gain * background + offset` over the unsaturated pixels, twice (the second fit without the pixels
  the first one flagged, so a moving object does not bend the fit), and comparing against that prediction,
  clipped to 0..255 so saturated highlights are not "motion" either.
* A change over most of the frame at once (lights switched on, IR cut filter, the camera re-exposing after a
  reconnect) is not treated as motion: the background is relearned and the change is counted.

The gate then runs the detector on frames with motion, on the first frame (objects already there at boot),
and at least every `recheck_s` (things that never move: a car parked before the gateway started).
"""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

MOTION_WIDTH = 160  # pixels; enough for a person at 30 m on a 640-wide sub-stream, cheap enough to ignore
BACKGROUND_TAU_S = 2.0  # time constant of the background average: a parked car is absorbed within ~5 s
_KERNEL = np.ones((3, 3), np.uint8)


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares y = a*x + c, limited to plausible lighting gains."""
    if x.size < 16:
        return 1.0, 0.0
    mx, my = float(x.mean()), float(y.mean())
    var = float(((x - mx) ** 2).mean())
    if var < 1.0:  # flat image: only an offset can be estimated
        return 1.0, my - mx
    a = float(((x - mx) * (y - my)).mean()) / var
    a = min(4.0, max(0.25, a))
    return a, my - a * mx


class MotionDetector:
    """Fraction of the frame that changed against the background, after lighting compensation."""

    def __init__(self, pixel_threshold: int = 25, lighting_fraction: float = 0.5, width: int = MOTION_WIDTH,
                 tau_s: float = BACKGROUND_TAU_S):
        self.pixel_threshold = float(pixel_threshold)
        self.lighting_fraction = lighting_fraction
        self.width = width
        self.tau_s = tau_s
        self.background: np.ndarray | None = None
        self._last: float | None = None
        self.lighting_changes = 0
        self.last_gain = 1.0
        self.last_offset = 0.0

    def reset(self) -> None:
        self.background = None
        self._last = None

    def _grey(self, bgr: np.ndarray) -> np.ndarray:
        h, w = bgr.shape[:2]
        sh = max(8, round(h * self.width / w))
        small = cv2.resize(bgr, (self.width, sh), interpolation=cv2.INTER_AREA)
        g = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(g, (5, 5), 0).astype(np.float32)

    def measure(self, bgr: np.ndarray, now: float) -> tuple[float, bool]:
        """(motion fraction 0..1, lighting change relearned). The first frame only seeds the background."""
        g = self._grey(bgr)
        bg = self.background
        if bg is None or bg.shape != g.shape:
            self.background, self._last = g, now
            return 0.0, False
        valid = (g > 8) & (g < 247) & (bg > 8) & (bg < 247)
        a, c = _fit(bg[valid], g[valid])
        resid = np.abs(g - np.clip(bg * a + c, 0, 255))
        inliers = valid & (resid < self.pixel_threshold)
        if inliers.sum() > 0.2 * valid.sum():
            a, c = _fit(bg[inliers], g[inliers])
            resid = np.abs(g - np.clip(bg * a + c, 0, 255))
        self.last_gain, self.last_offset = a, c
        # Near black or white the colour channels clip one by one and the blur smears the clipping edge, so
        # the grey-level prediction is least certain there: those pixels need twice the change to count.
        pred = bg * a + c
        limit = np.where((pred > 230) | (pred < 20), 2 * self.pixel_threshold, self.pixel_threshold)
        mask = (resid > limit).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)  # drop single-pixel codec noise
        fraction = float(cv2.countNonZero(mask)) / mask.size
        dt = max(0.0, now - (self._last if self._last is not None else now))
        self._last = now
        if fraction >= self.lighting_fraction:
            self.lighting_changes += 1
            self.background = g
            return fraction, True
        alpha = 1.0 - math.exp(-dt / self.tau_s) if dt > 0 else 0.05
        cv2.accumulateWeighted(g, bg, alpha)
        return fraction, False


@dataclasses.dataclass(frozen=True, slots=True)
class GateDecision:
    run: bool  # run the detector on this frame
    reason: str  # first | motion | recheck | disabled | still | lighting
    motion: float  # fraction of the frame that changed
    moved: bool  # motion at or above the threshold (for the motion ratio)


class MotionGate:
    """Decides per frame whether the detector runs. `now` is clock time in seconds (monotonic)."""

    def __init__(self, *, enabled: bool = True, threshold: float = 0.004, recheck_s: float = 30.0,
                 pixel_threshold: int = 25, lighting_fraction: float = 0.5):
        self.enabled = enabled
        self.threshold = threshold
        self.recheck_s = recheck_s
        self.detector = MotionDetector(pixel_threshold, lighting_fraction)
        self.last_run: float | None = None
        self.counts = {"first": 0, "motion": 0, "recheck": 0, "disabled": 0, "still": 0, "lighting": 0}

    @classmethod
    def from_config(cls, cfg) -> "MotionGate":
        return cls(enabled=cfg.enabled, threshold=cfg.threshold, recheck_s=cfg.recheck_s,
                   pixel_threshold=cfg.pixel_threshold, lighting_fraction=cfg.lighting_fraction)

    def reset(self) -> None:
        """After a reconnect: new background, and detect on the first frame again."""
        self.detector.reset()
        self.last_run = None

    def decide(self, bgr: np.ndarray, now: float) -> GateDecision:
        motion, lighting = self.detector.measure(bgr, now)
        moved = motion >= self.threshold and not lighting
        if not self.enabled:
            reason = "disabled"
        elif self.last_run is None:
            reason = "first"
        elif moved:
            reason = "motion"
        elif now - self.last_run >= self.recheck_s:
            reason = "recheck"
        else:
            reason = "lighting" if lighting else "still"
        run = reason in ("first", "motion", "recheck", "disabled")
        if run:
            self.last_run = now
        self.counts[reason] += 1
        return GateDecision(run, reason, motion, moved)
