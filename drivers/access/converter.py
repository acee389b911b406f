"""Wiegand-to-serial converter framing profiles (a reader's D0/D1 wires into a small box that prints cards
on RS-232/RS-485/USB). Vendors differ only in framing, so a profile is a small stream parser; the bits it
yields are decoded by drivers/access/wiegand.py (parity checked there).

Profiles (`profile:` in edge.yaml, per device):

* ``ascii_bits``: the bits as '0'/'1' characters, one card per line: ``00101101000000001010001000\\r\\n``.
* ``ascii_hex``: the bits as a right-aligned hex number, one card per line, optionally preceded by the bit
  count and a colon: ``0B40288\\r\\n`` or ``26:0B40288\\r\\n``. Without a bit count, 7 hex digits mean 26 bits
  and 9 mean 34 (or whatever `format:` fixes).
* ``binary``: ``02 NBITS DATA... XOR 03``; DATA = ceil(NBITS/8) bytes, bits left-justified, XOR = xor of
  NBITS and DATA bytes.

ASCII profiles also accept STX (0x02) / ETX (0x03) around a frame instead of, or as well as, CR/LF.
Anything else is noise: counted, skipped, parser resynchronises on the next frame start. Never raises.
"""
from __future__ import annotations

import re
from typing import Literal

from .wiegand import FORMATS, BY_NAME, WiegandError, bits_from_bytes, bits_from_int

Profile = Literal["ascii_hex", "ascii_bits", "binary"]
STX, ETX, CR, LF = 0x02, 0x03, 0x0D, 0x0A
MAX_LINE = 64
HEX_DIGITS_TO_BITS = {7: 26, 9: 34}

_TERMINATOR = re.compile(rb"[\r\n\x03]")
_BITS = frozenset(b"01")
_HEX = frozenset(b"0123456789abcdefABCDEF:")

COUNTERS = ("frames", "bad_frames", "checksum_errors", "noise_bytes", "overflows")


class ConverterParser:
    def __init__(self, profile: Profile = "ascii_hex", fmt: str = "auto"):
        if profile not in ("ascii_hex", "ascii_bits", "binary"):
            raise ValueError(f"unknown converter profile {profile!r}")
        self.profile = profile
        self.fmt = fmt
        self._buf = bytearray()
        self.stats: dict[str, int] = {k: 0 for k in COUNTERS}
        self.last_error: str | None = None

    def feed(self, data: bytes | bytearray) -> list[str]:
        """Returns the bit strings of the complete frames found so far."""
        self._buf += data
        return self._binary() if self.profile == "binary" else self._ascii()

    def flush(self) -> list[str]:
        """End of input (idle line): an unterminated ASCII line still counts if it parses."""
        if self.profile == "binary" or not self._buf:
            self.stats["noise_bytes"] += len(self._buf)
            self._buf.clear()
            return []
        line, self._buf = bytes(self._buf), bytearray()
        bits = self._line(line)
        return [bits] if bits else []

    def _bad(self, why: str) -> None:
        self.stats["bad_frames"] += 1
        self.last_error = why

    # ---- ASCII -------------------------------------------------------------------------------------------
    def _ascii(self) -> list[str]:
        out: list[str] = []
        buf = self._buf
        while True:
            m = _TERMINATOR.search(buf)
            if m is None:
                if len(buf) > MAX_LINE:
                    self.stats["overflows"] += 1
                    self.stats["noise_bytes"] += len(buf)
                    buf.clear()
                break
            end = m.start()
            line = bytes(buf[:end])
            del buf[:end + 1]
            if not line.strip(b"\x02 \t"):
                continue  # blank line or the LF of a CRLF
            bits = self._line(line)
            if bits:
                out.append(bits)
        return out

    def _line(self, raw: bytes) -> str | None:
        stx = raw.rfind(bytes([STX]))
        if stx >= 0:
            self.stats["noise_bytes"] += stx
            raw = raw[stx + 1:]
        raw = raw.strip(b" \t")
        # Line noise before the frame on the same line (a glitch while idle) is skipped: the frame is the
        # trailing run of characters the profile allows. Parity still guards what that leaves.
        allowed = _BITS if self.profile == "ascii_bits" else _HEX
        start = len(raw)
        while start > 0 and raw[start - 1] in allowed:
            start -= 1
        if start:
            self.stats["noise_bytes"] += start
        text = raw[start:].decode("ascii")
        if len(text) > MAX_LINE or not text:
            self._bad("no frame on the line" if not text else "over-long line")
            return None
        if self.profile == "ascii_bits":
            if text.strip("01"):
                self._bad(f"not a bit string: {text[:20]!r}")
                return None
            self.stats["frames"] += 1
            return text
        nbits: int | None = None
        if ":" in text:
            count, _, text = text.partition(":")
            if not count.isdigit():
                self._bad(f"bad bit count {count[:8]!r}")
                return None
            nbits = int(count)
        if not text or any(c not in "0123456789abcdefABCDEF" for c in text):
            self._bad(f"not hex: {text[:20]!r}")
            return None
        if nbits is None:
            nbits = BY_NAME[self.fmt].bits if self.fmt in BY_NAME else HEX_DIGITS_TO_BITS.get(len(text))
        if nbits is None or nbits not in FORMATS:
            self._bad(f"cannot tell the Wiegand length of {len(text)} hex digits")
            return None
        try:
            bits = bits_from_int(int(text, 16), nbits)
        except WiegandError as exc:
            self._bad(str(exc))
            return None
        self.stats["frames"] += 1
        return bits

    # ---- binary ------------------------------------------------------------------------------------------
    def _binary(self) -> list[str]:
        out: list[str] = []
        buf = self._buf
        while buf:
            if buf[0] != STX:
                i = buf.find(STX)
                n = i if i >= 0 else len(buf)
                self.stats["noise_bytes"] += n
                del buf[:n]
                continue
            if len(buf) < 2:
                break
            nbits = buf[1]
            if nbits == 0 or nbits > 64:
                self._bad(f"bit count {nbits}")
                del buf[:1]
                continue
            nbytes = (nbits + 7) // 8
            total = 2 + nbytes + 2
            if len(buf) < total:
                break
            frame = bytes(buf[:total])
            xor = 0
            for b in frame[1:2 + nbytes]:
                xor ^= b
            if frame[-1] != ETX:
                self._bad("missing ETX")
                del buf[:1]
                continue
            if xor != frame[-2]:
                self.stats["checksum_errors"] += 1
                self.last_error = "xor checksum mismatch"
                del buf[:1]
                continue
            del buf[:total]
            self.stats["frames"] += 1
            out.append(bits_from_bytes(frame[2:2 + nbytes], nbits))
        return out


def encode_frame(bits: str, profile: Profile, *, with_count: bool = False) -> bytes:
    """What a converter with this profile sends for these bits (simulator, tests)."""
    if profile == "ascii_bits":
        return bits.encode() + b"\r\n"
    if profile == "ascii_hex":
        digits = {26: 7, 34: 9}.get(len(bits), (len(bits) + 3) // 4)
        text = f"{int(bits, 2):0{digits}X}"
        return (f"{len(bits)}:" if with_count else "").encode() + text.encode() + b"\r\n"
    from .wiegand import bits_to_bytes

    data = bits_to_bytes(bits)
    xor = len(bits)
    for b in data:
        xor ^= b
    return bytes([STX, len(bits)]) + data + bytes([xor, ETX])
