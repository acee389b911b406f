"""Fault injection for the bin simulators: scripted one-shot faults and seeded random fault rates.

Frame faults (applied to one outgoing reply/frame): "crc" (a corrupted byte: bad CRC / checksum),
"truncate" (the frame is cut short), "noise" (random bytes before the frame), "wrong_address" (a valid
frame from another Modbus address), "drop" (no reply at all). Line faults are separate switches on the
simulator: `silent` (nothing comes out) and unplug/replug of the port.
"""
from __future__ import annotations

import collections
import dataclasses
import random

FRAME_FAULTS = ("crc", "truncate", "noise", "wrong_address", "drop")


@dataclasses.dataclass
class FaultPlan:
    seed: int = 7
    crc_rate: float = 0.0
    truncate_rate: float = 0.0
    noise_rate: float = 0.0
    wrong_address_rate: float = 0.0
    drop_rate: float = 0.0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._queue: collections.deque[tuple[str, int | None]] = collections.deque()
        self.injected: collections.Counter[str] = collections.Counter()

    def once(self, fault: str, count: int = 1, unit: int | None = None) -> "FaultPlan":
        """Apply `fault` to the next `count` frames (for `unit` only, if given)."""
        if fault not in FRAME_FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FRAME_FAULTS}")
        self._queue.extend([(fault, unit)] * count)
        return self

    def pending(self) -> int:
        return len(self._queue)

    def pick(self, unit: int | None = None) -> str | None:
        for i, (fault, u) in enumerate(self._queue):
            if u is None or u == unit:
                del self._queue[i]
                self.injected[fault] += 1
                return fault
        for fault, rate in (("crc", self.crc_rate), ("truncate", self.truncate_rate), ("noise", self.noise_rate),
                            ("wrong_address", self.wrong_address_rate), ("drop", self.drop_rate)):
            if rate and self.rng.random() < rate:
                self.injected[fault] += 1
                return fault
        return None

    # ---- helpers that damage bytes ---------------------------------------------------------------------------
    def corrupt(self, frame: bytes, first: int = 1) -> bytes:
        """Flip one bit in one byte at index >= `first` (the header stays recognisable, the check fails;
        CRC-16 and the 8-bit sum both catch every single-bit error)."""
        b = bytearray(frame)
        i = self.rng.randrange(first, len(b)) if len(b) > first else len(b) - 1
        b[i] ^= 1 << self.rng.randrange(8)
        return bytes(b)

    def truncate(self, frame: bytes) -> bytes:
        return frame[: self.rng.randrange(1, len(frame))] if len(frame) > 1 else b""

    def noise(self, n: int | None = None) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(n if n is not None else self.rng.randint(1, 12)))
