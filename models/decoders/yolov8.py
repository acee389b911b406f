"""YOLOv8 / YOLO11 detection head as exported by ultralytics (`yolo export format=onnx`).

One output [1, 4 + C, N]: rows 0..3 are cx, cy, w, h in model-input pixels, rows 4.. are per-class scores
(already sigmoid-ed, no objectness).  No NMS in the graph.  Some exporters transpose it to [1, N, 4 + C];
both are accepted, told apart by which axis has 4 + C entries.  Ultralytics models are letterboxed (pad 114).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .base import Candidates, Decoder, DecoderError, DecoderOptions


class YoloV8Options(DecoderOptions):
    #: output name; default = the model's first output
    output: str | None = None


class YoloV8Decoder(Decoder):
    type = "yolov8"
    Options = YoloV8Options

    def bind(self, output_names: Sequence[str]) -> None:
        if self.options.output is not None and self.options.output not in output_names:
            raise DecoderError(f"yolov8 decoder: model has no output {self.options.output!r} "
                               f"(outputs: {list(output_names)})")
        self._output = self.options.output or output_names[0]

    def decode(self, outputs: Mapping[str, np.ndarray], input_size: tuple[int, int], min_score: float) -> Candidates:
        name = getattr(self, "_output", None) or self.options.output or next(iter(outputs))
        out = self._need(outputs, name)
        if out.ndim == 3:
            out = out[0]
        if out.ndim != 2:
            raise DecoderError(f"yolov8 decoder: expected [1, 4+C, N], got {self._need(outputs, name).shape}")
        width = 4 + self.num_classes
        if out.shape[0] == width:
            pred = out.T                       # -> [N, 4 + C]
        elif out.shape[1] == width:
            pred = out
        else:
            raise DecoderError(f"yolov8 decoder: output {name!r} has shape {out.shape}, neither axis is "
                               f"4 + {self.num_classes} classes = {width}; does the label list match the model?")
        cls_scores = pred[:, 4:]
        class_ids = cls_scores.argmax(axis=1)
        scores = cls_scores[np.arange(len(pred)), class_ids].astype(np.float32)
        keep = scores >= min_score
        cx, cy, w, h = (pred[keep, i] for i in range(4))
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
        return Candidates(boxes, scores[keep], class_ids[keep].astype(np.int64))
