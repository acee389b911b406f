"""Per-model manifest: everything the runtime must know about an .onnx file, in a YAML/JSON file next to it.

Example (models/ssd_mobilenet_v2_coco.yaml is the shipped one; models/README.md explains every field):

    name: my_yolov8n
    file: my_yolov8n.onnx
    input_size: [640, 640]        # width, height
    layout: NCHW
    dtype: float32
    color_order: RGB
    normalization: {scale: 0.00392156862745098}   # x = (pixel * scale - mean) / std
    letterbox: true
    decoder: yolov8
    labels_file: coco80.txt
    score_threshold: 0.4
    class_thresholds: {person: 0.5}
    nms_iou: 0.45
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, \
    model_validator

from .decoders import DECODERS, DecoderOptions

BUILTIN_LABELS_DIR = Path(__file__).resolve().parent / "labels"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class ModelError(Exception):
    """Base of every model-loading problem; the message is meant for an installer's eyes."""


class ManifestError(ModelError):
    pass


class Normalization(BaseModel):
    """Applied to float inputs after colour reordering: x = (pixel * scale - mean) / std, per channel."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = Field(default=1.0, gt=0)
    mean: list[float] = Field(default=[0.0, 0.0, 0.0], min_length=1, max_length=3)
    std: list[float] = Field(default=[1.0, 1.0, 1.0], min_length=1, max_length=3)

    @field_validator("mean", "std")
    @classmethod
    def _one_or_three(cls, v: list[float]) -> list[float]:
        if len(v) == 2:
            raise ValueError("give 1 value (all channels) or 3 (one per channel, in color_order)")
        return v

    @field_validator("std")
    @classmethod
    def _nonzero(cls, v: list[float]) -> list[float]:
        if any(x <= 0 for x in v):
            raise ValueError("std values must be > 0")
        return v

    @property
    def is_identity(self) -> bool:
        return self.scale == 1.0 and all(m == 0 for m in self.mean) and all(s == 1 for s in self.std)


class ModelManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="what --model / config refer to")
    description: str = ""
    file: str = Field(min_length=1, description=".onnx path, relative to the manifest's folder")
    input_name: str | None = Field(default=None, description="graph input to feed; default: the first input")
    input_size: tuple[int, int] = Field(description="[width, height] the image is resized/letterboxed to")
    layout: Literal["NHWC", "NCHW"]
    dtype: Literal["uint8", "float32", "float16"]
    color_order: Literal["RGB", "BGR"]
    normalization: Normalization = Field(default_factory=Normalization)
    letterbox: bool = False
    pad_value: int = Field(default=114, ge=0, le=255, description="letterbox padding grey level")
    decoder: str
    decoder_options: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] | dict[int, str] | None = Field(default=None, description="list (index = class id) or {id: name}")
    labels_file: str | None = Field(default=None, description="one name per line, or '<id> <name>' lines")
    score_threshold: float = Field(default=0.5, ge=0, le=1)
    class_thresholds: dict[str, float] = Field(default_factory=dict, description="label -> min score")
    nms_iou: float | None = Field(default=0.45, gt=0, le=1, description="class-aware NMS IoU; null = no NMS here")
    max_detections: int = Field(default=100, ge=1, le=1000)
    license: str | None = None
    source: str | None = None

    _label_map: dict[int, str] = PrivateAttr(default_factory=dict)
    _decoder_options: DecoderOptions | None = PrivateAttr(default=None)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("file")
    @classmethod
    def _onnx(cls, v: str) -> str:
        if not v.lower().endswith(".onnx"):
            raise ValueError(f"{v!r} is not an .onnx file")
        return v

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_shape(cls, v: Any) -> Any:
        # one readable message instead of pydantic's per-union-member list
        if v is None or isinstance(v, list):
            return v
        if isinstance(v, dict):
            bad = [k for k in v if not (isinstance(k, int) or (isinstance(k, str) and k.strip().isdigit()))]
            if bad:
                raise ValueError(f"a {{id: name}} map needs integer ids as keys, got {bad[:3]} "
                                 "(or give a list of names, index = class id)")
            return {int(k): val for k, val in v.items()}
        raise ValueError("labels must be a list of names (index = class id) or a {id: name} map")

    @field_validator("input_size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not all(16 <= x <= 4096 for x in v):
            raise ValueError(f"width and height must be 16..4096, got {list(v)}")
        return v

    @field_validator("class_thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: t for k, t in v.items() if not 0 <= t <= 1}
        if bad:
            raise ValueError(f"thresholds must be 0..1: {bad}")
        return v

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo) -> "ModelManifest":
        base = Path((info.context or {}).get("base_dir") or Path.cwd())
        self._base_dir = base
        if self.dtype == "uint8" and not self.normalization.is_identity:
            raise ValueError("dtype uint8 feeds raw 0..255 pixels; normalization must be left out "
                             "(use float32 to normalise)")
        decoder = DECODERS.get(self.decoder)
        if decoder is None:
            raise ValueError(f"unknown decoder {self.decoder!r}; known: {', '.join(sorted(DECODERS))}")
        try:
            self._decoder_options = decoder.Options.model_validate(self.decoder_options)
        except ValidationError as e:
            raise ValueError(f"decoder_options for {self.decoder}: " + _short(e)) from None
        if (self.labels is None) == (self.labels_file is None):
            raise ValueError("give exactly one of 'labels' (list or {id: name}) and 'labels_file'")
        label_map = (_label_map_from(self.labels) if self.labels is not None
                     else _label_map_from(read_labels_file(_find_labels_file(self.labels_file, base))))
        names = list(label_map.values())
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate label names {dupes}")
        unknown = sorted(set(self.class_thresholds) - set(names))
        if unknown:
            raise ValueError(f"class_thresholds name labels the model does not have: {unknown}")
        self._label_map = label_map
        return self

    # ---- resolved values -------------------------------------------------------------------------------

    @property
    def label_map(self) -> dict[int, str]:
        return dict(self._label_map)

    @property
    def num_classes(self) -> int:
        """Width of a class axis: highest id + 1 (ids may have gaps, as in COCO-90)."""
        return max(self._label_map) + 1

    @property
    def parsed_decoder_options(self) -> DecoderOptions:
        assert self._decoder_options is not None
        return self._decoder_options

    @property
    def model_path(self) -> Path:
        p = Path(self.file)
        return p if p.is_absolute() else (self._base_dir / p).resolve()

    def threshold_for(self, label: str) -> float:
        return self.class_thresholds.get(label, self.score_threshold)

    @property
    def min_threshold(self) -> float:
        return min([self.score_threshold, *self.class_thresholds.values()])


def _label_map_from(labels: list[str] | dict[int, str]) -> dict[int, str]:
    items = list(enumerate(labels)) if isinstance(labels, list) else sorted(labels.items())
    if not items:
        raise ValueError("label list is empty")
    out: dict[int, str] = {}
    for i, name in items:
        if i < 0:
            raise ValueError(f"label id {i} is negative")
        if not str(name).strip():
            raise ValueError(f"label {i} is empty")
        out[int(i)] = str(name).strip()
    return out


def _find_labels_file(name: str, base: Path) -> Path:
    p = Path(name)
    # next to the manifest first; then the shipped lists, so an installer can write `labels_file: coco80.txt`
    candidates = [p] if p.is_absolute() else [base / p, BUILTIN_LABELS_DIR.parent / p, BUILTIN_LABELS_DIR / p]
    for c in candidates:
        if c.is_file():
            return c
    raise ValueError(f"labels_file {name!r} not found (looked in: {', '.join(str(c) for c in candidates)})")


def read_labels_file(path: Path) -> list[str] | dict[int, str]:
    """Plain names, one per line (line index = class id), or '<id> <name>' lines; '#' starts a comment."""
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    numbered = [re.match(r"^(\d+)[\s:,]+(.+)$", ln) for ln in lines]
    if lines and all(numbered):
        out: dict[int, str] = {}
        for m in numbered:
            i = int(m.group(1))
            if i in out:
                raise ValueError(f"labels_file {path}: id {i} given twice")
            out[i] = m.group(2).strip()
        return out
    return lines


def _short(e: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors())


def format_validation_error(e: ValidationError) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(manifest)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (typo?)"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def _load_yaml(path: Path) -> Any:
    from ruamel.yaml import YAML  # the project's YAML library (edge.yaml uses it too)
    return YAML(typ="safe", pure=True).load(path)   # a Path, so errors name the file and line


def parse_manifest(data: Any, base_dir: Path, source: str = "<manifest>") -> ModelManifest:
    if not isinstance(data, dict):
        raise ManifestError(f"{source}: a manifest must be a mapping of fields, got {type(data).__name__}")
    try:
        return ModelManifest.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as e:
        raise ManifestError(f"{source}: invalid model manifest:\n{format_validation_error(e)}") from None


def load_manifest(path: str | Path, check_file: bool = True) -> ModelManifest:
    """Read and validate a manifest; check_file also requires the .onnx to exist."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ManifestError(f"{path}: cannot read manifest: {e.strerror or e}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = _load_yaml(path)
    except Exception as e:  # json.JSONDecodeError, ruamel.yaml.YAMLError: both carry the line in the message
        raise ManifestError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
                            f"{str(e).strip()}") from None
    manifest = parse_manifest(data, path.parent.resolve(), str(path))
    if check_file and not manifest.model_path.is_file():
        raise ManifestError(f"{path}: model file {manifest.file!r} not found at {manifest.model_path}")
    return manifest
