"""Tracker behaviour with synthetic boxes and injected timestamps (no wall clock)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from models.runtime import Detection
from models.tracker import Tracker


def det(label, box, score=0.9):
    return Detection(label, 0, score, tuple(float(v) for v in box))


def shift(box, dx=0.0, dy=0.0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


CAR = (400.0, 200.0, 600.0, 320.0)       # 200 x 120 parked car


def by_label(tracks, label):
    return [t for t in tracks if t.label == label]


def test_moving_object_keeps_its_id():
    tr = Tracker()
    ids = set()
    for i in range(30):                      # person walking 10 px per frame at 5 fps
        tracks = tr.update([det("person", shift((0, 100, 40, 200), dx=10 * i))], ts=i * 0.2)
        assert len(tracks) == 1
        ids.add(tracks[0].id)
    assert ids == {1}
    t = tracks[0]
    assert t.first_seen == 0 and t.last_seen == pytest.approx(5.8) and t.hits == 30
    assert not t.stationary and t.stationary_s == 0
    assert t.velocity[0] == pytest.approx(50, rel=0.05)   # px/s


def test_parked_car_becomes_stationary_counted_from_first_frame():
    tr = Tracker(stationary_window_s=3.0)
    rng = np.random.default_rng(1)
    for i in range(600):                      # ten minutes at 1 detection per second, +-3 px jitter
        jitter = rng.uniform(-3, 3, 4)
        tracks = tr.update([det("car", np.add(CAR, jitter))], ts=1000.0 + i)
        car = tracks[0]
        if i < 3:
            assert not car.stationary
        else:
            assert car.stationary
            assert car.stationary_s == pytest.approx(i)       # since the first frame, not since 'became'
    assert car.id == 1 and car.first_seen == 1000.0 and car.stationary_s == pytest.approx(599)


def test_car_driving_off_stops_being_stationary_same_id():
    tr = Tracker(stationary_window_s=2.0)
    for i in range(10):
        tracks = tr.update([det("car", CAR)], ts=i * 0.5)
    assert tracks[0].stationary
    box = CAR
    for i in range(10, 20):                   # drives right 30 px per frame
        box = shift(box, dx=30)
        tracks = tr.update([det("car", box)], ts=i * 0.5)
        assert not tracks[0].stationary and tracks[0].stationary_s == 0
    assert tracks[0].id == 1
    for i in range(20, 30):                   # parks again: stationary counted from the new spot
        tracks = tr.update([det("car", box)], ts=i * 0.5)
    assert tracks[0].stationary and tracks[0].stationary_s == pytest.approx(29 * 0.5 - 9.5)


def test_person_walking_past_parked_car_does_not_change_its_id():
    """The person's box crosses the car; while it covers the car the detector loses or shrinks the car."""
    tr = Tracker(max_missed_s=2.0, stationary_window_s=3.0)
    ts = 0.0
    for _ in range(25):                       # car alone for 5 s at 5 fps
        tracks = tr.update([det("car", CAR)], ts)
        ts += 0.2
    car_id = by_label(tracks, "car")[0].id
    assert by_label(tracks, "car")[0].stationary
    person_ids = set()
    for step in range(40):                    # person walks from x=300 to x=700 in front of the car
        px = 300 + step * 10
        person = (px, 180.0, px + 50, 340.0)
        dets = [det("person", person, 0.95)]
        overlap = max(0.0, min(person[2], CAR[2]) - max(person[0], CAR[0])) / (CAR[2] - CAR[0])
        if overlap == 0:
            dets.append(det("car", CAR))
        elif 430 <= px <= 520:
            pass                              # car hidden: detector misses it (1.8 s at most)
        elif px < 430:
            dets.append(det("car", (px + 50, 200, 600, 320), 0.6))   # left part covered: shrunk box
        else:
            dets.append(det("car", (400, 200, px, 320), 0.6))        # right part covered
        tracks = tr.update(dets, ts)
        ts += 0.2
        cars = by_label(tracks, "car")
        assert [c.id for c in cars] == [car_id], (step, tracks)
        assert cars[0].stationary, step        # hidden or shrunk, it never moved
        person_ids.update(t.id for t in by_label(tracks, "person"))
    assert len(person_ids) == 1 and car_id not in person_ids
    car = by_label(tracks, "car")[0]
    assert car.stationary_s == pytest.approx(ts - 0.2, abs=1e-6)      # since its first frame at t=0
    person = by_label(tracks, "person")[0]
    assert not person.stationary


def test_short_occlusion_survives_long_one_ends():
    tr = Tracker(max_missed_s=2.0)
    tr.update([det("car", CAR)], ts=0.0)
    assert tr.update([], ts=1.0)[0].visible is False
    tracks = tr.update([], ts=1.9)
    assert len(tracks) == 1 and tracks[0].missed_s == pytest.approx(1.9)
    assert tr.update([det("car", CAR)], ts=2.0)[0].id == 1          # back within 2 s: same id
    tr.update([], ts=3.0)
    assert tr.update([], ts=4.5) == [] and [t.id for t in tr.ended] == [1]
    assert tr.update([det("car", CAR)], ts=5.0)[0].id == 2          # after 3 s gone: a new object
    assert tr.health()["tracks_ended"] == 1 and tr.health()["tracks_created"] == 2


def test_stationary_duration_keeps_growing_while_hidden():
    tr = Tracker(max_missed_s=5.0, stationary_window_s=1.0)
    for i in range(5):
        tr.update([det("car", CAR)], ts=float(i))
    tracks = tr.update([], ts=7.0)
    assert tracks[0].stationary and tracks[0].stationary_s == pytest.approx(7.0)


def test_two_cars_side_by_side_keep_their_ids():
    tr = Tracker()
    a, b = (100, 200, 300, 320), (310, 200, 510, 320)
    for i in range(20):
        jitter = 2 * math.sin(i)
        order = [det("car", shift(a, jitter)), det("car", shift(b, -jitter))]
        tracks = tr.update(order[::-1] if i % 2 else order, ts=i * 0.2)
        ids = {t.id: t.box[0] for t in tracks}
        assert len(ids) == 2 and ids[1] < 200 < ids[2]


def test_car_truck_label_flicker_and_duplicates_are_one_track():
    tr = Tracker()
    for i in range(10):
        dets = [det("car", CAR, 0.75)]
        if i % 3 == 0:
            dets.append(det("truck", shift(CAR, 2), 0.57))    # same pickup reported twice
        if i % 4 == 1:
            dets = [det("truck", CAR, 0.6)]                  # or only as truck
        tracks = tr.update(dets, ts=i * 0.2)
        assert [t.id for t in tracks] == [1]
    assert tracks[0].label == "car"                          # majority by score
    assert tr.health()["merged_detections"] == 3            # i = 0, 3, 6


def test_person_never_takes_a_car_track():
    tr = Tracker()
    tr.update([det("car", CAR)], ts=0)
    tracks = tr.update([det("person", CAR)], ts=0.2)         # exactly the car's box, other class
    assert sorted((t.id, t.label, t.visible) for t in tracks) == [(1, "car", False), (2, "person", True)]


def test_fast_object_followed_by_centroid_and_velocity():
    tr = Tracker(iou_threshold=0.3, centroid_gate=0.75)
    ids = set()
    box = (0.0, 0.0, 40.0, 40.0)
    for i in range(15):                     # 30 px per frame on a 40 px box: IoU with the last box is 0.14
        tracks = tr.update([det("person", box)], ts=i * 0.2)
        ids.update(t.id for t in tracks if t.visible)
        box = shift(box, dx=30)
    assert ids == {1}


def test_far_jump_is_a_new_track():
    tr = Tracker()
    tr.update([det("person", (0, 0, 40, 80))], ts=0)
    tracks = tr.update([det("person", (500, 0, 540, 80))], ts=0.2)
    assert sorted(t.id for t in tracks) == [1, 2]


def test_min_hits_hides_one_frame_flukes():
    tr = Tracker(min_hits=2)
    assert tr.update([det("person", (0, 0, 40, 80))], ts=0) == []
    assert [t.id for t in tr.update([det("person", (2, 0, 42, 80))], ts=0.2)] == [1]


def test_bad_input_is_counted_not_fatal_and_time_must_not_go_back():
    tr = Tracker()
    tracks = tr.update([{"label": "car", "score": 0.8, "box": CAR}, {"label": "car", "box": CAR},
                        det("car", (10, 10, 20, 20)), {"label": "x", "score": 1, "box": (5, 5, 1, 1)},
                        {"label": "x", "score": 1, "box": (0, 0, float("nan"), 3)}], ts=10)
    assert len(tracks) == 2 and tr.health()["rejected_detections"] == 3
    with pytest.raises(ValueError, match="backwards"):
        tr.update([], ts=9.0)
    with pytest.raises(ValueError):
        Tracker(iou_threshold=0)


def test_tracks_satisfy_the_vision_protocol_fields():
    tr = Tracker()
    t = tr.update([det("car", CAR)], ts=3.0)[0]
    for name in ("id", "label", "score", "box", "first_seen", "last_seen", "stationary", "stationary_s"):
        assert hasattr(t, name)
    d = t.to_dict()
    assert d["id"] == 1 and d["box"] == list(CAR) and d["stationary"] is False
