"""Wiegand 26-bit (HID H10301) and 34-bit (HID H10306) card formats, with parity checks.

Hand-written because it is ~60 lines of bit arithmetic and no maintained PyPI package covers the
formats with parity checking (the card readers on PyPI wrap GPIO pins, not bit strings).

Bit strings are written most significant (first transmitted) bit first, as the card sends them:

* H10301, 26 bits: ``E FFFFFFFF CCCCCCCCCCCCCCCC O`` — E makes bits 1..13 even, O makes bits 14..26 odd.
* H10306, 34 bits: ``E FFFFFFFFFFFFFFFF CCCCCCCCCCCCCCCC O`` — E makes bits 1..17 even, O makes bits 18..34 odd.

Example: facility 90, card 324 in H10301 is ``00101101000000001010001000``.
"""
from __future__ import annotations

import dataclasses


class WiegandError(ValueError):
    """A bit string that is not a valid card read; `reason` is a short counter name."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class WiegandFormat:
    name: str  # also the credential_type used in events
    bits: int
    facility_bits: int
    card_bits: int

    @property
    def half(self) -> int:
        return self.bits // 2


H10301 = WiegandFormat("wiegand26", 26, 8, 16)
H10306 = WiegandFormat("wiegand34", 34, 16, 16)
FORMATS: dict[int, WiegandFormat] = {f.bits: f for f in (H10301, H10306)}
BY_NAME: dict[str, WiegandFormat] = {f.name: f for f in (H10301, H10306)}


@dataclasses.dataclass(frozen=True)
class WiegandCard:
    format: WiegandFormat
    facility: int
    card: int
    bits: str

    @property
    def credential(self) -> str:
        """facility:card, the way installers write cards on enrolment lists."""
        return f"{self.facility}:{self.card}"


def _ones(bits: str) -> int:
    return bits.count("1")


def decode_bits(bits: str, expect: str = "auto") -> WiegandCard:
    """Decode a '0'/'1' string. `expect` is 'auto', 'wiegand26' or 'wiegand34'. Raises WiegandError."""
    if not isinstance(bits, str) or not bits or bits.strip("01"):
        raise WiegandError("bad_bits", "not a string of 0 and 1")
    fmt = FORMATS.get(len(bits))
    if fmt is None:
        raise WiegandError("bad_length", f"{len(bits)} bits is neither Wiegand 26 nor 34")
    if expect != "auto" and fmt.name != expect:
        raise WiegandError("bad_length", f"got {fmt.name}, configured for {expect}")
    half = fmt.half
    if _ones(bits[:half]) % 2 != 0:
        raise WiegandError("parity", f"{fmt.name}: even parity over the first {half} bits fails")
    if _ones(bits[half:]) % 2 != 1:
        raise WiegandError("parity", f"{fmt.name}: odd parity over the last {fmt.bits - half} bits fails")
    f_end = 1 + fmt.facility_bits
    facility = int(bits[1:f_end], 2)
    card = int(bits[f_end:f_end + fmt.card_bits], 2)
    return WiegandCard(fmt, facility, card, bits)


def encode(facility: int, card: int, fmt: WiegandFormat | str = H10301) -> str:
    """The bit string a reader sends for this card (parity bits computed)."""
    if isinstance(fmt, str):
        fmt = BY_NAME[fmt]
    if not 0 <= facility < (1 << fmt.facility_bits) or not 0 <= card < (1 << fmt.card_bits):
        raise ValueError(f"facility {facility} / card {card} do not fit {fmt.name}")
    body = f"{facility:0{fmt.facility_bits}b}{card:0{fmt.card_bits}b}"
    first = body[:fmt.half - 1]
    last = body[fmt.half - 1:]
    even = "1" if _ones(first) % 2 else "0"
    odd = "0" if _ones(last) % 2 else "1"
    return even + body + odd


def bits_from_bytes(data: bytes, nbits: int) -> str:
    """First `nbits` bits of `data`, MSB first (OSDP osdp_RAW and most converters left-justify)."""
    if nbits < 0 or nbits > len(data) * 8:
        raise WiegandError("bad_length", f"{nbits} bits announced but only {len(data) * 8} sent")
    return "".join(f"{b:08b}" for b in data)[:nbits]


def bits_to_bytes(bits: str) -> bytes:
    """Left-justified, zero-padded bytes of a bit string."""
    pad = (-len(bits)) % 8
    padded = bits + "0" * pad
    return int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""


def bits_from_int(value: int, nbits: int) -> str:
    """Right-aligned integer (how hex-printing converters show the raw bits) to a bit string."""
    if value < 0 or value >= (1 << nbits):
        raise WiegandError("bad_length", f"value does not fit {nbits} bits")
    return f"{value:0{nbits}b}"
