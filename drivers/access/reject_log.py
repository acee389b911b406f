"""Rate-limited logging of rejected input. Every reject is counted (health); the log gets a line when a
counter first moves and then at most every `every_s` with the increase, so a noisy line cannot flood it."""
from __future__ import annotations

import logging
import time
from typing import Callable, Mapping


class RejectLog:
    def __init__(self, log: logging.Logger, device: str, every_s: float = 10.0,
                 ignore: tuple[str, ...] = ("frames", "marks"), monotonic: Callable[[], float] = time.monotonic):
        self.log, self.device, self.every_s, self.ignore = log, device, every_s, ignore
        self._mono = monotonic
        self._seen: dict[str, int] = {}
        self._last = -1e18

    def check(self, counters: Mapping[str, int], what: str = "rejected input") -> None:
        now = self._mono()
        if now - self._last < self.every_s:
            return
        delta = {k: v - self._seen.get(k, 0) for k, v in counters.items()
                 if k not in self.ignore and v > self._seen.get(k, 0)}
        if not delta:
            return
        self._seen.update({k: counters[k] for k in delta})
        self._last = now
        self.log.warning(f"{what} dropped", extra={"device": self.device, "increase": delta})
