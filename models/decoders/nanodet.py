"""NanoDet (GFL head): per stride, class scores [1, N, C] and box distributions [1, N, 4 * (R + 1)].

For grid cell (x, y) of stride s the centre is ((x + 0.5) s, (y + 0.5) s); each side's distance is the
expectation of a softmax over R + 1 bins, times s (Generalized Focal Loss "distribution focal" boxes).
Outputs are paired by shape: N = (W / s) * (H / s) tells the stride, the last axis tells scores (C) from
distributions (4 * (R + 1)), so exporters' output names (Identity_3:0 ...) need not be listed.
No NMS in the graph.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from .base import Candidates, Decoder, DecoderError, DecoderOptions


class NanoDetOptions(DecoderOptions):
    strides: list[int] = Field(default=[8, 16, 32], min_length=1)
    #: 0.5 for NanoDet(-m), 0.0 for NanoDet-Plus centre priors
    center_offset: float = 0.5
    #: true when the class outputs are logits (apply sigmoid); the TF.js export is already sigmoid-ed
    scores_are_logits: bool = False


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class NanoDetDecoder(Decoder):
    type = "nanodet"
    Options = NanoDetOptions

    def _pair(self, outputs: Mapping[str, np.ndarray], w: int, h: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        by_count: dict[int, dict[str, np.ndarray]] = {}
        for name, arr in outputs.items():
            a = arr[0] if arr.ndim == 3 else arr
            if a.ndim != 2:
                continue
            kind = "scores" if a.shape[1] == self.num_classes else "dist" if a.shape[1] % 4 == 0 else None
            if kind:
                by_count.setdefault(a.shape[0], {})[kind] = a
        levels = []
        for s in self.options.strides:
            n = ((w + s - 1) // s) * ((h + s - 1) // s)
            pair = by_count.get(n, {})
            if "scores" not in pair or "dist" not in pair:
                raise DecoderError(f"nanodet decoder: no score/distribution outputs with {n} cells for stride {s} "
                                   f"at input {w}x{h} (outputs: "
                                   f"{ {k: v.shape for k, v in outputs.items()} }); check input_size, strides, labels")
            levels.append((s, pair["scores"], pair["dist"]))
        return levels

    def decode(self, outputs: Mapping[str, np.ndarray], input_size: tuple[int, int], min_score: float) -> Candidates:
        w, h = input_size
        parts = []
        for s, scores, dist in self._pair(outputs, w, h):
            if self.options.scores_are_logits:
                scores = 1.0 / (1.0 + np.exp(-scores))
            cls = scores.argmax(axis=1)
            best = scores[np.arange(len(scores)), cls]
            idx = np.nonzero(best >= min_score)[0]
            if idx.size == 0:
                continue
            bins = dist.shape[1] // 4
            d = _softmax(dist[idx].reshape(-1, 4, bins)) @ np.arange(bins, dtype=np.float32) * s   # [k, 4]
            cols = (w + s - 1) // s
            cy, cx = np.divmod(idx, cols)
            cx = (cx + self.options.center_offset) * s
            cy = (cy + self.options.center_offset) * s
            boxes = np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1)
            parts.append(Candidates(boxes.astype(np.float32), best[idx].astype(np.float32), cls[idx].astype(np.int64)))
        if not parts:
            return Candidates.empty()
        return Candidates(*(np.concatenate(col) for col in zip(*parts)))
