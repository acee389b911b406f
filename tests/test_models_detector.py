"""The shipped default detector on real photos (tests/data, see SOURCES.md).

Asserted classes are the ones the model finds with a clear margin over its thresholds (measured with
bench/inference.py --compare); weaker hits are not asserted so an onnxruntime upgrade cannot flip them.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from models import DEFAULT_MODEL, Detection, shared_detector

DATA = Path(__file__).resolve().parent / "data"
VEHICLES = {"car", "truck", "bus", "motorcycle", "bicycle"}


@pytest.fixture(scope="module")
def detector():
    return shared_detector("default", threads=2)


def photo(name: str) -> np.ndarray:
    img = cv2.imread(str(DATA / name))
    assert img is not None, name
    return img


def labels(dets: list[Detection]) -> Counter:
    return Counter(d.label for d in dets)


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_cameras_share_one_session(detector):
    assert shared_detector("ssd_mobilenet_v2_coco", threads=2) is detector


def test_default_is_the_shipped_ssd(detector):
    assert detector.name == DEFAULT_MODEL == "ssd_mobilenet_v2_coco"
    assert detector.manifest.model_path.parent == Path(__file__).resolve().parents[1] / "models"


def test_dog_photo_bicycle_dog_and_parked_pickup(detector):
    img = photo("darknet_dog.jpg")                      # 768x576
    dets = detector.detect(img)
    got = labels(dets)
    assert got["bicycle"] == 1 and got["dog"] == 1
    pickup = [d for d in dets if d.label in ("car", "truck")]
    assert pickup, dets
    # the pickup is parked top right, the bicycle fills the middle: boxes are in original pixels
    x1, y1, x2, y2 = pickup[0].box
    assert x1 > 400 and x2 > 650 and y2 < 200
    bike = next(d for d in dets if d.label == "bicycle")
    assert bike.score > 0.9
    assert iou(bike.box, (80, 130, 550, 410)) > 0.8     # hand-checked bicycle extent in the 768x576 photo


def test_lane_with_bicycles_and_the_same_lane_empty(detector):
    full = detector.detect(photo("opencv_leuvenB_lane_bicycles.jpg"))
    assert labels(full)["bicycle"] >= 2
    for d in full:
        if d.label == "bicycle":   # both stand in the lower left of the lane
            assert d.box[0] > 100 and d.box[2] < 300 and d.box[1] > 350
    empty = detector.detect(photo("opencv_leuvenA_lane_empty.jpg"))
    assert not [d for d in empty if d.label in VEHICLES]


def test_pedestrian_plaza_people_no_vehicles(detector):
    img = photo("paddle_pedestrian_plaza.jpeg")         # 2048x1365: boxes must reach far past 300 px
    dets = detector.detect(img)
    people = [d for d in dets if d.label == "person"]
    assert len(people) >= 3
    assert not [d for d in dets if d.label in VEHICLES]
    assert max(d.box[3] for d in people) > 1200


def test_two_parked_motorcycles_and_a_person(detector):
    got = labels(detector.detect(photo("jetson_motorcycles.jpg")))
    assert got["motorcycle"] == 2
    assert got["person"] >= 1


def test_parked_pickup_truck_box_in_original_pixels(detector):
    img = photo("sam_truck.jpg")                        # 1800x1200
    dets = detector.detect(img)
    trucks = [d for d in dets if d.label == "truck"]
    assert len(trucks) == 1 and trucks[0].score > 0.9
    assert iou(trucks[0].box, (110, 280, 1720, 860)) > 0.85
    assert all(0 <= v <= 1800 for v in trucks[0].box)


def test_street_car_bus_people(detector):
    got = labels(detector.detect(photo("33887522274_eebd074106_k.jpg")))
    assert got["car"] >= 1 and got["bus"] >= 1 and got["person"] >= 2


def test_traffic_many_cars(detector):
    got = labels(detector.detect(photo("19064748793_bb942deea1_k.jpg")))
    assert got["car"] >= 6


def test_boxes_scale_with_the_image(detector):
    """Same photo at half size: the boxes halve (mapping back to original pixels is right)."""
    img = photo("sam_truck.jpg")
    big = next(d for d in detector.detect(img) if d.label == "truck")
    small = next(d for d in detector.detect(cv2.resize(img, (900, 600), interpolation=cv2.INTER_AREA))
                 if d.label == "truck")
    assert iou([v / 2 for v in big.box], small.box) > 0.9


def test_results_sorted_and_thresholded(detector):
    dets = detector.detect(photo("19064748793_bb942deea1_k.jpg"))
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True)
    for d in dets:
        assert d.score >= detector.manifest.threshold_for(d.label)
        assert d.box[0] < d.box[2] and d.box[1] < d.box[3]


def test_grey_and_bgra_inputs_work(detector):
    img = photo("sam_truck.jpg")
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(img, cv2.COLOR_BGR2BGRA)
    assert "truck" in labels(detector.detect(bgra))
    assert detector.detect(grey) is not None         # grey works (what it finds is not asserted)


@pytest.mark.parametrize("bad", [np.zeros((0, 0, 3), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((10, 10, 5), np.uint8), "not an image", None])
def test_unusable_image_is_a_clear_value_error(detector, bad):
    before = detector.health()["errors"]
    with pytest.raises(ValueError, match="image"):
        detector.detect(bad)
    assert detector.health()["errors"] == before + 1


def test_health_counts_frames(detector):
    n = detector.health()["frames"]
    detector.detect(np.zeros((360, 640, 3), np.uint8))
    h = detector.health()
    assert h["frames"] == n + 1 and h["last_ms"] > 0 and h["model"] == DEFAULT_MODEL and h["threads"] == 2
