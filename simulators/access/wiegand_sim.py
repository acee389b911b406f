"""Wiegand-to-serial converter simulator on a pty: prints presented cards in a framing profile."""
from __future__ import annotations

from pathlib import Path

from drivers.access.converter import Profile, encode_frame
from drivers.access.wiegand import encode

from .pty_link import PtyLink


class WiegandConverterSimulator:
    def __init__(self, link: str | Path, profile: Profile = "ascii_hex"):
        self.link = PtyLink(link)
        self.profile = profile

    @property
    def path(self) -> Path:
        return self.link.link

    def start(self) -> "WiegandConverterSimulator":
        self.link.plug()
        return self

    def stop(self) -> None:
        self.link.unplug()

    def card(self, facility: int, card: int, fmt: str = "wiegand26") -> str:
        bits = encode(facility, card, fmt)
        self.bits(bits)
        return bits

    def bits(self, bits: str) -> None:
        self.link.write(encode_frame(bits, self.profile))

    def inject(self, data: bytes) -> None:
        self.link.write(data)

    def unplug(self) -> None:
        self.link.unplug()

    def replug(self) -> None:
        self.link.plug()
