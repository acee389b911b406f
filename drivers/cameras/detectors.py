"""One loaded detector per (model, threads), shared by every camera that uses it.

A Detector's onnxruntime session is thread-safe and holds the weights once, so four cameras on the default
model cost one model's memory, not four. Loading happens on first use (in a worker thread); a model that
fails to load is retried after a while, and until then the camera runs capture and motion only and reports
the reason in health().
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

log = logging.getLogger("drivers.cameras.detectors")

RETRY_LOAD_S = 60.0
NO_MODEL = "none"  # camera config `model: none`: capture, motion and snapshots only


class DetectorPool:
    def __init__(self, threads: int = 1, extra_dirs: Iterable[str] = (), default: str = "default",
                 loader: Callable | None = None):
        self.threads = threads
        self.extra_dirs = list(extra_dirs)
        self.default = default
        self._loader = loader
        self._lock = threading.Lock()
        self._loaded: dict[str, object] = {}
        self._failed: dict[str, tuple[float, str]] = {}

    def resolve(self, name: str) -> str:
        return self.default if name == "default" else name

    def get(self, name: str):
        """The shared Detector, or None when it cannot be loaded (see error()) or the camera has model "none"."""
        name = self.resolve(name)
        if name == NO_MODEL:
            return None
        with self._lock:
            det = self._loaded.get(name)
            if det is not None:
                return det
            failed = self._failed.get(name)
            if failed and time.monotonic() - failed[0] < RETRY_LOAD_S:
                return None
            try:
                if self._loader is not None:
                    det = self._loader(name)
                else:  # one session per model in the whole process (also shared with non-camera users)
                    from models.runtime import shared_detector

                    det = shared_detector(name, threads=self.threads, extra_dirs=self.extra_dirs)
            except Exception as e:  # ModelError, onnxruntime errors, a missing package: report, don't crash
                msg = f"{type(e).__name__}: {e}"
                self._failed[name] = (time.monotonic(), msg)
                log.error("detector unavailable", extra={"model": name, "error": msg})
                return None
            self._failed.pop(name, None)
            self._loaded[name] = det
            log.info("detector loaded", extra={"model": name, "threads": self.threads})
            return det

    def error(self, name: str) -> str | None:
        failed = self._failed.get(self.resolve(name))
        return failed[1] if failed else None
