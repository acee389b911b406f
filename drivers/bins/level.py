"""From distance readings to bin events: calibration, median filter, reporting, full hysteresis, fire alarm.

Pure logic (no I/O, time passed in) so it is tested directly and shared by the Modbus and UART drivers.
`update()` returns the events to emit as (kind, payload, severity-or-None) tuples.
"""
from __future__ import annotations

import collections
import statistics
from typing import Any, Iterable

from edge.config.devices import BinCalibration

Emit = tuple[str, dict[str, Any], str | None]

#: temperatures are median-filtered over this many readings before the absolute check (one bad read is no fire)
TEMP_MEDIAN = 3
#: the rate of rise needs at least this much history (seconds) and this many readings
MIN_RATE_SPAN_S = 30.0
MIN_RATE_SAMPLES = 3


def fill_pct(cal: BinCalibration, distance_mm: float) -> float:
    """0 % at empty_mm, 100 % at full_mm, clamped (a reading past full is still 100 %)."""
    pct = (cal.empty_mm - distance_mm) / (cal.empty_mm - cal.full_mm) * 100.0
    return round(min(100.0, max(0.0, pct)), 1)


def slope_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t_seconds, value) in value per minute."""
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    den = sum((t - mt) ** 2 for t, _ in samples)
    if den <= 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in samples) / den * 60.0


class BinLevelLogic:
    def __init__(self, cal: BinCalibration, sensor: str):
        self.cal = cal
        self.sensor = sensor
        self._distances: collections.deque[int] = collections.deque(maxlen=cal.median_window)
        self._temps: collections.deque[float] = collections.deque(maxlen=TEMP_MEDIAN)
        self._temp_hist: collections.deque[tuple[float, float]] = collections.deque()
        self.last_report_at: float | None = None
        self.last_reported_pct: float | None = None
        self.full = False
        self.temp_alarm_absolute = False
        self.temp_alarm_rate = False
        self.fill: float | None = None
        self.distance_mm: int | None = None
        self.temperature_c: float | None = None
        self.rise_c_per_min: float | None = None

    def _base(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bin": self.cal.bin}
        if self.cal.station:
            d["station"] = self.cal.station
        return d

    def reset_filters(self) -> None:
        """Drop history after an outage: stale echoes must not be mixed with fresh ones."""
        self._distances.clear()
        self._temps.clear()
        self._temp_hist.clear()

    def update(self, now: float, distances: Iterable[int], temperature_c: float | None = None,
               tilt_deg: float | None = None) -> list[Emit]:
        """Add the valid echoes received since the last call (one per Modbus poll, many per UART period)
        and evaluate once."""
        out: list[Emit] = []
        if temperature_c is not None:
            out += self._update_temperature(now, temperature_c)
        fresh = [int(d) for d in distances]
        if not fresh:
            return out
        self._distances.extend(fresh)
        self.distance_mm = int(statistics.median_low(self._distances))
        self.fill = fill_pct(self.cal, self.distance_mm)
        due = (self.last_report_at is None or self.last_reported_pct is None
               or abs(self.fill - self.last_reported_pct) >= self.cal.report_change_pct
               or now - self.last_report_at >= self.cal.report_every_s)
        if due:
            payload = self._base() | {"fill_pct": self.fill, "distance_mm": self.distance_mm, "sensor": self.sensor}
            if self.temperature_c is not None:
                payload["temperature_c"] = self.temperature_c
            if tilt_deg is not None:
                payload["tilt_deg"] = round(tilt_deg, 1)
            out.append(("bin.level", payload, None))
            self.last_report_at = now
            self.last_reported_pct = self.fill
        if not self.full and self.fill >= self.cal.full_raise_pct:
            self.full = True
            out.append(("bin.full", self._base() | {"fill_pct": self.fill, "state": "raised",
                                                    "threshold_pct": self.cal.full_raise_pct}, None))
        elif self.full and self.fill < self.cal.full_clear_pct:
            self.full = False
            out.append(("bin.full", self._base() | {"fill_pct": self.fill, "state": "cleared",
                                                    "threshold_pct": self.cal.full_clear_pct}, "info"))
        return out

    def _update_temperature(self, now: float, temperature_c: float) -> list[Emit]:
        cal = self.cal
        self._temps.append(float(temperature_c))
        self.temperature_c = round(statistics.median(self._temps), 1)
        hist = self._temp_hist
        hist.append((now, self.temperature_c))  # the filtered value: one garbage reading is no slope either
        while hist and now - hist[0][0] > cal.temperature_rate_window_s:
            hist.popleft()
        span = hist[-1][0] - hist[0][0] if hist else 0.0
        if len(hist) >= MIN_RATE_SAMPLES and span >= min(MIN_RATE_SPAN_S, cal.temperature_rate_window_s):
            self.rise_c_per_min = round(slope_per_min(list(hist)), 2)
        else:
            self.rise_c_per_min = None
        out: list[Emit] = []
        base = self._base() | {"temperature_c": self.temperature_c}
        if self.rise_c_per_min is not None:
            base["rise_c_per_min"] = self.rise_c_per_min
        if not self.temp_alarm_absolute and self.temperature_c >= cal.temperature_alarm_c:
            self.temp_alarm_absolute = True
            out.append(("bin.temperature", base | {"trigger": "absolute", "threshold": cal.temperature_alarm_c},
                        None))
        rising = self.rise_c_per_min is not None and self.rise_c_per_min >= cal.temperature_rise_c_per_min
        if not self.temp_alarm_rate and rising:
            self.temp_alarm_rate = True
            out.append(("bin.temperature", base | {"trigger": "rate_of_rise",
                                                   "threshold": cal.temperature_rise_c_per_min}, None))
        if (self.temp_alarm_absolute or self.temp_alarm_rate) \
                and self.temperature_c < cal.temperature_alarm_c - cal.temperature_clear_margin_c \
                and (self.rise_c_per_min is None or self.rise_c_per_min < cal.temperature_rise_c_per_min / 2):
            self.temp_alarm_absolute = self.temp_alarm_rate = False
            out.append(("bin.temperature", base | {"trigger": "cleared", "threshold": cal.temperature_alarm_c},
                        "info"))
        return out

    def snapshot(self) -> dict[str, Any]:
        return {"fill_pct": self.fill, "distance_mm": self.distance_mm, "temperature_c": self.temperature_c,
                "rise_c_per_min": self.rise_c_per_min, "full": self.full,
                "temperature_alarm": self.temp_alarm_absolute or self.temp_alarm_rate}
