"""Class-aware NMS, the letterbox helper and the way back to original pixels."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.nms import batched_nms, box_iou, nms
from models.preprocess import letterbox, stretch


def test_box_iou_known_values():
    b = np.array([0, 0, 10, 10], np.float32)
    others = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [10, 10, 20, 20], [20, 20, 30, 30], [3, 3, 3, 3]], np.float32)
    np.testing.assert_allclose(box_iou(b, others), [1.0, 50 / 150, 0.0, 0.0, 0.0])


def test_nms_suppresses_overlap_keeps_order():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.6, 0.9, 0.5, 0.3], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]
    assert nms(boxes, scores, 0.5, max_out=1).tolist() == [1]


def test_batched_nms_is_class_aware():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    classes = np.array([3, 8, 3])
    # the car (3) and truck (8) on the same box both stay; the second car box goes
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0.5).tolist() == []


@pytest.mark.parametrize("seed", range(5))
def test_matches_opencv_nmsboxesbatched(seed):
    rng = np.random.default_rng(seed)
    n = 300
    xy = rng.uniform(0, 600, (n, 2))
    wh = rng.uniform(10, 120, (n, 2))
    boxes = np.hstack([xy, xy + wh]).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    classes = rng.integers(0, 4, n)
    ours = batched_nms(boxes, scores, classes, 0.45)
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    ref = cv2.dnn.NMSBoxesBatched(xywh, scores.tolist(), classes.tolist(), 0.0, 0.45)
    assert sorted(ours.tolist()) == sorted(np.asarray(ref).reshape(-1).tolist())


def test_letterbox_matches_ultralytics_geometry():
    img = np.full((720, 1280, 3), 200, np.uint8)
    out, tf = letterbox(img, 640, 640)
    assert out.shape == (640, 640, 3)
    assert (tf.scale_x, tf.scale_y, tf.pad_x, tf.pad_y) == (0.5, 0.5, 0.0, 140.0)
    assert (out[:140] == 114).all() and (out[500:] == 114).all() and (out[140:500] == 200).all()
    # model-input box -> original pixels, clipped to the image
    boxes = np.array([[50, 240, 150, 340], [-10, 100, 700, 200]], np.float32)
    np.testing.assert_allclose(tf.to_original(boxes), [[100, 200, 300, 400], [0, 0, 1280, 120]])


def test_letterbox_odd_padding_and_portrait():
    img = np.zeros((101, 50, 3), np.uint8)
    out, tf = letterbox(img, 64, 64, pad_value=0)
    assert out.shape == (64, 64, 3)
    assert tf.pad_y == 0 and tf.pad_x == pytest.approx((64 - round(50 * 64 / 101)) / 2, abs=0.5)


def test_stretch_transform():
    img = np.zeros((600, 900, 3), np.uint8)
    out, tf = stretch(img, 300, 300)
    assert out.shape == (300, 300, 3)
    np.testing.assert_allclose(tf.to_original(np.array([[30, 60, 150, 300]], np.float32)), [[90, 120, 450, 600]])
