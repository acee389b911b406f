"""On-device vision models: manifests, the ONNX detector runtime, decoders, NMS and the tracker."""
from .manifest import ManifestError, ModelError, ModelManifest, load_manifest
from .runtime import DEFAULT_MODEL, Detection, Detector, ModelLoadError, ModelNotFoundError, find_manifest, \
    list_models, load_detector

__all__ = ["DEFAULT_MODEL", "Detection", "Detector", "ManifestError", "ModelError", "ModelLoadError",
           "ModelManifest", "ModelNotFoundError", "find_manifest", "list_models", "load_detector", "load_manifest"]
