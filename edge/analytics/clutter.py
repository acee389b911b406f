"""Change detection against a learned "clear" reference: finds clutter the detector has no class for.

Boxes, furniture, piles of bags, material heaped above a bin rim: the COCO detector sees none of these, so
each camera keeps a reference image of its zones when they were clear (captured by the installer with
`capture_reference()` from the console, or `edge lane-reference` on the command line) and compares every
analysed frame with it, block by block, on a small grey copy (256 px wide, 8x8-pixel blocks).

Why blocks and normalised cross-correlation instead of pixel differences: a cloud, dusk or a lamp changes
the brightness and contrast of a block but not the *pattern* of the cobbles in it, so NCC stays high; an
object standing on the ground replaces the pattern. Flat blocks (smooth asphalt, night) carry no pattern and
are compared by their brightness after removing the frame's global gain. Three guards more:

* a block only counts as clutter once its content has stayed the same for `static_s` (traffic and people
  walking through change it from frame to frame);
* when most of the frame changes at once (camera knocked, IR switch, headlights flooding the image) the
  frame is "uncertain": nothing starts or ends on it, and the reference is not adapted;
* the reference adapts slowly (time constant `adapt_tau_s`) in the blocks that match, so the seasons and
  the sun's path do not pile up into false changes, while a pile of boxes is never learned away.

Hand-written rather than OpenCV's MOG2/KNN background subtractors: those learn *whatever stays*, so a box
left in a fire lane becomes background within minutes — the opposite of what a clutter detector needs.
"""
from __future__ import annotations

import base64
import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import Any

import cv2
import numpy as np

from .zones import Box, block_grid_mask, box_to_cells, cells_to_box

ANALYSIS_WIDTH = 256
BLOCK = 8
REFERENCE_KEY = "analytics.reference.{camera}"
MIN_OUTSIDE_BLOCKS = 20
OUTSIDE_FRACTION = 0.5


def reference_key(camera: str) -> str:
    return REFERENCE_KEY.format(camera=camera)


def to_small_grey(bgr: np.ndarray, width: int = ANALYSIS_WIDTH, block: int = BLOCK) -> np.ndarray:
    """Grey float32 copy, width x (height rounded to whole blocks), lightly blurred against codec noise."""
    if bgr is None or not hasattr(bgr, "shape") or bgr.ndim not in (2, 3) or bgr.shape[0] < 8 or bgr.shape[1] < 8:
        raise ValueError("not an image")
    h, w = bgr.shape[:2]
    sh = max(block, int(round(h * width / w / block)) * block)
    g = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    g = cv2.resize(g, (width, sh), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g, (3, 3), 0).astype(np.float32)


def _blocks(g: np.ndarray, block: int) -> np.ndarray:
    h, w = g.shape
    return g.reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3).reshape(h // block, w // block, -1)


def _local_gain(mr: np.ndarray, mc: np.ndarray) -> np.ndarray:
    """Brightness ratio per block, as the median of its 7x7-block neighbourhood.

    Light is rarely uniform (a street lamp, headlights, the low sun along a lane): a local gain follows it,
    while an object a few blocks wide cannot move the median of 49 blocks far. The median runs on the log ratio
    quantised to uint8 because OpenCV's median filter takes any kernel size only for 8-bit images.
    """
    lr = np.log(np.clip((mc + 2.0) / (mr + 2.0), 0.08, 12.0))
    q = np.clip(np.round((lr + 2.56) * 50), 0, 255).astype(np.uint8)
    med = cv2.medianBlur(q, 7).astype(np.float32) / 50 - 2.56
    return np.exp(med)


@dataclasses.dataclass
class BlockCompare:
    changed: np.ndarray  # bool grid
    gain: float
    ncc: np.ndarray
    judged: np.ndarray  # blocks that could be compared at all
    textured: np.ndarray  # judged blocks that show a pattern now (the informative ones)


def compare_blocks(ref: np.ndarray, cur: np.ndarray, *, block: int = BLOCK, valid: np.ndarray | None = None,
                   ncc_threshold: float = 0.5, texture_min: float = 4.0, gain: float | None = None) -> BlockCompare:
    """Which blocks of `cur` no longer show what `ref` shows, after discounting brightness and contrast."""
    if ref.shape != cur.shape:
        raise ValueError(f"reference {ref.shape} and frame {cur.shape} differ in size")
    R, C = _blocks(ref, block), _blocks(cur, block)
    mr, mc = R.mean(-1), C.mean(-1)
    sr, sc = R.std(-1), C.std(-1)
    if gain is None:
        ok = valid if valid is not None and valid.any() else np.ones(mr.shape, bool)
        ratio = (mc[ok] + 2.0) / (mr[ok] + 2.0)
        gain = float(np.clip(np.median(ratio), 0.15, 6.0)) if ratio.size else 1.0
        local = _local_gain(mr, mc) if min(mr.shape) >= 7 else np.full(mr.shape, gain)
    else:
        local = np.full(mr.shape, gain)
    cov = ((R - mr[..., None]) * (C - mc[..., None])).mean(-1)
    ncc = cov / (sr * sc + 1e-6)
    exp_mean = local * mr
    exp_std = local * sr
    tex_r = exp_std >= texture_min
    tex_c = sc >= texture_min
    both = tex_r & tex_c
    changed = np.zeros(mr.shape, bool)
    changed |= both & (ncc < ncc_threshold)
    # texture covered by something flat, where the lighting should still have left it visible
    changed |= tex_r & ~tex_c & (exp_std >= 2 * texture_min) & (sc < 0.35 * exp_std)
    # texture appearing on flat ground
    changed |= ~tex_r & tex_c & (sc > np.maximum(2.5 * exp_std, 2 * texture_min))
    # flat against flat, or a gross brightness change anywhere: compare brightness after the global gain
    tol = np.where(both, 45.0 + 0.35 * exp_mean, 20.0 + 0.15 * exp_mean)
    changed |= np.abs(mc - exp_mean) > tol
    # Blocks that cannot be judged: blown out or crushed, or patterned in the reference but too dark now to
    # show it (at dusk every block goes flat). They count neither as changed nor as unchanged.
    clipped = ((C >= 250).mean(-1) > 0.25) | ((C <= 3).mean(-1) > 0.5)
    hidden = (sr >= texture_min) & ~tex_r & ~tex_c
    judged = ~(clipped | hidden)
    changed &= judged
    if valid is not None:
        changed &= valid
        judged &= valid
    return BlockCompare(changed, gain, ncc, judged, tex_c & judged)


@dataclasses.dataclass
class ChangeFrame:
    """The change detector's view of one frame (grids are rows x cols of blocks)."""

    ts: float
    width: int  # frame pixels
    height: int
    changed: np.ndarray  # differs from the reference
    static: np.ndarray  # and has stayed the same for static_s
    since: np.ndarray  # when each block started to differ (nan = does not)
    uncertain: bool  # most of the frame changed at once: hold every decision
    global_fraction: float
    gain: float
    grey: np.ndarray  # the small grey frame (analysis resolution)

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self.changed.shape  # type: ignore[return-value]


@dataclasses.dataclass
class ZoneChange:
    present: bool  # static clutter in the zone (enough blocks)
    cells: np.ndarray
    box: Box | None  # pixel box around the clutter
    since: float | None  # earliest start of the clutter blocks
    fraction: float  # share of the zone's blocks that are static clutter
    uncertain: bool


class ChangeDetector:
    """Per-camera block change detector against the installer's clear reference."""

    def __init__(self, camera: str, *, width: int = ANALYSIS_WIDTH, block: int = BLOCK, ncc_threshold: float = 0.5,
                 static_s: float = 10.0, adapt_tau_s: float = 900.0, global_fraction: float = 0.7,
                 masks: Iterable[Sequence[Sequence[float]]] = (), zones: Iterable[Sequence[Sequence[float]]] = ()):
        self.camera = camera
        self.zones = [list(z) for z in zones]  # where clutter is looked for; the rest tells a moved camera
        self.width = width
        self.block = block
        self.ncc_threshold = ncc_threshold
        self.static_s = static_s
        self.adapt_tau_s = adapt_tau_s
        self.global_fraction = global_fraction
        self.masks = [list(m) for m in masks]
        self.reference: np.ndarray | None = None
        self.reference_info: dict[str, Any] = {}
        self._prev: np.ndarray | None = None
        self._since: np.ndarray | None = None
        self._stable_since: np.ndarray | None = None
        self._last_ts: float | None = None
        self._valid_cache: dict[tuple, np.ndarray] = {}
        self.stats = {"frames": 0, "uncertain_frames": 0, "bad_frames": 0, "adapted": 0}

    # ---- reference -------------------------------------------------------------------------------------------
    @property
    def has_reference(self) -> bool:
        return self.reference is not None

    def set_reference(self, image: np.ndarray, info: dict[str, Any] | None = None) -> None:
        """A frame of the clear scene (BGR at any size, or an already small grey array)."""
        g = image.astype(np.float32) if image.ndim == 2 and image.shape[1] == self.width else \
            to_small_grey(image, self.width, self.block)
        self.reference = g
        self.reference_info = dict(info or {})
        self._prev = None
        self._since = None
        self._stable_since = None

    def reference_record(self) -> dict[str, Any] | None:
        if self.reference is None:
            return None
        ok, png = cv2.imencode(".png", np.clip(self.reference, 0, 255).astype(np.uint8))
        return dict(self.reference_info, width=self.width, block=self.block,
                    png=base64.b64encode(png.tobytes()).decode("ascii"))

    @staticmethod
    def decode_record(record: dict[str, Any]) -> np.ndarray:
        data = base64.b64decode(record["png"])
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError("stored reference is not a readable PNG")
        return img.astype(np.float32)

    def load_record(self, record: dict[str, Any]) -> None:
        g = self.decode_record(record)
        if g.shape[1] != self.width:
            g = to_small_grey(g, self.width, self.block)
        self.reference = g
        self.reference_info = {k: v for k, v in record.items() if k != "png"}
        self._prev = self._since = self._stable_since = None

    # ---- per frame ---------------------------------------------------------------------------------------------
    def _valid(self, shape: tuple[int, int], frame_w: int, frame_h: int) -> tuple[np.ndarray, np.ndarray]:
        """(blocks not masked, blocks not masked and outside every zone)."""
        key = (shape, frame_w, frame_h)
        v = self._valid_cache.get(key)
        if v is None:
            from .zones import polygon_mask
            valid = np.ones(shape, bool)
            for m in self.masks:
                valid &= ~block_grid_mask(polygon_mask(m, frame_w, frame_h), shape[0], shape[1], 0.5)
            outside = valid.copy()
            for z in self.zones:
                outside &= ~block_grid_mask(polygon_mask(z, frame_w, frame_h), shape[0], shape[1], 0.01)
            v = self._valid_cache[key] = (valid, outside)
        return v

    def update(self, frame: np.ndarray, ts: float) -> ChangeFrame | None:
        """Compare a frame with the reference; None without a reference (or for an unusable frame)."""
        if self.reference is None:
            return None
        try:
            g = to_small_grey(frame, self.width, self.block)
        except (ValueError, cv2.error):
            self.stats["bad_frames"] += 1
            return None
        if g.shape != self.reference.shape:
            # a different aspect ratio than when the reference was taken: the camera was reconfigured
            self.stats["bad_frames"] += 1
            return None
        self.stats["frames"] += 1
        fh, fw = frame.shape[:2]
        valid, outside = self._valid((g.shape[0] // self.block, g.shape[1] // self.block), fw, fh)
        cmp = compare_blocks(self.reference, g, block=self.block, valid=valid, ncc_threshold=self.ncc_threshold)
        changed = cmp.changed
        n_judged = int(cmp.judged.sum())
        # Share of the informative blocks (patterned now, or changed) that changed. Flat sky and walls agree
        # with anything, so they are left out: when the camera is moved or the picture is swamped, nearly all
        # patterned blocks differ, while even a pile covering half the frame leaves most of them alone.
        informative = cmp.textured | changed
        frac = float(changed.sum()) / max(1, int(informative.sum()))
        # Clutter lies in the zones; the rest of the picture (walls, buildings) should not change. When it
        # does, the camera was moved or the picture is swamped -- decisive unless the zones fill the frame.
        out_inf = int((informative & outside).sum())
        if out_inf >= MIN_OUTSIDE_BLOCKS:
            swamped = float((changed & outside).sum()) / out_inf >= OUTSIDE_FRACTION
        else:
            swamped = frac >= self.global_fraction
        uncertain = swamped or n_judged < 0.2 * max(1, int(valid.sum()))
        if self._since is None:
            self._since = np.full(changed.shape, np.nan)
            self._stable_since = np.full(changed.shape, ts)
        if uncertain:
            self.stats["uncertain_frames"] += 1
        else:
            # blocks that differ from the previous analysed frame have just moved: restart their stillness
            if self._prev is not None:
                moving = compare_blocks(self._prev, g, block=self.block, valid=valid,
                                        ncc_threshold=0.6).changed
                self._stable_since[moving] = ts
            self._since[changed & np.isnan(self._since)] = ts
            self._since[~changed & cmp.judged] = np.nan
            if frac < self.global_fraction / 2:
                self._adapt(g, changed | ~cmp.judged, ts)
        self._prev = g
        self._last_ts = ts
        static = changed & (ts - self._stable_since >= self.static_s) & ~np.isnan(self._since)
        return ChangeFrame(ts, fw, fh, changed, static, self._since.copy(), uncertain, frac, cmp.gain, g)

    def _adapt(self, g: np.ndarray, changed: np.ndarray, ts: float) -> None:
        if self._last_ts is None or ts <= self._last_ts:
            return
        alpha = 1.0 - math.exp(-(ts - self._last_ts) / self.adapt_tau_s)
        keep = np.kron(~changed, np.ones((self.block, self.block), bool))
        ref = self.reference
        ref[keep] += alpha * (g[keep] - ref[keep])
        self.stats["adapted"] += 1

    # ---- per zone ------------------------------------------------------------------------------------------------
    def zone(self, cf: ChangeFrame, zone_mask: np.ndarray, exclude: Iterable[Sequence[float]] = (),
             min_cells: int = 3, min_fraction: float = 0.02) -> ZoneChange:
        """Static clutter inside one zone, ignoring blocks under the given boxes (people, detected objects)."""
        gh, gw = cf.grid_shape
        cells_in_zone = block_grid_mask(zone_mask, gh, gw, 0.5)
        clutter = cf.static & cells_in_zone
        for b in exclude:
            c1, r1, c2, r2 = box_to_cells(b, cf.width, cf.height, gh, gw)
            clutter[r1:r2, c1:c2] = False
        n_zone = max(1, int(cells_in_zone.sum()))
        n = int(clutter.sum())
        fraction = n / n_zone
        present = (not cf.uncertain) and n >= min_cells and fraction >= min_fraction
        since = float(np.nanmin(cf.since[clutter])) if n else None
        return ZoneChange(present, clutter, cells_to_box(clutter, cf.width, cf.height) if n else None, since,
                          fraction, cf.uncertain)

    def health(self) -> dict[str, Any]:
        return dict(self.stats, reference=bool(self.has_reference),
                    reference_captured_ms=self.reference_info.get("captured_ms"))


# ---- appearance of one box (keeps an episode alive while the detector loses the object) --------------------------
@dataclasses.dataclass
class Patch:
    cells: tuple[int, int, int, int]
    grey: np.ndarray


def take_patch(grey: np.ndarray, box: Sequence[float], frame_w: int, frame_h: int, block: int = BLOCK) -> Patch:
    gh, gw = grey.shape[0] // block, grey.shape[1] // block
    c1, r1, c2, r2 = box_to_cells(box, frame_w, frame_h, gh, gw)
    return Patch((c1, r1, c2, r2), grey[r1 * block:r2 * block, c1 * block:c2 * block].copy())


def patch_matches(patch: Patch, grey: np.ndarray, block: int = BLOCK, max_changed: float = 0.35) -> bool:
    """Does the frame still show, in the patch's place, what the patch showed (lighting discounted)?"""
    c1, r1, c2, r2 = patch.cells
    cur = grey[r1 * block:r2 * block, c1 * block:c2 * block]
    if cur.shape != patch.grey.shape or cur.size == 0:
        return False
    cmp = compare_blocks(patch.grey, cur, block=block, ncc_threshold=0.45)
    return float(cmp.changed.mean()) <= max_changed


# ---- installer reference: the function the console and the CLI call ------------------------------------------------
def save_reference(store, camera: str, frame: np.ndarray, *, by: str = "installer", now_ms: int | None = None,
                   note: str | None = None) -> dict[str, Any]:
    """Store `frame` (BGR, the camera's detect resolution) as the clear reference of `camera`."""
    det = ChangeDetector(camera)
    det.set_reference(frame, {"camera": camera, "by": by, "captured_ms": int(now_ms if now_ms is not None
                                                                                 else store.now_ms()),
                              "frame_size": [int(frame.shape[1]), int(frame.shape[0])], "note": note})
    record = det.reference_record()
    store.kv_set(reference_key(camera), record)
    return {k: v for k, v in record.items() if k != "png"}


def load_reference(store, camera: str) -> dict[str, Any] | None:
    rec = store.kv_get(reference_key(camera))
    return rec if isinstance(rec, dict) and "png" in rec else None
