"""UUIDv7 (RFC 9562) event ids: time-ordered, unique, the de-duplication key end to end.

Python 3.11's uuid module has no uuid7 (it arrives in 3.14), so the ~15 lines are written here.
Monotonic within a process: ids created in the same millisecond get an incrementing 12-bit counter
(RFC 9562 method 1) so sorting ids sorts events by creation order.
"""
from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7(ms: int | None = None) -> str:
    """A new UUIDv7. With `ms` (e.g. from an injected clock) the id carries that time but is only
    unique, not ordered against ids made from the wall clock."""
    if ms is not None:
        return _build(int(ms), int.from_bytes(os.urandom(2), "big") & 0xFFF)
    global _last_ms, _counter
    with _lock:
        now = int(time.time() * 1000)
        if now <= _last_ms:
            now = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # counter exhausted: borrow the next millisecond
                now += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave headroom for increments
        _last_ms = now
        counter = _counter
    return _build(now, counter)


def _build(now: int, counter: int) -> str:
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (now & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= rand_b
    return str(uuid.UUID(int=value))


def uuid7_time_ms(event_id: str) -> int:
    return uuid.UUID(event_id).int >> 80
