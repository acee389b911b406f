"""SSD with NMS inside the graph, TensorFlow Object Detection API output convention.

Outputs (batch 1): boxes [1, N, 4] = ymin, xmin, ymax, xmax normalised to 0..1 of the input tensor,
scores [1, N], classes [1, N] (label-map ids as float, COCO-90 for the zoo models), num_detections [1].
Only the first num_detections rows are valid; the rest is padding.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .base import Candidates, Decoder, DecoderError, DecoderOptions


class SSDOptions(DecoderOptions):
    boxes: str = "detection_boxes:0"
    scores: str = "detection_scores:0"
    classes: str = "detection_classes:0"
    num_detections: str = "num_detections:0"
    #: added to the class output before the label lookup (some exports count from 0 instead of 1)
    class_id_offset: int = 0


class SSDDecoder(Decoder):
    type = "ssd"
    Options = SSDOptions
    nms_in_graph = True

    def bind(self, output_names: Sequence[str]) -> None:
        o = self.options
        missing = [n for n in (o.boxes, o.scores, o.classes, o.num_detections) if n not in output_names]
        if missing:
            raise DecoderError(f"ssd decoder: model lacks outputs {missing} (model outputs: {list(output_names)}); "
                               "set decoder_options boxes/scores/classes/num_detections")

    def decode(self, outputs: Mapping[str, np.ndarray], input_size: tuple[int, int], min_score: float) -> Candidates:
        o = self.options
        boxes = self._need(outputs, o.boxes)
        scores = self._need(outputs, o.scores)
        classes = self._need(outputs, o.classes)
        num = self._need(outputs, o.num_detections)
        if boxes.ndim != 3 or boxes.shape[-1] != 4 or scores.ndim != 2 or classes.shape != scores.shape:
            raise DecoderError(f"ssd decoder: unexpected output shapes boxes{boxes.shape} scores{scores.shape} "
                               f"classes{classes.shape}")
        n = int(min(max(float(np.asarray(num).reshape(-1)[0]), 0.0), boxes.shape[1]))
        s = scores[0, :n].astype(np.float32)
        keep = s >= min_score
        b = boxes[0, :n][keep]
        w, h = input_size
        xyxy = np.stack([b[:, 1] * w, b[:, 0] * h, b[:, 3] * w, b[:, 2] * h], axis=1).astype(np.float32)
        ids = np.rint(classes[0, :n][keep]).astype(np.int64) + o.class_id_offset
        return Candidates(xyxy, s[keep], ids)
