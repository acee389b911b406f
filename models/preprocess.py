"""Image -> model input tensor, and the way back from model-input pixels to original pixels.

Letterboxing follows ultralytics' LetterBox (scale to fit, centre, pad with 114 grey, padding split with
round(d - 0.1) / round(d + 0.1)), so boxes from YOLO exports land where ultralytics itself puts them.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Transform:
    """How an original image was mapped into the model input: input = original * scale + pad."""
    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    orig_w: int
    orig_h: int

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """[N, 4] x1,y1,x2,y2 in model-input pixels -> original pixels, clipped to the image."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, [0, 2]] = (boxes[:, [0, 2]] - self.pad_x) / self.scale_x
        out[:, [1, 3]] = (boxes[:, [1, 3]] - self.pad_y) / self.scale_y
        out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, self.orig_w)
        out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, self.orig_h)
        return out


def letterbox(img: np.ndarray, width: int, height: int, pad_value: int = 114) -> tuple[np.ndarray, Transform]:
    """Resize keeping the aspect ratio, centre, pad the rest."""
    h0, w0 = img.shape[:2]
    r = min(width / w0, height / h0)
    new_w, new_h = int(round(w0 * r)), int(round(h0 * r))
    if (new_w, new_h) != (w0, h0):
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = (width - new_w) / 2, (height - new_h) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    out = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return out, Transform(new_w / w0, new_h / h0, float(left), float(top), w0, h0)


def stretch(img: np.ndarray, width: int, height: int) -> tuple[np.ndarray, Transform]:
    """Plain resize to the input size (aspect ratio not kept) -- what SSD/CenterNet/NanoDet were trained with."""
    h0, w0 = img.shape[:2]
    if (w0, h0) != (width, height):
        img = cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)
    return img, Transform(width / w0, height / h0, 0.0, 0.0, w0, h0)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Accept what OpenCV gives (BGR, grey, BGRA); reject anything else with a clear message."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.size == 0 or image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
        raise ValueError(f"image has unusable shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (8-bit), got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 3:
        return image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    raise ValueError(f"image has {channels} channels; expected 1, 3 (BGR) or 4 (BGRA)")
