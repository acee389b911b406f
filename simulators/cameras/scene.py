"""What a simulated camera shows: frames of a real video file, or a scripted scene (images with durations).

Frames are BGR arrays at one resolution; `jpeg(i)` caches the encoding so serving many clients costs one
encode per distinct frame. `stamp=True` paints the frame number into the top rows as a row of black/white
squares (survives JPEG and H.264), so tests can tell which frame a consumer received.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

STAMP_BITS = 16
STAMP_CELL = 12  # pixels per bit square


def stamp(img: np.ndarray, number: int) -> np.ndarray:
    out = img.copy()
    for bit in range(STAMP_BITS):
        v = 255 if (number >> bit) & 1 else 0
        out[0:STAMP_CELL, bit * STAMP_CELL:(bit + 1) * STAMP_CELL] = v
    return out


def read_stamp(img: np.ndarray, source_width: int | None = None) -> int:
    """The number painted by stamp(), read back from a decoded frame (resized from `source_width`)."""
    scale = img.shape[1] / source_width if source_width else 1.0
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    n = 0
    cell = STAMP_CELL * scale
    for bit in range(STAMP_BITS):
        x0, x1 = int(bit * cell + cell * 0.25), int((bit + 1) * cell - cell * 0.25)
        y0, y1 = int(cell * 0.25), max(int(cell * 0.75), int(cell * 0.25) + 1)
        if grey[y0:y1, x0:x1].mean() > 127:
            n |= 1 << bit
    return n


@dataclasses.dataclass
class Scene:
    frames: list[np.ndarray]  # BGR, one per emitted frame (a still held for 2 s at 10 fps = 20 references)
    fps: float
    stamp: bool = False
    _jpeg: dict[int, bytes] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, number: int) -> np.ndarray:
        """Frame `number` of the endless loop (numbers keep counting across loops)."""
        img = self.frames[number % len(self.frames)]
        return stamp(img, number) if self.stamp else img

    def jpeg(self, number: int, quality: int = 80) -> bytes:
        key = number if self.stamp else id(self.frames[number % len(self.frames)])
        data = self._jpeg.get(key)
        if data is None:
            ok, buf = cv2.imencode(".jpg", self.image(number), [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise ValueError("JPEG encoding failed")
            data = buf.tobytes()
            if not self.stamp:  # stamped frames are all different; caching them would grow without bound
                self._jpeg[key] = data
        return data

    @classmethod
    def from_video(cls, path: str | Path, width: int | None = None, height: int | None = None,
                   fps: float | None = None, max_frames: int = 2000, stamp: bool = False) -> "Scene":
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise FileNotFoundError(f"cannot open video {path}")
        src_fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        frames = []
        try:
            while len(frames) < max_frames:
                ok, img = cap.read()
                if not ok:
                    break
                if width and height and (img.shape[1], img.shape[0]) != (width, height):
                    img = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
                frames.append(img)
        finally:
            cap.release()
        if not frames:
            raise ValueError(f"{path}: no decodable frames")
        return cls(frames, float(fps or src_fps), stamp)

    @classmethod
    def scripted(cls, steps: Iterable[tuple[np.ndarray | str | Path, float]], fps: float = 10.0,
                 size: tuple[int, int] | None = None, stamp: bool = False) -> "Scene":
        """[(image or path, seconds), ...] -> each image held for its duration."""
        frames: list[np.ndarray] = []
        for img, seconds in steps:
            if not isinstance(img, np.ndarray):
                path = str(img)
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise FileNotFoundError(f"cannot read image {path}")
            if size is None:
                size = (int(img.shape[1]), int(img.shape[0]))
            if (img.shape[1], img.shape[0]) != size:
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            frames.extend([img] * max(1, round(seconds * fps)))
        if not frames:
            raise ValueError("empty scene")
        return cls(frames, fps, stamp)


def brightness_ramp(img: np.ndarray, seconds: float, fps: float, start: float = 0.6,
                    end: float = 1.4) -> list[np.ndarray]:
    """The same still under a slowly changing exposure (clouds, dusk, auto-exposure)."""
    n = max(2, round(seconds * fps))
    gains: Sequence[float] = np.linspace(start, end, n)
    return [cv2.convertScaleAbs(img, alpha=float(g), beta=0) for g in gains]
