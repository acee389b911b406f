"""Zone geometry in frame pixels: polygon masks, footprints, overlaps, block grids.

Zones are configured in normalised coordinates (fractions of the image) so they survive a change of the
detect resolution; everything here converts them once per frame size and caches the result.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import cv2
import numpy as np

Box = tuple[float, float, float, float]


def polygon_px(polygon: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    """Normalised [[x, y], ...] -> int32 pixel polygon (N, 2)."""
    pts = np.asarray(polygon, np.float64).reshape(-1, 2)
    pts = pts * np.array([width - 1, height - 1], np.float64)
    return np.round(pts).astype(np.int32)


@lru_cache(maxsize=256)
def _mask_cached(polygon: tuple[tuple[float, float], ...], width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [polygon_px(polygon, width, height)], 1)
    mask.setflags(write=False)
    return mask


def polygon_mask(polygon: Sequence[Sequence[float]], width: int, height: int) -> np.ndarray:
    """uint8 mask (1 inside the polygon) of a width x height frame; cached, read-only."""
    return _mask_cached(tuple((float(x), float(y)) for x, y in polygon), int(width), int(height))


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box)
    x1, x2 = sorted((max(0, min(width, x1)), max(0, min(width, x2))))
    y1, y2 = sorted((max(0, min(height, y1)), max(0, min(height, y2))))
    return int(x1), int(y1), int(round(x2)), int(round(y2))


def box_area(box: Sequence[float]) -> float:
    return max(0.0, float(box[2]) - float(box[0])) * max(0.0, float(box[3]) - float(box[1]))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, w) * max(0.0, h)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def covered_fraction(box: Sequence[float], by: Sequence[float]) -> float:
    """Share of `box`'s area that `by` covers (how much of a parked car a passer-by hides)."""
    w = min(box[2], by[2]) - max(box[0], by[0])
    h = min(box[3], by[3]) - max(box[1], by[1])
    area = box_area(box)
    return max(0.0, w) * max(0.0, h) / area if area > 0 else 0.0


def union_box(boxes: Iterable[Sequence[float]]) -> Box | None:
    boxes = list(boxes)
    if not boxes:
        return None
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


class ZoneShape:
    """One zone polygon at one frame size, minus the camera's mask zones."""

    def __init__(self, polygon: Sequence[Sequence[float]], width: int, height: int,
                 masks: Iterable[Sequence[Sequence[float]]] = ()):
        self.width, self.height = int(width), int(height)
        self.polygon = [tuple(p) for p in polygon]
        self.points = polygon_px(polygon, width, height)
        mask = polygon_mask(polygon, width, height).copy()
        for m in masks:
            mask[polygon_mask(m, width, height) > 0] = 0
        self.mask = mask
        self.area = int(mask.sum())
        ys, xs = np.nonzero(mask)
        self.bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0)

    def contains(self, x: float, y: float) -> bool:
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < self.width and 0 <= yi < self.height):
            return False
        return bool(self.mask[yi, xi])

    def overlap(self, box: Sequence[float]) -> float:
        """Fraction of the box's area inside the zone (0..1)."""
        x1, y1, x2, y2 = clip_box(box, self.width, self.height)
        full = box_area(box)
        if full <= 0 or x2 <= x1 or y2 <= y1:
            return 0.0
        return float(self.mask[y1:y2, x1:x2].sum()) / full

    def footprint_inside(self, box: Sequence[float], min_overlap: float) -> bool:
        """Where the object stands: bottom-centre of the box in the zone, or enough of its area inside.

        The bottom centre is where a vehicle touches the ground, which is what blocks a lane in a perspective
        view; the area test catches objects whose bottom edge is hidden or cut off by the image border.
        """
        x1, _, x2, y2 = box[0], box[1], box[2], box[3]
        foot_y = min(float(y2), self.height - 1.0) - 1.0
        return self.contains((x1 + x2) / 2, foot_y) or self.overlap(box) >= min_overlap


def block_grid_mask(mask: np.ndarray, grid_h: int, grid_w: int, min_fill: float = 0.5) -> np.ndarray:
    """Which cells of a grid_h x grid_w block grid are (mostly) inside a full-resolution mask."""
    small = cv2.resize(mask.astype(np.float32), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
    return small >= min_fill


def box_to_cells(box: Sequence[float], width: int, height: int, grid_h: int, grid_w: int) -> tuple[int, int, int, int]:
    """Grid cells (c1, r1, c2, r2; end-exclusive) a pixel box touches."""
    x1, y1, x2, y2 = clip_box(box, width, height)
    c1 = int(x1 * grid_w / width)
    r1 = int(y1 * grid_h / height)
    c2 = min(grid_w, int(np.ceil(x2 * grid_w / width)))
    r2 = min(grid_h, int(np.ceil(y2 * grid_h / height)))
    return c1, r1, max(c2, c1 + 1), max(r2, r1 + 1)


def cells_to_box(cells: np.ndarray, width: int, height: int) -> Box | None:
    """Pixel bounding box of the True cells of a grid."""
    rows, cols = np.nonzero(cells)
    if len(rows) == 0:
        return None
    gh, gw = cells.shape
    return (float(cols.min() * width / gw), float(rows.min() * height / gh),
            float((cols.max() + 1) * width / gw), float((rows.max() + 1) * height / gh))
