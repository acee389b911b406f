"""Evidence snapshots: an annotated JPEG per alerting event (zone outline, box, label, duration).

Local evidence keeps the original picture (the property manager needs to see who/what) for
alerts.evidence_retention_days (the retention component deletes older media). Nothing here blurs: whatever
leaves the gateway goes through cloud_bridge/media.py, which blurs faces with edge.privacy before upload
(alerts.blur_faces_upload) and refuses to upload when blurring fails -- one place for the privacy rule.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import cv2
import numpy as np

from edge.events import MediaRef, uuid7

from .zones import polygon_px

JPEG_QUALITY = 85
COLOURS = {"zone": (0, 200, 255), "object": (0, 0, 255), "unknown": (255, 0, 255), "person": (255, 160, 0),
           "text": (255, 255, 255)}


@dataclasses.dataclass
class Mark:
    box: tuple[float, float, float, float]
    label: str
    colour: tuple[int, int, int] = COLOURS["object"]


@dataclasses.dataclass
class Snapshot:
    """What to draw: the frame (BGR, not modified), zone polygons (normalised), boxes and caption lines."""

    frame: np.ndarray
    zones: list[tuple[str, Sequence[Sequence[float]]]] = dataclasses.field(default_factory=list)
    marks: list[Mark] = dataclasses.field(default_factory=list)
    caption: list[str] = dataclasses.field(default_factory=list)
    people: list[tuple[float, float, float, float]] = dataclasses.field(default_factory=list)


def render(snap: Snapshot) -> np.ndarray:
    img = snap.frame.copy()
    h, w = img.shape[:2]
    thick = max(1, round(w / 320))
    font_scale = max(0.4, w / 1280)
    for name, poly in snap.zones:
        pts = polygon_px(poly, w, h)
        overlay = img.copy()
        cv2.fillPoly(overlay, [pts], COLOURS["zone"])
        cv2.addWeighted(overlay, 0.15, img, 0.85, 0, img)
        cv2.polylines(img, [pts], True, COLOURS["zone"], thick, cv2.LINE_AA)
        x, y = pts[:, 0].min(), pts[:, 1].min()
        _text(img, name, (int(x) + 3, max(12, int(y) - 4)), font_scale, COLOURS["zone"])
    for m in snap.marks:
        x1, y1, x2, y2 = (int(round(v)) for v in m.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), m.colour, thick + 1, cv2.LINE_AA)
        _text(img, m.label, (x1 + 2, max(12, y1 - 5)), font_scale, m.colour)
    y = int(18 * font_scale / 0.5)
    for line in snap.caption:
        _text(img, line, (6, y), font_scale * 1.1, COLOURS["text"])
        y += int(20 * font_scale / 0.5)
    return img


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour) -> None:
    # OpenCV's Hershey fonts are ASCII only; zone names may be Chinese, so non-ASCII is replaced, not mangled
    # A dark box behind the text, not a thick black outline: glyph advance depends on thickness in OpenCV 5,
    # so outline and fill drawn at different thicknesses do not line up.
    safe = text.encode("ascii", "replace").decode("ascii")
    (tw, th), base = cv2.getTextSize(safe, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = org
    x1, y1, x2, y2 = max(0, x - 2), max(0, y - th - 3), min(img.shape[1], x + tw + 2), min(img.shape[0], y + base + 1)
    if x2 > x1 and y2 > y1:
        img[y1:y2, x1:x2] = (img[y1:y2, x1:x2] * 0.35).astype(img.dtype)
    cv2.putText(img, safe, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def encode_jpeg(img: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


# ---- storing -------------------------------------------------------------------------------------------------------
def media_ref(media_id: str, jpeg: bytes, role: str = "evidence") -> MediaRef:
    return MediaRef(media_id, "image/jpeg", role, len(jpeg), hashlib.sha256(jpeg).hexdigest())


def new_media_id(ts_ms: int | None = None) -> str:
    return uuid7(ts_ms)


def annotated_jpeg(snap: Snapshot) -> bytes:
    return encode_jpeg(render(snap))


def store_evidence(store, media_id: str, jpeg: bytes, event_id: str) -> None:
    """Synchronous (runs on the store thread)."""
    store.add_media(media_id, jpeg, role="evidence", event_id=event_id)
