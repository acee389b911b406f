"""Opening USB-serial / RS-485 ports for the access readers, and the reopen backoff after an unplug."""
from __future__ import annotations

import random

import serial

PARITY = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}


def open_port(port_cfg, timeout: float | None = 0) -> serial.Serial:
    """Open non-blocking (timeout 0) with the configured framing; exclusive so two processes cannot
    interleave bytes on one bus. Raises serial.SerialException with the OS reason."""
    return serial.Serial(port=str(port_cfg.port), baudrate=port_cfg.baudrate, bytesize=port_cfg.bytesize,
                         parity=PARITY[port_cfg.parity], stopbits=port_cfg.stopbits, timeout=timeout,
                         write_timeout=0.5, exclusive=True)


class Backoff:
    """0.5 s, 1 s, 2 s ... up to `maximum`, with ±20 % jitter so a power cut does not synchronise retries."""

    def __init__(self, minimum: float = 0.5, maximum: float = 30.0):
        self.minimum, self.maximum = minimum, maximum
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.minimum * 2 ** self.attempt)
        self.attempt += 1
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self.attempt = 0
