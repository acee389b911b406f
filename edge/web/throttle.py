"""Login rate limiting: at most N failed logins per client address and per user name within a window.

Kept in memory (a restart clears it, which is acceptable: a restart takes far longer than guessing) and
timed with the injected clock so tests can move through the window in milliseconds. Written by hand
because it is twenty lines and the libraries for it assume Redis or a web framework of their own.
"""
from __future__ import annotations

import collections
import math


class LoginThrottle:
    def __init__(self, clock, max_failures: int = 5, window_s: float = 900, max_keys: int = 10_000):
        self.clock = clock
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._fails: dict[str, collections.deque] = {}
        self.blocked = 0
        self.failures = 0

    def _recent(self, key: str) -> collections.deque:
        q = self._fails.get(key)
        if q is None:
            return collections.deque()
        now = self.clock.monotonic()
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if not q:
            self._fails.pop(key, None)
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds until a login may be tried again for these keys (0 = allowed now)."""
        now = self.clock.monotonic()
        wait = 0.0
        for k in keys:
            q = self._recent(k)
            if len(q) >= self.max_failures:
                wait = max(wait, self.window_s - (now - q[-self.max_failures]))
        if wait > 0:
            self.blocked += 1
        return int(math.ceil(wait))

    def failed(self, *keys: str) -> None:
        self.failures += 1
        if len(self._fails) > self.max_keys:  # a flood of random names must not grow memory without bound
            self._fails.clear()
        now = self.clock.monotonic()
        for k in keys:
            self._fails.setdefault(k, collections.deque(maxlen=self.max_failures * 4)).append(now)

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            self._fails.pop(k, None)
