"""Zones (camera polygons), schedules (drop windows) and bin stations."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal

from pydantic import Field, field_validator

from .base import Id, Strict

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def _segments_intersect(p1, p2, p3, p4) -> bool:
    def orient(a, b, c):
        v = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        return 0 if abs(v) < 1e-12 else (1 if v > 0 else -1)

    o1, o2, o3, o4 = orient(p1, p2, p3), orient(p1, p2, p4), orient(p3, p4, p1), orient(p3, p4, p2)
    return o1 != o2 and o3 != o4 and 0 not in (o1, o2, o3, o4)


def polygon_problem(points: list[tuple[float, float]]) -> str | None:
    """Return why a polygon is unusable, or None."""
    if len(points) < 3:
        return "a polygon needs at least 3 points"
    for i, (x, y) in enumerate(points):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            return f"point {i} ({x}, {y}) is outside 0..1 (coordinates are fractions of the image)"
    n = len(points)
    for i in range(n):
        for j in range(i + 1, n):
            if abs(i - j) <= 1 or (i == 0 and j == n - 1):
                continue
            if _segments_intersect(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n]):
                return f"edges {i}-{(i + 1) % n} and {j}-{(j + 1) % n} cross (self-intersecting polygon)"
    area = 0.5 * abs(sum(points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
                         for i in range(n)))
    if area < 1e-4:
        return "the polygon has (almost) no area"
    return None


class ZoneConfig(Strict):
    id: Id
    camera: Id
    type: Literal["fire_lane", "bin_station", "keep_clear_ground", "mask"]
    name: str = ""
    polygon: list[tuple[float, float]] = Field(description="[[x, y], ...] as fractions of image width/height")
    station: Id | None = Field(default=None, description="bin station this zone belongs to")
    classes: list[str] = Field(default_factory=lambda: ["car", "truck", "bus", "motorcycle", "bicycle"],
                               description="detector labels that block a fire lane")
    min_overlap: float = Field(default=0.5, gt=0, le=1, description="box area fraction inside the zone that counts")
    dwell_s: float = Field(default=120, gt=0, description="stationary this long before an alert")
    clear_s: float = Field(default=30, gt=0, description="free this long before the episode ends")
    update_every_s: float = Field(default=600, gt=0, description="at most one duration update this often")
    clutter_detection: bool = Field(default=True, description="detect unknown objects against a clear reference")
    change_min_fraction: float = Field(default=0.02, gt=0, le=1,
                                       description="share of the zone that must be covered by clutter to count")

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v):
        problem = polygon_problem([tuple(p) for p in v])
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("classes")
    @classmethod
    def _classes(cls, v: list[str]) -> list[str]:
        # people are never a blockage (never alert for people passing or standing in a lane)
        if "person" in v:
            raise ValueError("'person' cannot block a fire lane; list vehicle classes only")
        return v


def parse_window(text: str) -> tuple[int, int]:
    m = _HHMM.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a window like 07:00-09:00")
    start = int(m[1]) * 60 + int(m[2])
    end = int(m[3]) * 60 + int(m[4])
    if end > 24 * 60:
        raise ValueError(f"{text!r}: end after 24:00")
    if end <= start:
        raise ValueError(f"{text!r}: end must be after start (split windows that cross midnight)")
    return start, end


class ScheduleConfig(Strict):
    id: Id
    windows: list[str] = Field(min_length=1, description='drop windows, e.g. ["07:00-09:00", "18:00-21:00"]')
    holidays: list[date] = Field(default_factory=list, description="dates with their own windows (or none)")
    holiday_windows: list[str] = Field(default_factory=list, description="windows on holidays; empty = no drops")

    @field_validator("windows", "holiday_windows")
    @classmethod
    def _windows(cls, v: list[str]) -> list[str]:
        spans = sorted(parse_window(w) + (w,) for w in v)
        for a, b in zip(spans, spans[1:]):
            if b[0] < a[1]:
                raise ValueError(f"windows {a[2]} and {b[2]} overlap")
        return v

    def windows_on(self, day: date) -> list[str]:
        """The drop windows that apply on a (local) date: holiday_windows on holidays."""
        return list(self.holiday_windows) if day in self.holidays else list(self.windows)

    def window_at(self, local: datetime) -> str | None:
        """The window a local time falls in, or None outside every window."""
        minute = local.hour * 60 + local.minute + local.second / 60
        for w in self.windows_on(local.date()):
            start, end = parse_window(w)
            if start <= minute < end:
                return w
        return None


class StationConfig(Strict):
    id: Id
    name: str = ""
    schedule: Id | None = Field(default=None, description="schedule id with the drop windows")
    camera: Id | None = None
    bins: list[Id] = Field(default_factory=list)
    litter_dwell_s: float = Field(default=300, gt=0)
    visit_leave_s: float = Field(default=60, gt=0, description="object appearing this soon after a visit = a drop")
    visit_gap_s: float = Field(default=15, gt=0, description="a visit ends when nobody was seen for this long")
