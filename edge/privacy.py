"""Face blurring for images that leave the gateway (uplink media, snapshots).

Rule: an image is uploaded only after blurring succeeded; any failure (undecodable image, no detector) raises
PrivacyError and the caller does not upload.

Detector: OpenCV's frontal-face Haar cascade. With OpenCV 4.x it is `cv2.CascadeClassifier` on the file in
`cv2.data.haarcascades`. OpenCV 5 wheels dropped both the legacy cascade API and the bundled XML files, so for
them the same cascade file (copied from the opencv-python 4.x wheel, Intel licence text inside the file) is
evaluated here with numpy: integral images, the cascade's stumps stage by stage over all windows of a scale
at once, then OpenCV-style rectangle grouping. Hand-written because no maintained package on the registries
ships a face detector with its weights for OpenCV 5 (YuNet needs a model file that none of them carries).
"""
from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"
_BUNDLED = Path(__file__).resolve().parents[1] / "cloud_bridge" / "data" / CASCADE
DETECT_WIDTH = 640  # faces are searched on a copy at most this wide (blur is applied at full resolution)


class PrivacyError(Exception):
    pass


def _cascade_path() -> Path:
    import cv2

    for d in (getattr(getattr(cv2, "data", None), "haarcascades", None), "/usr/share/opencv4/haarcascades",
              "/usr/share/opencv/haarcascades"):
        if d and (Path(d) / CASCADE).exists():
            return Path(d) / CASCADE
    if _BUNDLED.exists():
        return _BUNDLED
    raise PrivacyError(f"face detector missing: {CASCADE} not found")


@dataclass
class _Stage:
    threshold: float
    feat: np.ndarray  # (n_weak,) feature index
    thr: np.ndarray  # (n_weak,) node threshold
    left: np.ndarray  # (n_weak,) leaf value if below
    right: np.ndarray


class HaarCascade:
    """Stump-based Haar cascade (OpenCV XML, new format) evaluated with numpy."""

    def __init__(self, path: Path):
        root = ET.parse(path).getroot().find("cascade")
        if root is None or root.findtext("featureType", "").strip() != "HAAR":
            raise PrivacyError(f"{path} is not a HAAR cascade")
        self.w = int(root.findtext("width"))
        self.h = int(root.findtext("height"))
        self.stages: list[_Stage] = []
        for st in root.find("stages"):
            feats, thrs, lefts, rights = [], [], [], []
            for wc in st.find("weakClassifiers"):
                nodes = wc.findtext("internalNodes").split()
                leaves = [float(v) for v in wc.findtext("leafValues").split()]
                if len(nodes) != 4 or len(leaves) != 2:
                    raise PrivacyError("only stump cascades are supported")
                feats.append(int(nodes[2]))
                thrs.append(float(nodes[3]))
                lefts.append(leaves[0])
                rights.append(leaves[1])
            self.stages.append(_Stage(float(st.findtext("stageThreshold")), np.array(feats), np.array(thrs),
                                      np.array(lefts), np.array(rights)))
        self.features: list[list[tuple[int, int, int, int, float]]] = []
        for f in root.find("features"):
            if f.findtext("tilted", "0").strip() == "1":
                raise PrivacyError("tilted features are not supported")
            rects = []
            for r in f.find("rects"):
                x, y, w, h, wt = r.text.split()
                rects.append((int(x), int(y), int(w), int(h), float(wt)))
            self.features.append(rects)
        self._offset_cache: dict[int, list] = {}
        self._pack()

    def _pack(self) -> None:
        """Per stage: rect geometry (weak, 3, 4 = x, y, w, h) and weights (weak, 3), node thresholds, leaf
        values; two-rect features get a zero-weight third rect."""
        self._stages = []
        for st in self.stages:
            geo = np.zeros((len(st.feat), 3, 4), np.int64)
            wts = np.zeros((len(st.feat), 3), np.float32)
            for k, fi in enumerate(st.feat):
                for r, (x, y, w, h, wt) in enumerate(self.features[fi]):
                    geo[k, r] = (x, y, w, h)
                    wts[k, r] = wt
            self._stages.append((geo, wts, st.thr.astype(np.float32), st.left.astype(np.float32),
                                 st.right.astype(np.float32), np.float32(st.threshold)))

    def _offsets(self, stride: int) -> list[tuple]:
        """Corner offsets into the flattened integral image for this pyramid level's row stride."""
        cached = self._offset_cache.get(stride)
        if cached is None:
            cached = []
            for geo, wts, thr, lv, rv, sthr in self._stages:
                x, y, w, h = geo[..., 0], geo[..., 1], geo[..., 2], geo[..., 3]
                o = y * stride + x
                offs = np.stack([o, o + w, o + h * stride, o + h * stride + w], axis=-1)
                cached.append((offs, wts, thr, lv, rv, sthr))
            if len(self._offset_cache) > 32:
                self._offset_cache.clear()
            self._offset_cache[stride] = cached
        return cached

    def _detect_scale(self, gray: np.ndarray, step: int) -> np.ndarray:
        """All windows of one pyramid level that pass every stage -> (n, 2) top-left corners."""
        H, W = gray.shape
        if H < self.h or W < self.w:
            return np.empty((0, 2), int)
        img = gray.astype(np.int64)
        # int32 sums are exact up to 8.4 Mpx of white and halve the memory the gathers touch
        ii = np.zeros((H + 1, W + 1), np.int32)
        ii[1:, 1:] = img.cumsum(0).cumsum(1)
        sq = np.zeros((H + 1, W + 1), np.float64)
        sq[1:, 1:] = (img * img).cumsum(0).cumsum(1)
        stride = W + 1
        ys, xs = np.mgrid[0:H - self.h + 1:step, 0:W - self.w + 1:step]
        base = (ys * stride + xs).ravel()
        iif, sqf = ii.ravel(), sq.ravel()

        def rsum(arr, b, x, y, w, h):
            o = y * stride + x
            return arr[b + o] - arr[b + o + w] - arr[b + o + h * stride] + arr[b + o + h * stride + w]

        # variance normalisation over the inner window (OpenCV's normrect: 1 px border)
        area = (self.w - 2) * (self.h - 2)
        s = rsum(iif, base, 1, 1, self.w - 2, self.h - 2).astype(np.float64)
        q = rsum(sqf, base, 1, 1, self.w - 2, self.h - 2)
        nf = area * q - s * s
        nf = np.where(nf > 0, np.sqrt(np.maximum(nf, 0)), 1.0).astype(np.float32)
        stages = self._offsets(stride)
        # early stages see almost every window: evaluate them on the whole grid with strided slices of the
        # integral image (no gather), until few enough windows survive for per-window gathers to be cheaper
        ny, nx = ys.shape
        nf_grid = nf.reshape(ny, nx)
        alive = np.ones((ny, nx), bool)
        first = 0
        for geo, wts, thr, lv, rv, sthr in self._stages:
            if alive.mean() < 0.2:
                break
            total = np.zeros((ny, nx), np.float32)
            for k in range(len(thr)):
                val = np.zeros((ny, nx), np.float32)
                for r in range(3):
                    wt = wts[k, r]
                    if wt == 0:
                        continue
                    x, y, w, h = (int(v) for v in geo[k, r])

                    def at(dy, dx):
                        return ii[y + dy: y + dy + (ny - 1) * step + 1: step, x + dx: x + dx + (nx - 1) * step + 1: step]

                    val += wt * (at(0, 0) - at(0, w) - at(h, 0) + at(h, w)).astype(np.float32)
                total += np.where(val < thr[k] * nf_grid, lv[k], rv[k])
            alive &= total >= sthr
            first += 1
        keep = alive.ravel()
        base, nf = base[keep], nf[keep]
        for st in stages[first:]:
            if base.size == 0:
                break
            offs, wts, thr, lv, rv, sthr = st
            # all corners of all rects of all weak classifiers of this stage, for every window, in one gather
            c = iif[base[:, None, None, None] + offs[None]]  # (N, weak, 3 rects, 4 corners)
            rs = (c[..., 0] - c[..., 1] - c[..., 2] + c[..., 3]).astype(np.float32)
            val = (rs * wts[None]).sum(axis=2)  # (N, weak)
            total = np.where(val < thr[None] * nf[:, None], lv[None], rv[None]).sum(axis=1)
            keep = total >= sthr
            base, nf = base[keep], nf[keep]
        return np.stack([base % stride, base // stride], axis=1) if base.size else np.empty((0, 2), int)

    def detect(self, gray: np.ndarray, scale_factor: float = 1.2, min_neighbors: int = 2,
               min_size: int = 24) -> list[tuple[int, int, int, int]]:
        import cv2

        H, W = gray.shape
        cands: list[tuple[int, int, int, int]] = []
        factor = 1.0
        while True:
            sw, sh = int(round(W / factor)), int(round(H / factor))
            if sw < self.w or sh < self.h:
                break
            if self.w * factor >= min_size:
                level = gray if factor == 1.0 else cv2.resize(gray, (sw, sh), interpolation=cv2.INTER_LINEAR)
                step = 1 if factor > 2.0 else 2
                for x, y in self._detect_scale(level, step):
                    cands.append((int(x * factor), int(y * factor), int(self.w * factor), int(self.h * factor)))
            factor *= scale_factor
        return group_rectangles(cands, min_neighbors)


def group_rectangles(rects: list[tuple[int, int, int, int]], min_neighbors: int, eps: float = 0.2):
    """OpenCV's groupRectangles: cluster similar rectangles, keep clusters with more than min_neighbors."""
    n = len(rects)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        xi, yi, wi, hi = rects[i]
        for j in range(i + 1, n):
            xj, yj, wj, hj = rects[j]
            delta = eps * (min(wi, wj) + min(hi, hj)) * 0.5
            if abs(xi - xj) <= delta and abs(yi - yj) <= delta and abs(xi + wi - xj - wj) <= delta \
                    and abs(yi + hi - yj - hj) <= delta:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in groups.values():
        if len(members) <= min_neighbors:
            continue
        a = np.array([rects[m] for m in members], float).mean(0)
        out.append(tuple(int(round(v)) for v in a))
    return out


@functools.lru_cache(maxsize=1)
def _detector():
    import cv2

    path = _cascade_path()
    if hasattr(cv2, "CascadeClassifier"):
        clf = cv2.CascadeClassifier(str(path))
        if clf.empty():
            raise PrivacyError(f"cannot load {path}")
        return lambda gray: [tuple(map(int, r)) for r in clf.detectMultiScale(gray, 1.2, 2, minSize=(24, 24))]
    try:
        cascade = HaarCascade(path)
    except (ET.ParseError, OSError, ValueError, TypeError, AttributeError) as exc:
        raise PrivacyError(f"cannot load {path}: {exc}") from None
    return cascade.detect


def find_faces(bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in the image's own pixels."""
    import cv2

    h, w = bgr.shape[:2]
    scale = min(1.0, DETECT_WIDTH / float(w))
    small = cv2.resize(bgr, (int(w * scale), int(h * scale))) if scale < 1.0 else bgr
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    return [(int(x / scale), int(y / scale), int(fw / scale), int(fh / scale)) for x, y, fw, fh in _detector()(gray)]


def blur_faces(jpeg: bytes, quality: int = 85) -> tuple[bytes, int]:
    """Decode, blur every detected face (box grown by 20%), re-encode (which also drops EXIF).
    Returns (jpeg, number of faces). Raises PrivacyError when that cannot be done."""
    import cv2

    if not jpeg:
        raise PrivacyError("empty image")
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise PrivacyError("image cannot be decoded")
    try:
        faces = find_faces(img)
    except PrivacyError:
        raise
    except Exception as exc:  # a detector failure must never let an unblurred image out
        raise PrivacyError(f"face detection failed: {type(exc).__name__}: {exc}") from None
    H, W = img.shape[:2]
    for x, y, w, h in faces:
        gx, gy = int(w * 0.2), int(h * 0.2)
        x0, y0, x1, y1 = max(0, x - gx), max(0, y - gy), min(W, x + w + gx), min(H, y + h + gy)
        roi = img[y0:y1, x0:x1]
        if roi.size:
            k = max(3, (min(roi.shape[:2]) // 3) | 1)
            img[y0:y1, x0:x1] = cv2.GaussianBlur(roi, (k, k), 0)
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise PrivacyError("JPEG encoding failed")
    return buf.tobytes(), len(faces)


def fit_jpeg(jpeg: bytes, max_bytes: int) -> bytes | None:
    """The image itself if small enough, else re-encoded at lower quality / smaller size; None if it never fits."""
    import cv2

    if len(jpeg) <= max_bytes:
        return jpeg
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    for _ in range(8):
        for q in (80, 65, 50):
            ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), q])
            if ok and len(buf) <= max_bytes:
                return buf.tobytes()
        if min(img.shape[:2]) < 160:
            return None
        img = cv2.resize(img, (int(img.shape[1] * 0.75), int(img.shape[0] * 0.75)), interpolation=cv2.INTER_AREA)
    return None
