"""Bin overflow: the level sensor's `bin.full` fused with what the station camera sees.

Vision (`OverflowVision`, one per `bin_station` zone): the installer draws the zone over the space just above
the bin rims and captures a clear reference; material standing there (bags heaped on the lids, a lid pushed
up) is static change against that reference, present for the zone's `dwell_s` with no person in it.

Fusion (`BinFusion`, one for the gateway) decides what the property manager sees, always naming the evidence:

* sensor full, camera sees it too  -> `bin.full` for that bin with evidence [sensor, vision] (the same alert
  the sensor raised, updated: alerts are de-duplicated per bin);
* sensor full only                 -> the sensor's own `bin.full` stands (evidence [sensor]);
* camera only, station with one bin -> `bin.full` for that bin with evidence [vision] (sensor broken or
  absent: the camera still reports it);
* camera only, no bins or several  -> `waste.overflow` for the station (the camera cannot tell which bin);
* and the reverse transitions (downgrade to [sensor], clear what vision alone raised).

It also keeps the station's overflow intervals (sensor or vision) for the statistics.
"""
from __future__ import annotations

import threading
from typing import Any

from .base import PEOPLE, VEHICLES, Emission, people_boxes
from .evidence import COLOURS, Mark, Snapshot
from .fire_lane import FrameView, fmt_duration
from .zones import ZoneShape, covered_fraction

FUSION_SOURCE = "analytics.bins"


class OverflowVision:
    def __init__(self, zone, camera: str, masks=()):
        self.zone = zone
        self.camera = camera
        self.station = zone.station
        self.masks = [list(m) for m in masks]
        self._shape: ZoneShape | None = None
        self.on = False
        self.since: float | None = None
        self.free_since: float | None = None
        self.box = None
        self.stats = {"frames": 0, "on": 0, "off": 0}

    def shape(self, w: int, h: int) -> ZoneShape:
        if self._shape is None or (self._shape.width, self._shape.height) != (w, h):
            self._shape = ZoneShape(self.zone.polygon, w, h, self.masks)
        return self._shape

    def process(self, fr, view: FrameView) -> tuple[str, Snapshot | None] | None:
        """'on' / 'off' with a snapshot on a change of the vision verdict, else None."""
        self.stats["frames"] += 1
        if view.change is None or view.detector is None:
            return None
        now = float(fr.ts)
        shape = self.shape(fr.width, fr.height)
        people = people_boxes(fr)
        exclude = people + [t.box for t in fr.tracks if t.label in VEHICLES]
        zc = view.detector.zone(view.change, shape.mask, exclude, min_fraction=self.zone.change_min_fraction)
        if zc.uncertain:
            return None
        person_here = any(shape.overlap(p) > 0.1 for p in people)
        if zc.present:
            self.free_since = None
            self.box = zc.box
            if self.since is None:
                self.since = zc.since if zc.since is not None else now
            if not self.on and now - self.since >= self.zone.dwell_s and not person_here:
                self.on = True
                self.stats["on"] += 1
                return "on", self._snapshot(fr, now, people, "overflowing")
            return None
        if self.box is not None and any(covered_fraction(self.box, p) >= 0.2 for p in people):
            return None  # someone stands in front of it: cannot tell
        if self.free_since is None:
            self.free_since = now
        if now - self.free_since >= self.zone.clear_s:
            self.since = None
            if self.on:
                self.on = False
                self.stats["off"] += 1
                return "off", self._snapshot(fr, now, people, "clear")
        return None

    def _snapshot(self, fr, now: float, people, what: str) -> Snapshot:
        dur = now - (self.since or now)
        marks = [Mark(self.box, f"overflow {fmt_duration(dur)}", COLOURS["unknown"])] \
            if self.box is not None and what == "overflowing" else []
        return Snapshot(fr.frame, [(self.zone.name or self.zone.id, self.zone.polygon)], marks,
                        [f"station {self.station or self.zone.id}: bins {what}"], people)


class BinFusion:
    """Sensor + vision -> bin.full / waste.overflow with their evidence. Thread-safe (camera threads + loop)."""

    def __init__(self, stations: list, bin_station: dict[str, str] | None = None):
        self.stations = {s.id: s for s in stations}
        self.bin_station = dict(bin_station or {})
        for s in stations:
            for b in s.bins:
                self.bin_station.setdefault(b, s.id)
        self._lock = threading.Lock()
        self.sensor_full: dict[str, float | None] = {}  # bin -> fill %
        self.vision: dict[str, dict[str, Any]] = {}  # station -> {"on", "camera", "zone", "snapshot", "since"}
        self.emitted: dict[str, tuple[str, ...] | None] = {}  # bin -> evidence we last raised for it
        self.station_alert: dict[str, bool] = {}  # waste.overflow raised by us
        self.overflowing: dict[str, bool] = {}  # station -> for statistics
        self.stats = {"sensor_events": 0, "vision_changes": 0, "emitted": 0}

    def set_stations(self, stations: list) -> None:
        with self._lock:
            self.stations = {s.id: s for s in stations}
            for s in stations:
                for b in s.bins:
                    self.bin_station[b] = s.id

    def bins_of(self, station: str) -> list[str]:
        st = self.stations.get(station)
        return list(st.bins) if st is not None else sorted(b for b, s in self.bin_station.items() if s == station)

    # ---- inputs ----------------------------------------------------------------------------------------
    def on_sensor(self, payload: dict[str, Any], ts: float, source: str | None = None) -> list[Emission]:
        if source == FUSION_SOURCE:
            return []
        b = payload.get("bin")
        if not b:
            return []
        station = payload.get("station") or self.bin_station.get(b)
        if station:
            self.bin_station.setdefault(b, station)
        with self._lock:
            self.stats["sensor_events"] += 1
            raised = payload.get("state", "raised") == "raised"
            if raised:
                self.sensor_full[b] = payload.get("fill_pct")
                if self.emitted.get(b) == ("sensor", "vision"):
                    self.emitted[b] = None  # the sensor re-raised on its own: say "both" again below
            else:
                self.sensor_full.pop(b, None)
                if self.emitted.get(b) in (("sensor", "vision"), ("sensor",)):
                    self.emitted[b] = None  # the sensor's clear closed the alert
            return self._reconcile(station, ts) if station else []

    def on_vision(self, station: str, on: bool, ts: float, snapshot: Snapshot | None = None,
                  camera: str | None = None, zone: str | None = None) -> list[Emission]:
        with self._lock:
            self.stats["vision_changes"] += 1
            self.vision[station] = {"on": on, "camera": camera, "zone": zone, "snapshot": snapshot, "ts": ts}
            return self._reconcile(station, ts)

    # ---- the decision --------------------------------------------------------------------------------------
    def _reconcile(self, station: str, ts: float) -> list[Emission]:
        out: list[Emission] = []
        v = self.vision.get(station) or {}
        seen = bool(v.get("on"))
        snap = v.get("snapshot")
        bins = self.bins_of(station)
        full = [b for b in bins if b in self.sensor_full] + \
               [b for b, s in self.bin_station.items() if s == station and b in self.sensor_full and b not in bins]
        for b in sorted(set(bins) | set(full)):
            sensor = b in self.sensor_full
            if sensor and seen:
                want: tuple[str, ...] | None = ("sensor", "vision")
            elif sensor:
                want = ("sensor",) if self.emitted.get(b) not in (None, ("sensor",)) else self.emitted.get(b)
            elif seen and len(bins) == 1:
                want = ("vision",)
            else:
                want = None
            have = self.emitted.get(b)
            if want == have:
                continue
            if want is None:
                if have == ("vision",):
                    out.append(self._bin_full(b, station, "cleared", ["vision"], ts, snap))
                self.emitted[b] = None
                continue
            out.append(self._bin_full(b, station, "raised", list(want), ts, snap if "vision" in want else None))
            self.emitted[b] = want
        want_station = seen and not full and len(bins) != 1
        if want_station != self.station_alert.get(station, False):
            self.station_alert[station] = want_station
            payload = {"station": station, "zone": v.get("zone"), "camera": v.get("camera"), "object": "overflow",
                       "state": "raised" if want_station else "cleared"}
            out.append(Emission("waste.overflow", v.get("camera") or FUSION_SOURCE,
                                {k: x for k, x in payload.items() if x is not None}, ts, [snap] if snap else []))
        overflowing = seen or bool(full)
        if overflowing != self.overflowing.get(station, False):
            self.overflowing[station] = overflowing
            evidence = "+".join(e for e, on in (("sensor", bool(full)), ("vision", seen)) if on)
            out.append(Emission("stats.overflow_start" if overflowing else "stats.overflow_end", FUSION_SOURCE,
                                {"station": station, "ts_ms": int(ts * 1000), "evidence": evidence or "none"}, ts))
        elif overflowing:
            evidence = "+".join(e for e, on in (("sensor", bool(full)), ("vision", seen)) if on)
            out.append(Emission("stats.overflow_start", FUSION_SOURCE,
                                {"station": station, "ts_ms": int(ts * 1000), "evidence": evidence}, ts))
        self.stats["emitted"] += sum(1 for e in out if not e.kind.startswith("stats."))
        return out

    def _bin_full(self, b: str, station: str, state: str, evidence: list[str], ts: float,
                  snap: Snapshot | None) -> Emission:
        payload = {"bin": b, "station": station, "state": state, "evidence": evidence}
        if self.sensor_full.get(b) is not None:
            payload["fill_pct"] = self.sensor_full[b]
        return Emission("bin.full", FUSION_SOURCE, payload, ts, [snap] if snap is not None else [])

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"sensor_full": dict(self.sensor_full),
                    "vision": {s: bool(v.get("on")) for s, v in self.vision.items()},
                    "emitted": {b: list(e) if e else None for b, e in self.emitted.items()},
                    "station_alert": dict(self.station_alert)}

    def health(self) -> dict[str, Any]:
        return dict(self.stats)
