"""Detector runtime: one ONNX model on onnxruntime's CPU provider behind `Detector.detect(bgr) -> [Detection]`.

The manifest says how to feed the model and which decoder reads its outputs; this module does the parts
that are the same for every family: preprocessing, per-class thresholds, class-aware NMS, and mapping boxes
back to original image pixels.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decoders import DECODERS, Candidates, Decoder, DecoderError
from .manifest import MANIFEST_SUFFIXES, ManifestError, ModelError, ModelManifest, load_manifest
from .nms import batched_nms
from .preprocess import Transform, as_bgr, letterbox, stretch

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL = "ssd_mobilenet_v2_coco"
#: colon-separated folders searched before the built-in models (same role as config models.extra_dirs)
MODELS_PATH_ENV = "EDGE_MODELS_PATH"

_ORT_DTYPES = {"uint8": "tensor(uint8)", "float32": "tensor(float)", "float16": "tensor(float16)"}
_NP_DTYPES = {"uint8": np.uint8, "float32": np.float32, "float16": np.float16}


class ModelNotFoundError(ModelError):
    pass


class ModelLoadError(ModelError):
    pass


@dataclass(frozen=True, slots=True)
class Detection:
    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in original image pixels

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def to_dict(self, ndigits: int = 1) -> dict:
        return {"label": self.label, "class_id": self.class_id, "score": round(self.score, 3),
                "box": [round(v, ndigits) for v in self.box]}


class Detector:
    """One loaded model. detect() is thread-safe (onnxruntime sessions allow concurrent run())."""

    def __init__(self, manifest: ModelManifest, threads: int = 1, allow_spinning: bool = False,
                 memory_arena: bool = True):
        import onnxruntime as ort

        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.manifest = manifest
        self.name = manifest.name
        self.threads = threads
        self.labels = manifest.label_map
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning threads burn a core between frames; on a shared gateway CPU that time belongs to capture
        # and the other analytics, so it is off unless a benchmark asks for it.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        opts.log_severity_level = 3
        # the arena keeps activation buffers between runs (~30 MB for the SSD); off trades a little speed for RSS
        opts.enable_cpu_mem_arena = memory_arena
        path = manifest.model_path
        try:
            self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
            raise ModelLoadError(f"model {manifest.name!r}: onnxruntime cannot load {path}: {e}") from None
        _release_freed_memory()
        self._input = self._check_input()
        self._output_names = [o.name for o in self.session.get_outputs()]
        self.decoder: Decoder = DECODERS[manifest.decoder](manifest.parsed_decoder_options, manifest.num_classes)
        try:
            self.decoder.bind(self._output_names)
        except DecoderError as e:
            raise ModelLoadError(f"model {manifest.name!r}: {e}") from None
        self._run_nms = manifest.nms_iou is not None
        norm = manifest.normalization
        self._scale = np.float32(norm.scale)
        self._mean = np.asarray(norm.mean, np.float32)
        self._inv_std = (1.0 / np.asarray(norm.std, np.float32)).astype(np.float32)
        self._lock = threading.Lock()
        self.stats = {"frames": 0, "errors": 0, "last_ms": 0.0, "total_ms": 0.0}

    # ---- load-time checks --------------------------------------------------------------------------------

    def _check_input(self) -> str:
        m = self.manifest
        inputs = self.session.get_inputs()
        names = [i.name for i in inputs]
        if m.input_name is not None and m.input_name not in names:
            raise ModelLoadError(f"model {m.name!r}: no input named {m.input_name!r} (inputs: {names})")
        inp = next(i for i in inputs if i.name == (m.input_name or names[0]))
        if inp.type != _ORT_DTYPES[m.dtype]:
            raise ModelLoadError(f"model {m.name!r}: input {inp.name!r} is {inp.type}, manifest says dtype {m.dtype}")
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelLoadError(f"model {m.name!r}: input {inp.name!r} has rank {len(shape)} {shape}, expected 4")
        w, h = m.input_size
        want = [None, h, w, 3] if m.layout == "NHWC" else [None, 3, h, w]
        for axis, (got, exp) in enumerate(zip(shape, want)):
            if exp is not None and isinstance(got, int) and got != exp:
                raise ModelLoadError(f"model {m.name!r}: input {inp.name!r} has shape {shape}, but manifest "
                                     f"(layout {m.layout}, input_size [{w}, {h}]) needs {want} (axis {axis})")
        return inp.name

    # ---- inference -----------------------------------------------------------------------------------------

    def preprocess(self, bgr: np.ndarray) -> tuple[np.ndarray, Transform]:
        m = self.manifest
        w, h = m.input_size
        img = as_bgr(bgr)
        img, tf = letterbox(img, w, h, m.pad_value) if m.letterbox else stretch(img, w, h)
        if m.color_order == "RGB":
            img = img[:, :, ::-1]
        if m.dtype == "uint8":
            x = np.ascontiguousarray(img)
        else:
            x = (img.astype(np.float32) * self._scale - self._mean) * self._inv_std
            x = x.astype(_NP_DTYPES[m.dtype], copy=False)
        if m.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None]), tf

    def detect(self, bgr_image: np.ndarray) -> list[Detection]:
        """Detections in original-image pixels, best score first. Raises ValueError for an unusable image."""
        t0 = time.perf_counter()
        try:
            tensor, tf = self.preprocess(bgr_image)
            raw = self.session.run(self._output_names, {self._input: tensor})
            cands = self.decoder.decode(dict(zip(self._output_names, raw)), self.manifest.input_size,
                                        self.manifest.min_threshold)
            dets = self._finish(cands, tf)
        except Exception:
            with self._lock:
                self.stats["errors"] += 1
            raise
        ms = (time.perf_counter() - t0) * 1000
        with self._lock:
            self.stats["frames"] += 1
            self.stats["last_ms"] = ms
            self.stats["total_ms"] += ms
        return dets

    def _finish(self, c: Candidates, tf: Transform) -> list[Detection]:
        m = self.manifest
        if len(c.scores) == 0:
            return []
        labels = [self.labels.get(int(i), f"class_{int(i)}") for i in c.class_ids]
        thr = np.array([m.threshold_for(lb) for lb in labels], np.float32)
        keep = np.nonzero(c.scores >= thr)[0]
        c = c.select(keep)
        labels = [labels[i] for i in keep]
        if self._run_nms and len(keep):
            order = batched_nms(c.boxes, c.scores, c.class_ids, m.nms_iou, m.max_detections)
        else:
            order = np.argsort(-c.scores, kind="stable")[: m.max_detections]
        boxes = tf.to_original(c.boxes[order]) if len(order) else np.zeros((0, 4), np.float32)
        out = []
        for j, i in enumerate(order):
            x1, y1, x2, y2 = (float(v) for v in boxes[j])
            if x2 - x1 < 1 or y2 - y1 < 1:   # clipped away (box entirely in the letterbox padding)
                continue
            out.append(Detection(labels[i], int(c.class_ids[i]), float(c.scores[i]), (x1, y1, x2, y2)))
        return out

    def health(self) -> dict:
        with self._lock:
            s = dict(self.stats)
        s["mean_ms"] = round(s["total_ms"] / s["frames"], 2) if s["frames"] else None
        s.update(model=self.name, threads=self.threads)
        return s


def _release_freed_memory() -> None:
    """Give the model file's parse buffers back to the OS after session creation.

    onnxruntime reads the whole .onnx into memory to build the session and frees it afterwards, but glibc
    keeps the freed pages mapped (~35 MB for the 68 MB SSD); malloc_trim returns them. No-op elsewhere."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_SHARED: dict[tuple, Detector] = {}
_SHARED_LOCK = threading.Lock()


def shared_detector(name_or_path: str | Path = "default", threads: int = 1,
                    extra_dirs: Iterable[str | Path] = ()) -> Detector:
    """One Detector per (model, threads) in the process, for all cameras that use that model.

    A session of the default SSD costs ~150 MB resident (weights plus their pre-packed copy); four cameras
    with a session each would exceed the gateway's memory budget, while detect() is thread-safe."""
    manifest = find_manifest(name_or_path, extra_dirs)
    key = (str(manifest.model_path), manifest.name, threads)
    with _SHARED_LOCK:
        det = _SHARED.get(key)
        if det is None:
            det = _SHARED[key] = Detector(manifest, threads=threads)
        return det


# ---- finding models ------------------------------------------------------------------------------------------

def search_dirs(extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Installer folders first (they may override a built-in name), then $EDGE_MODELS_PATH, then models/."""
    dirs = [Path(d) for d in extra_dirs]
    dirs += [Path(p) for p in os.environ.get(MODELS_PATH_ENV, "").split(os.pathsep) if p]
    dirs.append(PACKAGE_DIR)
    return dirs


def _manifest_files(dirs: Iterable[Path]) -> Iterator[Path]:
    for d in dirs:
        if not d.is_dir():
            continue
        for pattern in ("*", "*/*"):   # a manifest per file, or a folder per model
            for p in sorted(d.glob(pattern)):
                if p.suffix.lower() in MANIFEST_SUFFIXES and p.is_file():
                    yield p


def list_models(extra_dirs: Iterable[str | Path] = ()) -> list[tuple[Path, ModelManifest | ModelError]]:
    """Every manifest found, with its parsed form or the reason it is unusable (for `edge models`-like views)."""
    out: list[tuple[Path, ModelManifest | ModelError]] = []
    for p in _manifest_files(search_dirs(extra_dirs)):
        try:
            out.append((p, load_manifest(p)))
        except ModelError as e:
            out.append((p, e))
    return out


def find_manifest(name_or_path: str | Path, extra_dirs: Iterable[str | Path] = (),
                  check_file: bool = True) -> ModelManifest:
    """A manifest path, an .onnx with a manifest of the same stem beside it, or a model name ("default" ok)."""
    raw = str(name_or_path)
    p = Path(raw).expanduser()
    if p.is_file():
        if p.suffix.lower() in MANIFEST_SUFFIXES:
            return load_manifest(p, check_file)
        if p.suffix.lower() == ".onnx":
            for suffix in MANIFEST_SUFFIXES:
                if p.with_suffix(suffix).is_file():
                    return load_manifest(p.with_suffix(suffix), check_file)
            raise ManifestError(f"{p}: no manifest beside it (expected {p.with_suffix('.yaml').name}); "
                                "see models/README.md")
        raise ManifestError(f"{p}: not a manifest (.yaml/.yml/.json) or .onnx file")
    name = DEFAULT_MODEL if raw == "default" else raw
    if os.sep in name or name.endswith((".onnx", *MANIFEST_SUFFIXES)):
        raise ModelNotFoundError(f"{raw}: no such file")
    found: list[str] = []
    broken: list[ModelError] = []
    for path in _manifest_files(search_dirs(extra_dirs)):
        try:
            m = load_manifest(path, check_file)
        except ModelError as e:
            if path.stem == name:
                raise
            broken.append(e)
            continue
        if m.name == name:
            return m
        found.append(m.name)
    hint = f"; {len(broken)} unusable manifest(s) skipped" if broken else ""
    raise ModelNotFoundError(f"model {name!r} not found; available: {', '.join(found) or '(none)'}{hint}")


def load_detector(name_or_path: str | Path = "default", threads: int = 1,
                  extra_dirs: Iterable[str | Path] = (), allow_spinning: bool = False,
                  memory_arena: bool = True) -> Detector:
    """A new Detector (its own session); cameras should use shared_detector()."""
    return Detector(find_manifest(name_or_path, extra_dirs), threads=threads, allow_spinning=allow_spinning,
                    memory_arena=memory_arena)
