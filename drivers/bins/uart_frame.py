"""Streaming parser for UART ultrasonic sensors (DFRobot A02YYUW, DYP-A02/A01 "UART auto" output).

Frame: `FF H L SUM`, 9600 8N1, distance = H*256 + L mm, SUM = (0xFF + H + L) & 0xFF. Example `FF 07 A1 A7` = 1953 mm.

Hand-written on purpose: it is four bytes with an 8-bit sum and no PyPI package covers these sensors (only
vendor demo scripts), so 40 auditable lines beat a dependency. It is fuzzed with >100k random and bit-flipped
frames (tests/test_bins_fuzz.py).

Resynchronisation: on a checksum mismatch only the 0xFF is dropped and scanning restarts at the next byte,
so a stray 0xFF inside garbage can never swallow the header of the real frame that follows it.
"""
from __future__ import annotations

import dataclasses

HEADER = 0xFF
FRAME_LEN = 4
#: the sensors report 0 when nothing echoes (out of range / blind zone); anything above this is not a bin
MAX_VALID_MM = 10_000


def encode_frame(distance_mm: int) -> bytes:
    """The frame a sensor sends for `distance_mm` (0..65535)."""
    h, low = (distance_mm >> 8) & 0xFF, distance_mm & 0xFF
    return bytes((HEADER, h, low, (HEADER + h + low) & 0xFF))


@dataclasses.dataclass
class UartFrameStats:
    frames: int = 0
    checksum_errors: int = 0
    garbage_bytes: int = 0  # bytes skipped while hunting for a header
    no_echo: int = 0  # valid frames whose value is 0 or out of range

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class UartFrameParser:
    """Feed bytes as they arrive; get back the distances (mm) of every valid frame, in order.

    Invalid readings (0 = no echo, > MAX_VALID_MM) are counted in `stats.no_echo` and returned as None so a
    caller can tell "sensor alive but sees nothing" from "sensor silent".
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = UartFrameStats()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[int | None]:
        buf = self._buf
        buf.extend(data)
        out: list[int | None] = []
        i = 0
        n = len(buf)
        while i < n:
            if buf[i] != HEADER:
                self.stats.garbage_bytes += 1
                i += 1
                continue
            if n - i < FRAME_LEN:
                break  # wait for the rest of a possible frame
            h, low, s = buf[i + 1], buf[i + 2], buf[i + 3]
            if (HEADER + h + low) & 0xFF != s:
                self.stats.checksum_errors += 1
                self.stats.garbage_bytes += 1
                i += 1  # drop only the header byte: the real frame may start inside these four bytes
                continue
            value = (h << 8) | low
            self.stats.frames += 1
            if value == 0 or value > MAX_VALID_MM:
                self.stats.no_echo += 1
                out.append(None)
            else:
                out.append(value)
            i += FRAME_LEN
        del buf[:i]
        return out

    def reset(self) -> None:
        """Forget a partial frame (after the port was closed and reopened)."""
        self.stats.garbage_bytes += len(self._buf)
        self._buf.clear()
