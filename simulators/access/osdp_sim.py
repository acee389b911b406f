"""OSDP card reader simulator: libosdp's PeripheralDevice on a pty.

Presents cards (raw Wiegand 26/34 bits, parity as a real card, or arbitrary bits), keypad entries and
tamper changes; can go silent (reader lost power, bus cut), be unplugged/replugged (USB-RS485 adapter) and
inject raw bytes onto the line (noise, bad CRC, short frames, other addresses).

    python -m simulators.access.osdp_sim /tmp/ttyOSDP --address 1 --card-every 2
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from osdp import Capability, CardFormat, Channel, Event, LogLevel, PDCapabilities, PDInfo, PdId, \
    PeripheralDevice, StatusReportType

from drivers.access.wiegand import bits_to_bytes, encode

from .pty_link import PtyLink

KEY_CODES = {"*": 0x7F, "#": 0x0D}


class _LinkChannel(Channel):
    def __init__(self, link: PtyLink):
        super().__init__()
        self.link = link

    def read(self, max_bytes: int) -> bytes:
        return self.link.read(max_bytes)

    def write(self, buf: bytes) -> int:
        with self.link.lock:
            return self.link.write(buf)

    def flush(self) -> None:
        pass


class OsdpReaderSimulator:
    def __init__(self, link: str | Path, address: int = 1, scbk: bytes | None = None,
                 serial_number: int = 0x5A5A0001, log_level=LogLevel.Error):
        self.link = PtyLink(link)
        self.address = address
        self.scbk = scbk
        self.serial_number = serial_number
        self.log_level = log_level
        self.pd: PeripheralDevice | None = None
        self.submitted = 0

    @property
    def path(self) -> Path:
        return self.link.link

    def start(self) -> "OsdpReaderSimulator":
        self.link.plug()
        self._start_pd()
        return self

    def _start_pd(self) -> None:
        caps = PDCapabilities([(Capability.CardDataFormat, 1, 1), (Capability.Readers, 1, 1),
                               (Capability.ContactStatusMonitoring, 1, 1), (Capability.CheckCharacter, 1, 1)])
        info = PDInfo(self.address, _LinkChannel(self.link), scbk=self.scbk, name="sim-reader",
                      id=PdId(2, 1, 0x00A0B1, self.serial_number, 0x010203))
        self.pd = PeripheralDevice(info, caps, log_level=self.log_level)
        self.pd.start()

    def _stop_pd(self) -> None:
        if self.pd is not None:
            try:
                self.pd.teardown()
            except RuntimeError:
                pass
            self.pd = None

    def stop(self) -> None:
        self._stop_pd()
        self.link.unplug()

    # ---- what a person at the reader does --------------------------------------------------------------
    def _submit(self, event: dict) -> None:
        if self.pd is None:
            raise RuntimeError("reader is not running")
        if not self.pd.submit_event(event):
            raise RuntimeError("libosdp refused the event")
        self.submitted += 1

    def card_bits(self, bits: str, reader: int = 0) -> None:
        self._submit({"event": Event.CardRead, "reader_no": reader, "direction": 0, "length": len(bits),
                      "format": CardFormat.Wiegand, "data": bits_to_bytes(bits)})

    def card(self, facility: int, card: int, fmt: str = "wiegand26", reader: int = 0) -> str:
        bits = encode(facility, card, fmt)
        self.card_bits(bits, reader)
        return bits

    def card_ascii(self, text: str, reader: int = 0) -> None:
        self._submit({"event": Event.CardRead, "reader_no": reader, "direction": 0, "format": CardFormat.ASCII,
                      "data": text.encode("ascii")})

    def keypad(self, keys: str, reader: int = 0) -> None:
        data = bytes(KEY_CODES.get(k, ord(k)) for k in keys)
        self._submit({"event": Event.KeyPress, "reader_no": reader, "data": data})

    def tamper(self, active: bool) -> None:
        self._submit({"event": Event.Status, "type": StatusReportType.Local,
                      "report": bytes([1 if active else 0, 0])})

    # ---- faults ----------------------------------------------------------------------------------------
    def go_silent(self) -> None:
        """Reader stops answering (power loss, cut A/B wires); the adapter and port stay."""
        self._stop_pd()

    def resume(self) -> None:
        if self.pd is None and self.link.plugged:
            self._start_pd()

    def unplug(self) -> None:
        self._stop_pd()
        self.link.unplug()

    def replug(self) -> None:
        self.link.plug()
        self._start_pd()

    def inject(self, data: bytes) -> None:
        """Raw bytes onto the line towards the CP, between the reader's own frames."""
        with self.link.lock:
            self.link.write(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="OSDP reader simulator on a pty (libosdp PeripheralDevice)")
    ap.add_argument("link", help="symlink path the gateway opens as its serial port")
    ap.add_argument("--address", type=int, default=1)
    ap.add_argument("--scbk", help="secure channel base key, 32 hex digits")
    ap.add_argument("--card-every", type=float, default=0, help="present facility 90 card 324 every N s")
    args = ap.parse_args(argv)
    sim = OsdpReaderSimulator(args.link, args.address, bytes.fromhex(args.scbk) if args.scbk else None).start()
    print(f"OSDP reader at address {args.address} on {sim.path}", flush=True)
    try:
        while True:
            time.sleep(args.card_every or 3600)
            if args.card_every:
                sim.card(90, 324)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
