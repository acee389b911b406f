"""Change detection against the clear reference, on the real lane photo: lighting is not clutter, a pile is."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.analytics.clutter import (ChangeDetector, compare_blocks, load_reference, patch_matches, save_reference,
                                    take_patch, to_small_grey)
from edge.analytics.zones import polygon_mask
from edge.store import Store

DATA = Path(__file__).resolve().parent / "data"
LANE = [[0.0, 0.70], [0.60, 0.68], [0.80, 0.99], [0.0, 0.99]]
T0 = 1_780_000_000.0


@pytest.fixture(scope="module")
def photos():
    a = cv2.resize(cv2.imread(str(DATA / "opencv_leuvenA_lane_empty.jpg")), (640, 480))
    b = cv2.resize(cv2.imread(str(DATA / "opencv_leuvenB_lane_bicycles.jpg")), (640, 480))
    bags = cv2.resize(cv2.imread(str(DATA / "usls_trash_bags.jpg")), (640, 427))
    pile = a.copy()
    pile[360:450, 150:320] = cv2.resize(bags[250:380, 140:330], (170, 90))  # real bags on the real cobbles
    return a, b, pile


def scale(img, k):
    return np.clip(img.astype(np.float32) * k, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("what", ["gain 0.2", "gain 0.5", "gain 1.8", "gain 2.5", "horizontal gradient",
                                  "vertical gradient", "headlight spot", "jpeg q50", "sensor noise"])
def test_lighting_and_codec_changes_are_not_changes(photos, what):
    a = photos[0]
    h, w = a.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    if what.startswith("gain"):
        x = scale(a, float(what.split()[1]))
    elif what == "horizontal gradient":
        x = np.clip(a * np.linspace(0.4, 1.2, w)[None, :, None], 0, 255).astype(np.uint8)
    elif what == "vertical gradient":
        x = np.clip(a * np.linspace(1.2, 0.3, h)[:, None, None], 0, 255).astype(np.uint8)
    elif what == "headlight spot":
        spot = 1 + 1.5 * np.exp(-((xx - 300) ** 2 + (yy - 400) ** 2) / (2 * 80 ** 2))
        x = np.clip(a * 0.4 * spot[..., None], 0, 255).astype(np.uint8)
    elif what == "jpeg q50":
        x = cv2.imdecode(cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, 50])[1], cv2.IMREAD_COLOR)
    else:
        x = np.clip(a + np.random.default_rng(1).normal(0, 6, a.shape), 0, 255).astype(np.uint8)
    cmp = compare_blocks(to_small_grey(a), to_small_grey(x))
    assert cmp.changed.mean() <= 0.01, f"{what}: {cmp.changed.sum()} blocks changed"


def test_a_pile_is_a_change_where_it_lies(photos):
    a, _, pile = photos
    cmp = compare_blocks(to_small_grey(a), to_small_grey(pile))
    rows, cols = np.nonzero(cmp.changed)
    assert len(rows) >= 30
    # 256-wide analysis grid of 8-px blocks = 20-px blocks at 640: the pile spans x 150-320, y 360-450
    assert cols.min() * 20 >= 130 and (cols.max() + 1) * 20 <= 340
    assert rows.min() * 20 >= 340 and (rows.max() + 1) * 20 <= 470
    # still a change at dusk
    assert compare_blocks(to_small_grey(a), to_small_grey(scale(pile, 0.5))).changed.sum() >= 25


def run(det, frames):
    out = None
    for t, img in frames:
        out = det.update(img, T0 + t)
    return out


def test_detector_static_clutter_in_zone_and_never_learned_away(photos):
    a, _, pile = photos
    det = ChangeDetector("cam", static_s=10, zones=[LANE])
    assert det.update(a, T0) is None  # no reference: nothing to compare with
    det.set_reference(a, {"captured_ms": 1})
    cf = run(det, [(0, a), (10, a), (20, pile)])
    zmask = polygon_mask(LANE, 640, 480)
    assert not det.zone(cf, zmask).present  # just appeared: not static yet
    cf = run(det, [(30, pile), (40, pile)])
    zc = det.zone(cf, zmask)
    assert zc.present and zc.since == T0 + 20 and not zc.uncertain
    x1, y1, x2, y2 = zc.box
    assert 120 <= x1 and x2 <= 340 and 340 <= y1 and y2 <= 480
    assert not det.zone(cf, zmask, exclude=[(100, 300, 400, 480)]).present  # e.g. a person standing there
    # an hour later (reference adapting all the time) the pile is still there
    cf = run(det, [(40 + 60 * i, scale(pile, 1.0 - 0.004 * i)) for i in range(60)])
    assert det.zone(cf, zmask).present
    # taken away: clear at once
    cf = run(det, [(4000, a), (4010, a)])
    assert not det.zone(cf, zmask).present and cf.static.sum() <= 2  # edge blocks partly adapted: below min_cells


def test_moving_things_are_not_static(photos):
    a, _, _ = photos
    bags = cv2.resize(cv2.imread(str(DATA / "usls_trash_bags.jpg")), (640, 427))[250:380, 140:330]
    det = ChangeDetector("cam", static_s=10, zones=[LANE])
    det.set_reference(a, {})
    zmask = polygon_mask(LANE, 640, 480)
    for i in range(12):  # something dark sliding through the lane, a new place every 5 s
        img = a.copy()
        x = 20 + 40 * i
        img[360:450, x:x + 120] = cv2.resize(bags, (120, 90))
        cf = det.update(img, T0 + 5 * i)
        assert not det.zone(cf, zmask).present, i


def test_camera_moved_or_swamped_frame_is_uncertain(photos):
    a, b, pile = photos
    det = ChangeDetector("cam", zones=[LANE])
    det.set_reference(a, {})
    assert det.update(b, T0).uncertain  # another viewpoint: everything outside the lane changed too
    assert det.update(scale(b, 0.25), T0 + 10).uncertain
    assert not det.update(pile, T0 + 20).uncertain
    assert det.update(np.zeros_like(a), T0 + 30).uncertain  # black frame: nothing can be judged


def test_bad_frames_are_counted_not_raised(photos):
    a = photos[0]
    det = ChangeDetector("cam")
    det.set_reference(a, {})
    assert det.update(np.zeros((4, 4, 3), np.uint8), T0) is None
    assert det.update(cv2.resize(a, (640, 640)), T0) is None  # other aspect ratio than the reference
    assert det.stats["bad_frames"] == 2


def test_reference_round_trip_through_the_store(tmp_path, photos):
    a, _, pile = photos
    store = Store(tmp_path / "edge.db")
    try:
        info = save_reference(store, "cam1", a, by="installer wang", now_ms=1234)
        assert info == {"camera": "cam1", "by": "installer wang", "captured_ms": 1234, "frame_size": [640, 480],
                        "note": None, "width": 256, "block": 8}
        rec = load_reference(store, "cam1")
        det = ChangeDetector("cam1", static_s=0, zones=[LANE])
        det.load_record(rec)
        assert det.reference_info["by"] == "installer wang"
        assert np.abs(det.reference - to_small_grey(a)).max() <= 1.0  # PNG keeps it (8-bit rounding only)
        assert det.update(a, T0).changed.sum() == 0
        assert det.update(pile, T0 + 5).changed.sum() >= 30
        assert load_reference(store, "cam2") is None
    finally:
        store.close()


def test_patch_follows_the_object_not_the_light(photos):
    a, b, _ = photos
    g_b = to_small_grey(b)
    bike = (123.0, 344.0, 216.0, 401.0)
    patch = take_patch(g_b, bike, 640, 480)
    assert patch_matches(patch, to_small_grey(scale(b, 0.35)))
    assert patch_matches(patch, to_small_grey(scale(b, 1.6)))
    assert not patch_matches(patch, to_small_grey(a))
