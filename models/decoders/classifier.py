"""Image classifier (one score vector per image), for second-stage checks on a crop.

Output [1, C] (or [C]): class scores or logits, e.g. a YOLOv8-cls / EfficientNet export.  The result is the
top-k classes as detections whose box is the whole input image, so a classifier runs through the same
Detector interface: run it on the crop of a detected object ("bag" -> is it an "unbroken bag"?).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import Field

from .base import Candidates, Decoder, DecoderError, DecoderOptions


class ClassifierOptions(DecoderOptions):
    #: output name; default = the model's first output
    output: str | None = None
    #: apply softmax (the export ends in logits); false when it already gives probabilities
    softmax: bool = False
    top_k: int = Field(default=1, ge=1, le=100)


class ClassifierDecoder(Decoder):
    type = "classifier"
    Options = ClassifierOptions

    def bind(self, output_names: Sequence[str]) -> None:
        if self.options.output is not None and self.options.output not in output_names:
            raise DecoderError(f"classifier decoder: model has no output {self.options.output!r} "
                               f"(outputs: {list(output_names)})")
        self._output = self.options.output or output_names[0]

    def decode(self, outputs: Mapping[str, np.ndarray], input_size: tuple[int, int], min_score: float) -> Candidates:
        name = getattr(self, "_output", None) or self.options.output or next(iter(outputs))
        scores = np.asarray(self._need(outputs, name), np.float32).reshape(-1)
        if scores.size != self.num_classes:
            raise DecoderError(f"classifier decoder: output {name!r} has {scores.size} scores but the labels "
                               f"define {self.num_classes} classes")
        if self.options.softmax:
            e = np.exp(scores - scores.max())
            scores = e / e.sum()
        top = np.argsort(-scores, kind="stable")[: self.options.top_k]
        top = top[scores[top] >= min_score]
        w, h = input_size
        boxes = np.tile(np.array([[0, 0, w, h]], np.float32), (len(top), 1))
        return Candidates(boxes, scores[top].astype(np.float32), top.astype(np.int64))
