"""Class-aware non-maximum suppression in numpy.

Hand-written because onnxruntime has no NMS outside a graph and OpenCV's NMSBoxesBatched takes
x, y, w, h lists and a score threshold per call; this is ~25 lines, vectorised per kept box, and the
tests cross-check it against cv2.dnn.NMSBoxesBatched.
Class-aware = boxes of different classes never suppress each other (done with the usual trick of
shifting every class into its own coordinate range, so one greedy pass handles all classes).
"""
from __future__ import annotations

import numpy as np


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x1,y1,x2,y2 box against [N, 4] boxes."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int | None = None) -> np.ndarray:
    """Greedy NMS, class-agnostic. Returns indices of kept boxes, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        if max_out is not None and len(keep) >= max_out:
            break
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float,
                max_out: int | None = None) -> np.ndarray:
    """Class-aware NMS: indices of kept boxes, best score first."""
    if len(boxes) == 0:
        return np.zeros((0,), dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.float64)
    span = float(boxes.max() - min(boxes.min(), 0.0)) + 1.0
    shifted = boxes + (np.asarray(class_ids, dtype=np.float64) * span)[:, None]
    return nms(shifted, np.asarray(scores), iou_threshold, max_out)
