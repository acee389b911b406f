"""Evidence snapshots: an annotated JPEG per alerting event (zone outline, box, label, duration).

Local evidence keeps the original picture (the property manager needs to see who/what). A second copy with
people's heads blurred is stored beside it for anything that leaves the gateway (privacy law): the uplink and
push channels call `media_for_upload()`. The blur itself is `edge.privacy` when that module is present, else
the small helper below -- one function to swap.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from edge.events import MediaRef, uuid7

from .zones import polygon_px

log = logging.getLogger("edge.analytics.evidence")

JPEG_QUALITY = 85
PUBLIC_SUFFIX = "-public"
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
    people: list[tuple[float, float, float, float]] = dataclasses.field(default_factory=list)  # for the blur
    role: str = "evidence"


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


# ---- privacy --------------------------------------------------------------------------------------------------------
def _own_blur(img: np.ndarray, people: Sequence[Sequence[float]]) -> np.ndarray:
    """Blur the head region of every detected person (top third of the box, a little wider).

    The COCO detector finds people reliably but has no face class, and OpenCV's headless wheel ships no face
    cascade; the top of a person box is where the face is in a camera looking down at a lane or a bin station.
    """
    out = img.copy()
    h, w = out.shape[:2]
    for b in people:
        x1, y1, x2, y2 = (float(v) for v in b)
        bw, bh = x2 - x1, y2 - y1
        hx1, hx2 = int(max(0, x1 - 0.1 * bw)), int(min(w, x2 + 0.1 * bw))
        hy1, hy2 = int(max(0, y1 - 0.05 * bh)), int(min(h, y1 + 0.35 * bh))
        if hx2 - hx1 < 2 or hy2 - hy1 < 2:
            continue
        roi = out[hy1:hy2, hx1:hx2]
        k = max(3, (min(roi.shape[:2]) // 3) | 1)
        out[hy1:hy2, hx1:hx2] = cv2.GaussianBlur(roi, (k, k), 0)
    return out


def blur_people(img: np.ndarray, people: Sequence[Sequence[float]]) -> np.ndarray:
    try:
        from edge import privacy  # written by the cloud bridge; preferred when present
    except ImportError:
        privacy = None
    fn = getattr(privacy, "blur_faces", None) if privacy is not None else None
    if fn is not None:
        try:
            return fn(img, people=people)
        except TypeError:
            return fn(img)
        except Exception:
            log.exception("edge.privacy.blur_faces failed; using the built-in head blur")
    return _own_blur(img, people)


# ---- storing -------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class StoredEvidence:
    ref: MediaRef
    jpeg: bytes
    public_id: str | None


def prepare(snap: Snapshot, blur_upload: bool = True) -> tuple[bytes, bytes | None]:
    """(original annotated JPEG, public JPEG with heads blurred or None)."""
    annotated = render(snap)
    original = encode_jpeg(annotated)
    public = None
    if blur_upload:
        public = encode_jpeg(render(dataclasses.replace(snap, frame=blur_people(snap.frame, snap.people))))
    return original, public


def media_ref(media_id: str, jpeg: bytes, role: str = "evidence") -> MediaRef:
    return MediaRef(media_id, "image/jpeg", role, len(jpeg), hashlib.sha256(jpeg).hexdigest())


def new_media_id(ts_ms: int | None = None) -> str:
    return uuid7(ts_ms)


def store_evidence(store, media_id: str, original: bytes, public: bytes | None, event_id: str) -> None:
    """Synchronous (runs on the store thread): the original, and the blurred copy for uploads."""
    store.add_media(media_id, original, role="evidence", event_id=event_id)
    if public is not None:
        store.add_media(media_id + PUBLIC_SUFFIX, public, role="evidence_public", event_id=event_id)


def media_for_upload(store, media_id: str, blur: bool = True) -> tuple[dict[str, Any], bytes] | None:
    """What may leave the gateway for an evidence image: the blurred copy when blurring is on."""
    if not blur:
        return store.get_media(media_id)
    if media_id.endswith(PUBLIC_SUFFIX):
        return store.get_media(media_id)
    pub = store.get_media(media_id + PUBLIC_SUFFIX)
    if pub is not None:
        return pub
    got = store.get_media(media_id)
    if got is None:
        return None
    row, data = got
    if row.get("role") != "evidence":
        return got
    # no public copy (stored before blurring was switched on): never send the original, blur the whole picture
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    k = (max(img.shape[:2]) // 20) | 1
    return dict(row, role="evidence_public"), encode_jpeg(cv2.GaussianBlur(img, (k, k), 0))
