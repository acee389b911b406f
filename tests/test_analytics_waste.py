"""Bin fusion (sensor + vision), litter dwell with people around, station statistics on a real SQLite store."""
import dataclasses

import numpy as np
import pytest

from edge.analytics import station_stats
from edge.analytics.bin_overflow import FUSION_SOURCE, BinFusion
from edge.analytics.fire_lane import FrameView
from edge.analytics.litter import LitterAnalytic
from edge.config.zones import StationConfig, ZoneConfig
from edge.store import Store
from edge.vision import FrameResult

T0 = 1_780_000_000.0


def events(out):
    return [(e.kind, e.payload.get("bin"), e.payload.get("state"), e.payload.get("evidence")) for e in out
            if not e.kind.startswith("stats.")]


def stats(out):
    return [(e.kind, e.payload["evidence"]) for e in out if e.kind.startswith("stats.")]


def test_sensor_full_then_camera_sees_it_then_pile_removed_then_emptied():
    f = BinFusion([StationConfig(id="st-b", bins=["b-other"])])
    full = {"bin": "b-other", "station": "st-b", "fill_pct": 93, "state": "raised"}
    out = f.on_sensor(full, T0, "bins-b")
    assert events(out) == []  # the sensor's own event raises the alert (evidence: sensor)
    assert stats(out) == [("stats.overflow_start", "sensor")]
    out = f.on_vision("st-b", True, T0 + 120, None, "cam", "rim")
    assert events(out) == [("bin.full", "b-other", "raised", ["sensor", "vision"])]
    assert out[0].payload["fill_pct"] == 93 and out[0].source == FUSION_SOURCE
    assert events(f.on_vision("st-b", False, T0 + 400)) == [("bin.full", "b-other", "raised", ["sensor"])]
    out = f.on_sensor(dict(full, fill_pct=10, state="cleared"), T0 + 420, "bins-b")
    assert events(out) == []  # the sensor's clear closes the alert by itself
    assert stats(out) == [("stats.overflow_end", "none")]
    # our own events coming back through the bus are ignored
    assert f.on_sensor({"bin": "b-other", "state": "raised", "evidence": ["sensor", "vision"]}, T0, FUSION_SOURCE) \
        == []


def test_camera_only_single_bin_station_and_sensor_joins_later():
    f = BinFusion([StationConfig(id="st-b", bins=["b-other"])])
    assert events(f.on_vision("st-b", True, T0)) == [("bin.full", "b-other", "raised", ["vision"])]
    out = f.on_sensor({"bin": "b-other", "station": "st-b", "fill_pct": 95, "state": "raised"}, T0 + 60, "bins-b")
    assert events(out) == [("bin.full", "b-other", "raised", ["sensor", "vision"])]
    # emptied per sensor while the camera still sees material above the rim: vision alone re-raises it
    out = f.on_sensor({"bin": "b-other", "station": "st-b", "fill_pct": 5, "state": "cleared"}, T0 + 90, "bins-b")
    assert events(out) == [("bin.full", "b-other", "raised", ["vision"])]
    assert events(f.on_vision("st-b", False, T0 + 200)) == [("bin.full", "b-other", "cleared", ["vision"])]


def test_camera_only_multi_bin_station_raises_station_overflow():
    f = BinFusion([StationConfig(id="st-c", bins=["c-kitchen", "c-other"])])
    out = f.on_vision("st-c", True, T0, None, "cam", "rim")
    assert [(e.kind, e.payload["station"], e.payload["state"]) for e in out if e.kind == "waste.overflow"] == \
        [("waste.overflow", "st-c", "raised")]
    # then a sensor says which bin: the fused bin alert takes over, the station-level one is cleared
    out = f.on_sensor({"bin": "c-other", "station": "st-c", "fill_pct": 91, "state": "raised"}, T0 + 30, "bins")
    assert events(out) == [("bin.full", "c-other", "raised", ["sensor", "vision"]),
                           ("waste.overflow", None, "cleared", None)]


def test_sensor_reraise_while_fused_says_both_again():
    f = BinFusion([StationConfig(id="st-b", bins=["b-other"])])
    raised = {"bin": "b-other", "station": "st-b", "fill_pct": 93, "state": "raised"}
    f.on_sensor(raised, T0, "bins-b")
    f.on_vision("st-b", True, T0 + 10)
    out = f.on_sensor(raised, T0 + 20, "bins-b")
    assert events(out) == [("bin.full", "b-other", "raised", ["sensor", "vision"])]


@dataclasses.dataclass
class Trk:
    id: int
    label: str
    box: tuple
    first_seen: float
    last_seen: float
    stationary: bool
    stationary_s: float
    score: float = 0.8
    visible: bool = True


def test_litter_waits_for_people_to_leave_and_clears():
    zone = ZoneConfig(id="ground", camera="cam", type="keep_clear_ground", station="st-a", clear_s=30,
                      polygon=[[0, 0.5], [1, 0.5], [1, 1], [0, 1]])
    st = StationConfig(id="st-a", litter_dwell_s=300)
    li = LitterAnalytic(zone, "cam", st)
    img = np.full((480, 640, 3), 100, np.uint8)
    suitcase = (300.0, 350.0, 360.0, 420.0)
    out = []
    for s in range(0, 700, 10):
        t = T0 + s
        tracks = []
        if s < 600:
            tracks.append(Trk(1, "suitcase", suitcase, T0, t, True, float(s)))
        if 250 <= s < 400:  # someone sorting waste right beside it
            tracks.append(Trk(2, "person", (380.0, 250.0, 440.0, 430.0), T0 + 250, t, True, float(s - 250)))
        out += li.process(FrameResult("cam", t, img, [], tracks), FrameView(None, None, None))
    got = [(round(e.ts - T0), e.payload["state"], e.payload["object"], e.payload["duration_s"]) for e in out]
    assert got == [(400, "raised", "suitcase", 400.0), (630, "cleared", "suitcase", 600.0)]
    assert li.stats["waited_for_person"] >= 10


def test_station_statistics(tmp_path):
    store = Store(tmp_path / "edge.db")
    try:
        station_stats.ensure_tables(store)
        day = 1_796_054_400_000  # 2026-12-01 00:00 Asia/Shanghai (16:00 UTC the day before)
        h = 3600_000
        station_stats.record_visit(store, "st-a", "cam", day + 7 * h + 60_000, day + 7 * h + 120_000, True, True)
        station_stats.record_visit(store, "st-a", "cam", day + 7 * h + 600_000, day + 7 * h + 660_000, True, False)
        station_stats.record_visit(store, "st-a", "cam", day + 23 * h, day + 23 * h + 60_000, False, True, "ev1")
        station_stats.record_visit(store, "st-b", "cam", day + 12 * h, day + 12 * h + 1, False, False)
        station_stats.overflow_started(store, "st-a", day + 10 * h, "sensor")
        station_stats.overflow_started(store, "st-a", day + 10 * h + 5 * 60_000, "sensor+vision")  # same episode
        station_stats.overflow_ended(store, "st-a", day + 10 * h + 30 * 60_000)
        station_stats.overflow_started(store, "st-a", day + 22 * h, "vision")  # still open at "now"
        got = station_stats.station_stats(store, None, day, day + 24 * h, tz="Asia/Shanghai",
                                          now_ms=day + 22 * h + 15 * 60_000)
        a = got["stations"]["st-a"]
        assert a["visits"] == 3 and a["visits_per_hour"][7] == 2 and a["visits_per_hour"][23] == 1
        assert (a["drops_in_window"], a["drops_outside_window"], a["visits_outside_window"]) == (1, 1, 1)
        assert a["overflow_minutes"] == 45.0 and a["overflow_episodes"] == 2
        assert got["stations"]["st-b"]["visits"] == 1
        only_b = station_stats.station_stats(store, "st-b", day, day + 24 * h, now_ms=day + 24 * h)
        assert list(only_b["stations"]) == ["st-b"]
        with pytest.raises(ValueError):
            station_stats.apply_record(store, "stats.nonsense", {})
    finally:
        store.close()
