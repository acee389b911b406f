"""Deterministic UUIDv7 event ids for records a device keeps and may hand over twice.

A controller record fetched again after a crash (between emitting it and persisting the index) must not
become a second event: the store ignores duplicate ids (INSERT OR IGNORE) and so does the county, so the
id is derived from what identifies the record on the device. The time bits are the record's own time, so
ids still sort by time like edge.events.uuid7; the "random" bits are a hash of the record key.
"""
from __future__ import annotations

import hashlib
import uuid


def stable_uuid7(ts_ms: int, key: str) -> str:
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:10], "big")
    rand_a = digest >> 68 & 0xFFF  # 12 bits
    rand_b = digest & ((1 << 62) - 1)  # 62 bits
    value = (max(0, ts_ms) & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
