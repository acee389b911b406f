"""The one interface every output decoder implements.

A decoder turns the raw output tensors of one model family into candidate boxes in *model-input pixels*
(the coordinates of the tensor that was fed to the network, after resize/letterbox).  Everything that is the
same for all families -- per-class thresholds, class-aware NMS, mapping back to original image pixels, labels --
lives in models/runtime.py, so a decoder stays small and is easy to test with synthetic arrays.

Adding a family: one file in this folder with a `Decoder` subclass, plus one line in decoders/__init__.py.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict


class DecoderError(ValueError):
    """Raised when a model's outputs do not fit the decoder (bad manifest or wrong model)."""


class Candidates(NamedTuple):
    boxes: np.ndarray      # float32 [N, 4] x1, y1, x2, y2 in model-input pixels
    scores: np.ndarray     # float32 [N]
    class_ids: np.ndarray  # int64 [N], ids as the labels of the manifest use them

    @staticmethod
    def empty() -> "Candidates":
        return Candidates(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0,), np.int64))

    def select(self, keep: np.ndarray) -> "Candidates":
        return Candidates(self.boxes[keep], self.scores[keep], self.class_ids[keep])


class DecoderOptions(BaseModel):
    """Decoder-specific settings from the manifest's `decoder_options`; each decoder subclasses this."""
    model_config = ConfigDict(extra="forbid", frozen=True)


class Decoder(ABC):
    #: the manifest's `decoder:` value
    type: ClassVar[str]
    #: the options model validated from `decoder_options`
    Options: ClassVar[type[DecoderOptions]] = DecoderOptions
    #: True when the graph already ran NMS (SSD); the runtime then skips its own NMS unless asked for it
    nms_in_graph: ClassVar[bool] = False

    def __init__(self, options: DecoderOptions, num_classes: int):
        self.options = options
        self.num_classes = num_classes

    def bind(self, output_names: Sequence[str]) -> None:
        """Check the session's output names once at load time; raise DecoderError with a clear message."""

    @abstractmethod
    def decode(self, outputs: Mapping[str, np.ndarray], input_size: tuple[int, int], min_score: float) -> Candidates:
        """outputs: output name -> array (batch of 1); input_size: (width, height) of the model input.

        Candidates below min_score may be dropped early (they would be filtered anyway)."""

    @staticmethod
    def _need(outputs: Mapping[str, np.ndarray], name: str) -> np.ndarray:
        try:
            return outputs[name]
        except KeyError:
            raise DecoderError(f"model has no output named {name!r} (outputs: {', '.join(outputs)})") from None
