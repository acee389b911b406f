"""What a simulated bin does over time: fill curve, emptying, heat-up, and the echo noise of a real sensor.

Times are seconds on the scenario's own time base (`time_fn`, e.g. a FakeClock's monotonic, so a test's
"three hours of filling" takes as long as the test advances its clock). Keyframes are linear in between;
the last keyframe holds.
"""
from __future__ import annotations

import bisect
import random
from typing import Callable


class Curve:
    def __init__(self, start_value: float):
        self.points: list[tuple[float, float]] = [(float("-inf"), float(start_value))]

    def at(self, t: float) -> float:
        pts = self.points
        i = bisect.bisect_right([p[0] for p in pts], t) - 1
        t0, v0 = pts[i]
        if i + 1 >= len(pts):
            return v0
        t1, v1 = pts[i + 1]
        if t1 <= t0 or t0 == float("-inf"):
            return v0
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def ramp(self, t0: float, t1: float, to_value: float) -> None:
        """From whatever the value is at t0, move linearly to `to_value` at t1; forget later keyframes."""
        start = self.at(t0)
        self.points = [p for p in self.points if p[0] < t0]
        self.points.append((t0, start))
        self.points.append((max(t1, t0), float(to_value)))

    def set(self, t: float, value: float) -> None:
        """A step at t: the old value holds until t, `value` from t on (two keyframes at the same time)."""
        before = self.at(t)
        self.points = [p for p in self.points if p[0] < t]
        self.points.append((t, before))
        self.points.append((t, float(value)))


class BinScenario:
    """One bin under one sensor.

    `distance_mm(t)` is what an ideal echo reads; `echo_mm(t)` adds jitter and occasional ghost echoes
    (lid edge, a bag's side wall) that a median filter must remove.
    """

    def __init__(self, time_fn: Callable[[], float], empty_mm: int = 1200, full_mm: int = 250,
                 fill_pct: float = 0.0, temperature_c: float = 22.0, jitter_mm: int = 0,
                 ghost_rate: float = 0.0, seed: int = 1):
        self.time_fn = time_fn
        self.empty_mm = empty_mm
        self.full_mm = full_mm
        self.fill = Curve(fill_pct)
        self.temp = Curve(temperature_c)
        self.jitter_mm = jitter_mm
        self.ghost_rate = ghost_rate
        self.rng = random.Random(seed)
        self.ghosts = 0

    def now(self) -> float:
        return self.time_fn()

    # ---- scripting (times are offsets from now) ----------------------------------------------------------
    def fill_to(self, pct: float, over_s: float = 0.0) -> "BinScenario":
        t = self.now()
        self.fill.ramp(t, t + over_s, max(0.0, min(100.0, pct)))
        return self

    def distance_to(self, distance_mm: int, over_s: float = 0.0) -> "BinScenario":
        """Script by distance instead of fill (e.g. exactly 754 mm for the issue's vector)."""
        pct = (self.empty_mm - distance_mm) / (self.empty_mm - self.full_mm) * 100.0
        t = self.now()
        self.fill.ramp(t, t + over_s, pct)
        return self

    def empty(self) -> "BinScenario":
        """The collection truck came: the bin is empty from now on."""
        self.fill.set(self.now(), 0.0)
        return self

    def heat_to(self, temperature_c: float, over_s: float = 0.0) -> "BinScenario":
        t = self.now()
        self.temp.ramp(t, t + over_s, temperature_c)
        return self

    # ---- readings -------------------------------------------------------------------------------------------
    def fill_pct(self, t: float | None = None) -> float:
        return self.fill.at(self.now() if t is None else t)

    def distance_mm(self, t: float | None = None) -> int:
        pct = self.fill_pct(t)
        return int(round(self.empty_mm - pct / 100.0 * (self.empty_mm - self.full_mm)))

    def echo_mm(self, t: float | None = None) -> int:
        d = self.distance_mm(t)
        if self.ghost_rate and self.rng.random() < self.ghost_rate:
            self.ghosts += 1
            return max(30, int(d * self.rng.uniform(0.15, 0.5)))  # a near reflection: reads far too full
        if self.jitter_mm:
            d += self.rng.randint(-self.jitter_mm, self.jitter_mm)
        return max(0, d)

    def temperature_c(self, t: float | None = None) -> float:
        return round(self.temp.at(self.now() if t is None else t), 1)
