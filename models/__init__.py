"""On-device vision models: manifests, the ONNX detector runtime, decoders, NMS and the tracker."""
from .manifest import ManifestError, ModelError, ModelManifest, load_manifest
from .runtime import DEFAULT_MODEL, Detection, Detector, ModelLoadError, ModelNotFoundError, find_manifest, \
    list_models, load_detector, shared_detector
from .tracker import Track, Tracker

__all__ = ["DEFAULT_MODEL", "Detection", "Detector", "ManifestError", "ModelError", "ModelLoadError",
           "ModelManifest", "ModelNotFoundError", "Track", "Tracker", "find_manifest", "list_models", "load_detector",
           "load_manifest", "shared_detector"]
