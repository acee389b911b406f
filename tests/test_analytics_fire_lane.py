"""Fire-lane episode logic on tracks given frame by frame (minutes of dwell in milliseconds).

Tracks here are plain records with the TrackLike fields (what drivers/cameras publishes); the frames are real
photos where the appearance check matters, so nothing in the analytic is replaced.
"""
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.analytics.clutter import to_small_grey
from edge.analytics.fire_lane import FireLaneAnalytic, FrameView
from edge.config.zones import ZoneConfig
from edge.vision import FrameResult

DATA = Path(__file__).resolve().parent / "data"
T0 = 1_780_000_000.0
CAR = (200.0, 300.0, 360.0, 420.0)  # in the lower half of a 640x480 frame


@dataclasses.dataclass
class Trk:
    id: int
    label: str
    box: tuple
    first_seen: float
    last_seen: float
    stationary: bool
    stationary_s: float
    score: float = 0.9
    visible: bool = True


def parked(tid, t, since, box=CAR, label="car", visible=True):
    return Trk(tid, label, box, since, t, t - since >= 3, max(0.0, t - since) if t - since >= 3 else 0.0,
               visible=visible)


def zone(**kw):
    base = dict(id="lane", camera="cam", type="fire_lane", polygon=[[0, 0.5], [1, 0.5], [1, 1], [0, 1]],
                dwell_s=120, clear_s=30, update_every_s=600)
    return ZoneConfig(**(base | kw))


BLANK = np.full((480, 640, 3), 90, np.uint8)


def frame(t, tracks, img=BLANK, detections=()):
    return FrameResult("cam", t, img, list(detections), list(tracks), 0.0, True)


def feed(fl, steps, view=None):
    """steps: iterable of (t, tracks[, img]); returns [(t, kind, payload)]."""
    out = []
    for step in steps:
        t, tracks = step[0], step[1]
        img = step[2] if len(step) > 2 else BLANK
        v = view or FrameView(None, None, None)
        if len(step) > 2:
            v = FrameView(to_small_grey(img), None, None)
        for e in fl.process(frame(t, tracks, img), v):
            out.append((round(e.ts - T0), e.kind, e.payload))
    return out


def test_one_alert_per_episode_updates_at_most_every_n_then_cleared_with_total_duration():
    fl = FireLaneAnalytic(zone(), "cam")
    steps = [(T0 + s, [parked(1, T0 + s, T0)]) for s in range(0, 1801, 5)]
    steps += [(T0 + 1805 + s, []) for s in range(0, 61, 5)]
    out = feed(fl, steps)
    kinds = [(t, k, p["state"]) for t, k, p in out]
    assert kinds == [(120, "fire_lane.blocked", "blocked"), (720, "fire_lane.blocked", "update"),
                     (1320, "fire_lane.blocked", "update"), (1835, "fire_lane.cleared", "cleared")]
    blocked = out[0][2]
    assert blocked["object"] == "car" and blocked["zone"] == "lane" and blocked["duration_s"] == 120.0
    assert out[1][2]["duration_s"] == 720.0
    # cleared: duration from the start of the episode until the zone became free (not including clear_s)
    assert out[-1][2]["duration_s"] == 1805.0
    assert len({p["episode"] for _, _, p in out}) == 1


def test_blocked_emission_carries_an_annotated_snapshot():
    fl = FireLaneAnalytic(zone(dwell_s=10), "cam")
    ems = []
    for s in range(0, 16, 5):
        ems += fl.process(frame(T0 + s, [parked(1, T0 + s, T0)]), FrameView(None, None, None))
    (em,) = ems
    (snap,) = em.snapshots
    assert snap.frame.shape == (480, 640, 3) and snap.zones[0][0] == "lane"
    assert snap.marks[0].box == CAR and snap.marks[0].label.startswith("car ")


def test_dwell_not_reached_gives_nothing_and_a_later_car_starts_afresh():
    fl = FireLaneAnalytic(zone(), "cam")
    steps = [(T0 + s, [parked(1, T0 + s, T0)]) for s in range(0, 101, 5)]  # 100 s, then leaves
    steps += [(T0 + 105 + s, []) for s in range(0, 60, 5)]
    steps += [(T0 + 170 + s, [parked(2, T0 + 170 + s, T0 + 170)]) for s in range(0, 100, 5)]
    assert feed(fl, steps) == []
    assert fl.stats["abandoned_pending"] == 1


def test_object_there_at_start_is_handled_the_same_way():
    fl = FireLaneAnalytic(zone(), "cam")
    # the tracker calls a never-moving object stationary from its first frame on
    steps = [(T0 + s, [Trk(1, "truck", CAR, T0, T0 + s, s >= 3, s if s >= 3 else 0.0)]) for s in range(0, 130, 10)]
    out = feed(fl, steps)
    assert [(t, p["state"], p["object"]) for t, _, p in out] == [(120, "blocked", "truck")]


def test_people_and_moving_traffic_never_alert():
    fl = FireLaneAnalytic(zone(), "cam")
    steps = []
    for s in range(0, 900, 5):
        t = T0 + s
        person = Trk(1, "person", (300, 250, 340, 400), T0, t, True, float(s))  # standing in the lane 15 min
        x = (s * 40) % 600
        car = Trk(100 + s // 15, "car", (x, 300, x + 120, 400), t - 2, t, False, 0.0)  # traffic passing
        steps.append((t, [person, car]))
    assert feed(fl, steps) == []
    assert fl.state == "idle" or fl.stats["raised"] == 0


def test_not_in_the_zone():
    fl = FireLaneAnalytic(zone(), "cam")
    above = (200.0, 20.0, 360.0, 200.0)  # bottom centre above the lane, no overlap
    assert feed(fl, [(T0 + s, [parked(1, T0 + s, T0, box=above)]) for s in range(0, 300, 10)]) == []
    fl2 = FireLaneAnalytic(zone(classes=["car"]), "cam")
    assert feed(fl2, [(T0 + s, [parked(1, T0 + s, T0, label="bicycle")]) for s in range(0, 300, 10)]) == []


def test_new_track_id_after_occlusion_keeps_the_dwell():
    """The tracker lost the car behind a passer-by and made a new track: the dwell must not restart."""
    fl = FireLaneAnalytic(zone(), "cam")
    walker = (180.0, 200.0, 300.0, 430.0)
    steps = [(T0 + s, [parked(1, T0 + s, T0)]) for s in range(0, 80, 5)]
    steps += [(T0 + s, [Trk(9, "person", walker, T0 + 80, T0 + s, False, 0.0)]) for s in range(80, 100, 5)]
    # new id, not yet stationary for the tracker (fresh track), then stationary again
    steps += [(T0 + s, [Trk(2, "car", CAR, T0 + 100, T0 + s, s >= 105, float(s - 100) if s >= 105 else 0.0)])
              for s in range(100, 200, 5)]
    out = feed(fl, steps)
    assert [(t, p["state"], p["track_id"]) for t, _, p in out] == [(120, "blocked", 2)]


def test_gap_shorter_than_clear_s_does_not_split():
    fl = FireLaneAnalytic(zone(), "cam")
    steps = [(T0 + s, [parked(1, T0 + s, T0)]) for s in range(0, 200, 5)]
    steps += [(T0 + s, []) for s in range(200, 225, 5)]  # 25 s with nothing detected (< clear_s 30)
    steps += [(T0 + s, [parked(3, T0 + s, T0 + 225)]) for s in range(225, 400, 5)]
    out = feed(fl, steps)
    assert [p["state"] for _, _, p in out] == ["blocked"]


@pytest.fixture(scope="module")
def lane_photos():
    a = cv2.resize(cv2.imread(str(DATA / "opencv_leuvenA_lane_empty.jpg")), (640, 480))
    b = cv2.resize(cv2.imread(str(DATA / "opencv_leuvenB_lane_bicycles.jpg")), (640, 480))
    return a, b


def test_appearance_keeps_the_episode_while_the_detector_has_lost_the_object(lane_photos):
    """Dusk: no detections for 5 minutes, but the picture still shows the bicycles -> still blocked.
    When the picture shows the empty lane, the episode ends after clear_s."""
    empty, bikes = lane_photos
    fl = FireLaneAnalytic(zone(polygon=[[0.0, 0.70], [0.60, 0.68], [0.80, 0.99], [0.0, 0.99]]), "cam")
    bike = (123.0, 344.0, 177.0, 401.0)
    dim = np.clip(bikes.astype(np.float32) * 0.3, 0, 255).astype(np.uint8)
    steps = [(T0 + s, [parked(1, T0 + s, T0, box=bike, label="bicycle")], bikes) for s in range(0, 130, 10)]
    steps += [(T0 + s, [], dim) for s in range(130, 430, 10)]
    steps += [(T0 + s, [], empty) for s in range(430, 480, 10)]
    out = feed(fl, steps)
    assert [(t, p["state"]) for t, _, p in out] == [(120, "blocked"), (460, "cleared")]
    assert out[-1][2]["duration_s"] == 430.0
    assert fl.stats["held_appearance"] >= 25


def test_without_the_appearance_check_the_same_input_would_end_early(lane_photos):
    """The counterpart of the test above: a blank view (no picture) ends the episode after clear_s."""
    empty, bikes = lane_photos
    fl = FireLaneAnalytic(zone(polygon=[[0.0, 0.70], [0.60, 0.68], [0.80, 0.99], [0.0, 0.99]]), "cam")
    bike = (123.0, 344.0, 177.0, 401.0)
    steps = [(T0 + s, [parked(1, T0 + s, T0, box=bike, label="bicycle")]) for s in range(0, 130, 10)]
    steps += [(T0 + s, []) for s in range(130, 430, 10)]
    out = feed(fl, steps)
    assert [(t, p["state"]) for t, _, p in out] == [(120, "blocked"), (160, "cleared")]
