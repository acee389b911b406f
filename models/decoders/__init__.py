"""Output decoders, one model family per file (like Frigate's detector plugins).

DECODERS maps the manifest's `decoder:` value to the class.  Add a family by writing one file with a
`Decoder` subclass and listing it here; explicit beats import-time scanning for a handful of entries.
"""
from __future__ import annotations

from .base import Candidates, Decoder, DecoderError, DecoderOptions
from .centernet import CenterNetDecoder
from .classifier import ClassifierDecoder
from .nanodet import NanoDetDecoder
from .ssd import SSDDecoder
from .yolov8 import YoloV8Decoder

DECODERS: dict[str, type[Decoder]] = {
    d.type: d for d in (SSDDecoder, YoloV8Decoder, NanoDetDecoder, CenterNetDecoder, ClassifierDecoder)}

__all__ = ["DECODERS", "Candidates", "Decoder", "DecoderError", "DecoderOptions"]
