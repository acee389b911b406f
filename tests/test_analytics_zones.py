"""Zone/schedule/station config errors (FILE:LINE messages) and the geometry the analytics use."""
from datetime import date, datetime

import pytest

from edge.analytics.zones import ZoneShape, box_iou, cells_to_box, covered_fraction, polygon_mask
from edge.config import ConfigError, load_config_text

BASE = """gateway:
  id: gw-1
  compound_id: cp-1
  county_code: "330106"
cameras:
  - id: cam1
    url: rtsp://10.0.0.5/Streaming/Channels/102
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "edge.yaml")
    return [str(p) for p in info.value.problems]


def test_valid_zones_schedules_stations():
    cfg = load_config_text(BASE + """zones:
  - id: lane-3
    camera: cam1
    type: fire_lane
    polygon: [[0.1, 0.5], [0.9, 0.5], [0.98, 0.98], [0.02, 0.98]]
  - id: ground
    camera: cam1
    type: keep_clear_ground
    station: st-a
    polygon: [[0.1, 0.6], [0.9, 0.6], [0.9, 0.9]]
schedules:
  - id: hours
    windows: ["07:00-09:00", "18:00-21:00"]
    holidays: [2026-10-01]
    holiday_windows: ["09:00-11:00"]
stations:
  - id: st-a
    schedule: hours
    camera: cam1
""")
    assert cfg.zones[0].dwell_s == 120 and "person" not in cfg.zones[0].classes
    sched = cfg.schedules[0]
    assert sched.window_at(datetime(2026, 12, 1, 7, 30)) == "07:00-09:00"
    assert sched.window_at(datetime(2026, 12, 1, 9, 0)) is None  # end is exclusive
    assert sched.window_at(datetime(2026, 12, 1, 20, 59)) == "18:00-21:00"
    assert sched.window_at(datetime(2026, 10, 1, 7, 30)) is None  # holiday: its own windows
    assert sched.window_at(datetime(2026, 10, 1, 10, 0)) == "09:00-11:00"
    assert sched.windows_on(date(2026, 10, 1)) == ["09:00-11:00"]


def test_self_intersecting_polygon_names_file_line_and_edges():
    text = BASE + """zones:
  - id: lane
    camera: cam1
    type: fire_lane
    polygon: [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
"""
    (p,) = problems(text)
    assert p.startswith("edge.yaml:12: zones[0].polygon: ")
    assert "self-intersecting" in p and "edges 0-1 and 2-3 cross" in p


def test_point_outside_unit_square():
    (p,) = problems(BASE + """zones:
  - id: lane
    camera: cam1
    type: fire_lane
    polygon: [[0.1, 0.1], [1.2, 0.1], [0.5, 0.9]]
""")
    assert p.startswith("edge.yaml:12: zones[0].polygon: ") and "point 1 (1.2, 0.1) is outside 0..1" in p


def test_degenerate_polygons():
    (p,) = problems(BASE + """zones:
  - id: lane
    camera: cam1
    type: fire_lane
    polygon: [[0.1, 0.1], [0.2, 0.2]]
""")
    assert "at least 3 points" in p
    (p,) = problems(BASE + """zones:
  - id: lane
    camera: cam1
    type: fire_lane
    polygon: [[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]]
""")
    assert "no area" in p


def test_overlapping_windows_and_bad_window_text():
    text = BASE + """schedules:
  - id: hours
    windows: ["07:00-09:00", "08:30-10:00"]
  - id: night
    windows: ["22:00-02:00"]
  - id: typo
    windows: ["7-9"]
"""
    got = problems(text)
    assert got[0].startswith("edge.yaml:10: schedules[0].windows: ")
    assert "windows 07:00-09:00 and 08:30-10:00 overlap" in got[0]
    assert got[1].startswith("edge.yaml:12: schedules[1].windows: ") and "split windows that cross midnight" in got[1]
    assert got[2].startswith("edge.yaml:14: schedules[2].windows: ") and "'7-9' is not a window" in got[2]


def test_people_cannot_block_a_lane_and_unknown_references():
    got = problems(BASE + """zones:
  - id: lane
    camera: cam1
    type: fire_lane
    classes: [car, person]
    polygon: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
  - id: ground
    camera: cam9
    type: keep_clear_ground
    station: nowhere
    polygon: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
""")
    assert got[0].startswith("edge.yaml:12: zones[0].classes: ") and "'person' cannot block" in got[0]
    # cross-references are checked only once every section is valid on its own
    got = problems(BASE + """zones:
  - id: ground
    camera: cam9
    type: keep_clear_ground
    station: nowhere
    polygon: [[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]
""")
    assert any(p.startswith("edge.yaml:10: zones[0].camera: unknown camera 'cam9'") for p in got), got
    assert any(p.startswith("edge.yaml:12: zones[0].station: unknown station 'nowhere'") for p in got), got


def test_zone_shape_footprint_and_overlap():
    # lane across the lower half of a 640x480 frame
    shape = ZoneShape([[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]], 640, 480)
    assert shape.contains(320, 400) and not shape.contains(320, 100)
    assert shape.footprint_inside((300, 200, 360, 300), 0.5)  # stands in the lane (bottom centre inside)
    assert not shape.footprint_inside((300, 20, 360, 200), 0.5)  # above the lane
    assert shape.overlap((0, 140, 100, 340)) == pytest.approx(0.5, abs=0.02)
    assert shape.footprint_inside((0, 140, 100, 700), 0.3)  # bottom cut off by the image edge, area counts
    masked = ZoneShape([[0.0, 0.5], [1.0, 0.5], [1.0, 1.0], [0.0, 1.0]], 640, 480,
                       masks=[[[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]])
    assert not masked.contains(100, 400) and masked.contains(500, 400)
    assert polygon_mask([[0, 0], [1, 0], [1, 1]], 64, 48).shape == (48, 64)


def test_box_helpers():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert covered_fraction((0, 0, 10, 10), (5, 0, 20, 10)) == pytest.approx(0.5)
    import numpy as np
    cells = np.zeros((4, 8), bool)
    cells[1:3, 2:4] = True
    assert cells_to_box(cells, 640, 480) == (160.0, 120.0, 320.0, 360.0)
