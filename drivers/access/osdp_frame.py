"""OSDP (SIA OSDP v2.2) frame layer: CRC-16/AUG-CCITT, a resynchronising stream parser, a frame builder.

libosdp does the protocol work (sequence numbers, secure channel, retries) but silently drops what it
cannot use. This parser watches the same receive stream (see drivers/access/osdp.py) so that bad CRCs,
short frames, line noise and replies from the wrong address are *counted per reader* and visible in
health(). It is hand-written because it is small, must never raise on garbage (it is fuzzed), and no
library exposes OSDP framing on its own.

Frame: SOM(0x53) ADDR LEN_LSB LEN_MSB CTRL [SCB] CODE DATA... [MAC(4)] CRC_LSB CRC_MSB | CKSUM
  ADDR bit 7 = reply from a PD; LEN counts every byte from SOM to the end of the check;
  CTRL bits 0-1 sequence, bit 2 = CRC-16 (else 8-bit checksum), bit 3 = security block present.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

SOM = 0x53
MARK = 0xFF  # optional line-idle mark byte some PDs/CPs send before SOM (OSDP 2.2)
REPLY_BIT = 0x80
CTRL_SQN = 0x03
CTRL_CRC = 0x04
CTRL_SCB = 0x08
MIN_LEN_CKSUM = 7
MIN_LEN_CRC = 8
MAX_LEN = 1024  # libosdp's packet buffer; anything longer is a corrupted length field

COMMANDS = {0x60: "POLL", 0x61: "ID", 0x62: "CAP", 0x64: "LSTAT", 0x65: "ISTAT", 0x66: "OSTAT", 0x67: "RSTAT",
            0x68: "OUT", 0x69: "LED", 0x6A: "BUZ", 0x6B: "TEXT", 0x6E: "COMSET", 0x73: "BIOREAD", 0x75: "KEYSET",
            0x76: "CHLNG", 0x77: "SCRYPT", 0x7B: "ACURXSIZE", 0x7C: "FILETRANSFER", 0x80: "MFG", 0xA1: "XWR",
            0xA2: "ABORT", 0xA3: "PIVDATA", 0xA4: "GENAUTH", 0xA5: "CRAUTH", 0xA7: "KEEPACTIVE"}
REPLIES = {0x40: "ACK", 0x41: "NAK", 0x45: "PDID", 0x46: "PDCAP", 0x48: "LSTATR", 0x49: "ISTATR", 0x4A: "OSTATR",
           0x4B: "RSTATR", 0x50: "RAW", 0x51: "FMT", 0x53: "KEYPAD", 0x54: "COM", 0x57: "BIOREADR", 0x58: "BIOMATCHR",
           0x76: "CCRYPT", 0x78: "RMAC_I", 0x79: "BUSY", 0x7A: "FTSTAT", 0x80: "PIVDATAR", 0x81: "GENAUTHR",
           0x82: "CRAUTHR", 0x83: "MFGSTATR", 0x84: "MFGERRR", 0x90: "MFGREP", 0xB1: "XRD"}
CODE_RAW = 0x50
CODE_KEYPAD = 0x53
CODE_LSTATR = 0x48


def crc16_aug_ccitt(data: bytes | bytearray | memoryview, crc: int = 0x1D0F) -> int:
    """CRC-16/AUG-CCITT: poly 0x1021, init 0x1D0F, no reflection, no final xor (OSDP's check)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _make_table() -> tuple[int, ...]:
    return tuple(crc16_aug_ccitt(bytes([i]), 0) for i in range(256))


_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0x1D0F) -> int:
    """Table-driven version of crc16_aug_ccitt (same result, ~8x faster; used on the hot path)."""
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[((crc >> 8) ^ byte) & 0xFF]
    return crc


def checksum8(data: bytes | bytearray | memoryview) -> int:
    return (-sum(data)) & 0xFF


@dataclasses.dataclass(frozen=True)
class Frame:
    address: int  # 0..127, without the reply bit
    reply: bool
    seq: int
    crc: bool
    code: int
    data: bytes
    scb: bytes = b""  # security control block (length, type, data) if present
    mac: bytes = b""
    raw: bytes = b""

    @property
    def name(self) -> str:
        table = REPLIES if self.reply else COMMANDS
        return table.get(self.code, f"0x{self.code:02X}")

    @property
    def encrypted(self) -> bool:
        return len(self.scb) >= 2 and self.scb[1] in (0x17, 0x18)


def build_frame(address: int, code: int, data: bytes = b"", *, seq: int = 0, reply: bool = False,
                use_crc: bool = True, scb: bytes = b"", mac: bytes = b"") -> bytes:
    """Bytes of one frame (used by tests, the simulator's fault injection and the probe)."""
    ctrl = (seq & CTRL_SQN) | (CTRL_CRC if use_crc else 0) | (CTRL_SCB if scb else 0)
    length = 5 + len(scb) + 1 + len(data) + len(mac) + (2 if use_crc else 1)
    head = bytes([SOM, (address & 0x7F) | (REPLY_BIT if reply else 0), length & 0xFF, length >> 8, ctrl])
    body = head + scb + bytes([code]) + data + mac
    if use_crc:
        c = crc16(body)
        return body + bytes([c & 0xFF, c >> 8])
    return body + bytes([checksum8(body)])


COUNTERS = ("frames", "crc_errors", "short_frames", "bad_length", "malformed", "noise_bytes", "wrong_address",
            "marks")


class FrameParser:
    """Feed bytes as they arrive; get complete, checked frames back. Never raises on input.

    `expect_address` (0..127) and `expect_reply` filter frames: a valid frame for anyone else is counted in
    `wrong_address` and not returned. A partial frame left when the line goes idle for `idle_s` is a short
    frame (counted, dropped) so it cannot swallow the start of the next one.
    """

    def __init__(self, expect_address: int | None = None, expect_reply: bool | None = None, *,
                 max_len: int = MAX_LEN, idle_s: float = 0.1, monotonic: Callable[[], float] = time.monotonic):
        self.expect_address = expect_address
        self.expect_reply = expect_reply
        self.max_len = max_len
        self.idle_s = idle_s
        self._mono = monotonic
        self._buf = bytearray()
        self._last_byte = 0.0
        self.stats: dict[str, int] = {k: 0 for k in COUNTERS}

    def feed(self, data: bytes | bytearray) -> list[Frame]:
        now = self._mono()
        if self._buf and data and now - self._last_byte > self.idle_s:
            self._drop_partial()
        if data:
            self._buf += data
            self._last_byte = now
        out: list[Frame] = []
        buf = self._buf
        while buf:
            if buf[0] != SOM:
                i = buf.find(SOM)
                skipped = buf[:i] if i >= 0 else buf[:]
                marks = skipped.count(MARK)
                self.stats["marks"] += marks
                self.stats["noise_bytes"] += len(skipped) - marks
                del buf[:len(skipped)]
                continue
            if len(buf) < 5:
                break
            length = buf[2] | (buf[3] << 8)
            use_crc = bool(buf[4] & CTRL_CRC)
            if length < (MIN_LEN_CRC if use_crc else MIN_LEN_CKSUM) or length > self.max_len:
                self.stats["bad_length"] += 1
                del buf[:1]  # that SOM was noise (or a corrupted header); hunt for the next one
                continue
            if len(buf) < length:
                break
            frame_bytes = bytes(buf[:length])
            if use_crc:
                ok = crc16(frame_bytes[:-2]) == (frame_bytes[-2] | (frame_bytes[-1] << 8))
            else:
                ok = checksum8(frame_bytes[:-1]) == frame_bytes[-1]
            if not ok:
                self.stats["crc_errors"] += 1
                del buf[:1]
                continue
            frame = self._parse(frame_bytes, use_crc)
            if frame is None:
                self.stats["malformed"] += 1
                del buf[:length]
                continue
            del buf[:length]
            if (self.expect_address is not None and frame.address != self.expect_address
                    and frame.address != 0x7F) or \
                    (self.expect_reply is not None and frame.reply != self.expect_reply):
                self.stats["wrong_address"] += 1
                continue
            self.stats["frames"] += 1
            out.append(frame)
        return out

    def idle(self) -> None:
        """Call when the line has been quiet: a pending partial frame is counted as short and dropped."""
        if self._buf and self._mono() - self._last_byte > self.idle_s:
            self._drop_partial()

    def _drop_partial(self) -> None:
        if self._buf and self._buf[0] == SOM:
            self.stats["short_frames"] += 1
        else:
            self.stats["noise_bytes"] += len(self._buf)
        self._buf.clear()

    @staticmethod
    def _parse(b: bytes, use_crc: bool) -> Frame | None:
        ctrl = b[4]
        end = len(b) - (2 if use_crc else 1)
        pos = 5
        scb = b""
        if ctrl & CTRL_SCB:
            if pos >= end:
                return None
            scb_len = b[pos]
            if scb_len < 2 or pos + scb_len >= end:
                return None
            scb = b[pos:pos + scb_len]
            pos += scb_len
        if pos >= end:
            return None
        code = b[pos]
        pos += 1
        mac = b""
        if scb and scb[1] in (0x15, 0x16, 0x17, 0x18):
            if end - pos < 4:
                return None
            mac = b[end - 4:end]
            end -= 4
        return Frame(address=b[1] & 0x7F, reply=bool(b[1] & REPLY_BIT), seq=ctrl & CTRL_SQN, crc=use_crc,
                     code=code, data=b[pos:end], scb=scb, mac=mac, raw=b)


# ---- payloads of the replies the driver cares about ---------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RawCard:
    reader: int
    format: int  # 0 = unspecified raw bits, 1 = Wiegand
    nbits: int
    data: bytes


def parse_raw(frame: Frame) -> RawCard | None:
    """osdp_RAW: reader, format, bit count (LE16), bits left-justified. None if malformed or encrypted."""
    d = frame.data
    if frame.code != CODE_RAW or frame.encrypted or len(d) < 4:
        return None
    nbits = d[2] | (d[3] << 8)
    if nbits == 0 or (nbits + 7) // 8 != len(d) - 4:
        return None
    return RawCard(d[0], d[1], nbits, bytes(d[4:]))


def parse_keypad(frame: Frame) -> tuple[int, bytes] | None:
    d = frame.data
    if frame.code != CODE_KEYPAD or frame.encrypted or len(d) < 2 or d[1] != len(d) - 2:
        return None
    return d[0], bytes(d[2:])
